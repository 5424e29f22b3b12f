package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/usherhq/usher/internal/apiclient"
)

// bulkRun applies one action to many invitations, concurrency at a time, showing its
// progress on stderr.
type bulkRun struct {
	env         *cliEnv
	verb, past  string // "renew", "renewed"
	concurrency int
	do          func(ctx context.Context, id string) (apiclient.Invitation, error)
}

// bulkReport is the outcome of a bulk form; with --json it is printed as it is.
type bulkReport struct {
	Action string     `json:"action"`
	Filter bulkFilter `json:"filter"`
	// Matched invitations = Succeeded + Failed + NotAttempted.
	Matched   int `json:"matched"`
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
	// NotAttempted are those left when the run was interrupted.
	NotAttempted   int            `json:"not_attempted"`
	Interrupted    bool           `json:"interrupted"`
	FailuresByCode map[string]int `json:"failures_by_code"`
	// Failures are in the order of the listing (newest first).
	Failures []bulkFailure `json:"failures"`
	// Invitations are those that went through, as they stand afterwards.
	Invitations []apiclient.Invitation `json:"invitations"`

	past string // "renewed"
}

type bulkFilter struct {
	Status         string `json:"status,omitempty"`
	OrganizationID string `json:"organization_id,omitempty"`
	Email          string `json:"email,omitempty"`
}

// bulkFailure is an invitation the action failed for: the API's error, or unreachable /
// interrupted as Code when there was no answer.
type bulkFailure struct {
	ID         string         `json:"id"`
	Email      string         `json:"email"`
	HTTPStatus int            `json:"http_status,omitempty"`
	Code       string         `json:"code"`
	Message    string         `json:"message"`
	Details    map[string]any `json:"details,omitempty"`
	RequestID  string         `json:"request_id,omitempty"`
}

func (b *bulkRun) run(ctx context.Context, items []apiclient.Invitation) bulkReport {
	r := bulkReport{Action: b.verb, past: b.past, Matched: len(items), FailuresByCode: map[string]int{},
		Failures: []bulkFailure{}, Invitations: []apiclient.Invitation{}}
	if len(items) == 0 {
		return r
	}
	fmt.Fprintf(b.env.stderr, "%s %s, %d at a time. Ctrl-C stops.\n",
		capitalize(strings.TrimSuffix(b.verb, "e")+"ing"), plural(len(items), "invitation", "invitations"), min(b.concurrency, len(items)))

	type result struct {
		attempted bool
		inv       apiclient.Invitation
		err       error
	}
	results := make([]result, len(items))
	work, finished := make(chan int), make(chan int)
	var wg sync.WaitGroup
	for range min(b.concurrency, len(items)) {
		wg.Go(func() {
			for i := range work {
				if ctx.Err() != nil {
					continue
				}
				inv, err := b.do(ctx, items[i].ID)
				results[i] = result{attempted: true, inv: inv, err: err}
				finished <- i
			}
		})
	}
	go func() {
		defer close(work)
		for i := range items {
			if ctx.Err() != nil {
				return
			}
			select {
			case <-ctx.Done():
				return
			case work <- i:
			}
		}
	}()
	go func() {
		wg.Wait()
		close(finished)
	}()

	p := bulkProgress{env: b.env, verb: b.verb, past: b.past, total: len(items)}
	done, failed := 0, 0
	for i := range finished {
		done++
		if results[i].err != nil {
			failed++
		}
		p.show(done, done-failed, failed)
	}
	p.end()

	for i, res := range results {
		switch {
		case !res.attempted:
			r.NotAttempted++
		case res.err == nil:
			r.Succeeded++
			r.Invitations = append(r.Invitations, res.inv)
		default:
			r.Failed++
			code, message, apiErr := errorCode(ctx, res.err)
			f := bulkFailure{ID: items[i].ID, Email: items[i].Email, Code: code, Message: message}
			if apiErr != nil {
				f.HTTPStatus, f.Details, f.RequestID = apiErr.Status, apiErr.Details, apiErr.RequestID
			}
			r.FailuresByCode[code]++
			r.Failures = append(r.Failures, f)
		}
	}
	r.Interrupted = ctx.Err() != nil
	return r
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// print writes the summary for people.
func (r bulkReport) print(w io.Writer) {
	if r.Matched == 0 {
		fmt.Fprintf(w, "No invitations match: nothing to %s.\n", r.Action)
		return
	}
	line := fmt.Sprintf("%s %d of %s; %d failed", capitalize(r.past), r.Succeeded, plural(r.Matched, "invitation", "invitations"), r.Failed)
	if r.Interrupted {
		line = fmt.Sprintf("Interrupted: %s %d of %s; %d failed, %d not attempted",
			r.past, r.Succeeded, plural(r.Matched, "invitation", "invitations"), r.Failed, r.NotAttempted)
	}
	fmt.Fprintln(w, line+".")
	if r.Failed == 0 {
		return
	}
	fmt.Fprintln(w, "\nFailures by error code:")
	codes := slices.SortedFunc(maps.Keys(r.FailuresByCode), func(a, b string) int {
		if n := r.FailuresByCode[b] - r.FailuresByCode[a]; n != 0 {
			return n
		}
		return strings.Compare(a, b)
	})
	rows := make([][]string, 0, len(codes))
	for _, c := range codes {
		rows = append(rows, []string{"  " + c, fmt.Sprint(r.FailuresByCode[c])})
	}
	writeRows(w, rows)
	fmt.Fprintln(w)
	rows = rows[:0]
	for _, f := range r.Failures[:min(len(r.Failures), maxBadRowsShown)] {
		rows = append(rows, []string{f.ID, f.Email, f.Code, f.Message})
	}
	table(w, []string{"ID", "EMAIL", "CODE", "MESSAGE"}, rows)
	if more := len(r.Failures) - maxBadRowsShown; more > 0 {
		fmt.Fprintf(w, "… and %d more (--json lists them all)\n", more)
	}
}

// bulkProgress shows how a bulk form is going: on a terminal as a live bar, otherwise as
// a line every progressEvery.
type bulkProgress struct {
	env        *cliEnv
	verb, past string
	total      int
	bar        *progressbar.ProgressBar
	lastLine   time.Time
}

func (p *bulkProgress) show(done, ok, failed int) {
	describe := fmt.Sprintf("%s %d, failed %d", p.past, ok, failed)
	if !p.env.stderrTerminal {
		if done == p.total || (!p.lastLine.IsZero() && time.Since(p.lastLine) < p.env.progressEvery) {
			return
		}
		p.lastLine = time.Now()
		fmt.Fprintf(p.env.stderr, "%s: %d/%d done (%s)\n", p.verb, done, p.total, describe)
		return
	}
	if p.bar == nil {
		p.bar = progressbar.NewOptions(p.total,
			progressbar.OptionSetWriter(p.env.stderr),
			progressbar.OptionShowCount(),
			progressbar.OptionSetWidth(30),
			progressbar.OptionSetPredictTime(false),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionSetRenderBlankState(true),
		)
	}
	p.bar.Describe(describe)
	_ = p.bar.Set(done)
}

// end leaves the bar, if any, on its own line.
func (p *bulkProgress) end() {
	if p.bar != nil {
		fmt.Fprintln(p.env.stderr)
		p.bar = nil
	}
}
