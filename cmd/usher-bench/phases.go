//go:build !nodev

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"time"

	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/usherhq/usher/workflows"
)

// usage is what a phase cost.
type usage struct {
	CPU       time.Duration // this process (Temporal server, worker, API, mail server), user+sys
	DBCPU     time.Duration // the MariaDB server, when it runs on this machine
	HaveDBCPU bool
	// CPUPressure is the share of the time some task of the machine waited for a CPU
	// (/proc/pressure/cpu "some"): how noisy the machine was; -1 if unknown.
	CPUPressure float64
	InnoDB      innodbCounters // server-wide, so other users of the server count too
	Wall        time.Duration
	Activities  []activityStat
	Starts      callStat // workflow starts (ExecuteWorkflow) through the client
	SQL         sqlSnapshot
}

type singleResult struct {
	Count       int
	Answered    time.Duration // first request → last answer
	P50, P99    time.Duration // API answer times
	Max         time.Duration
	Mailed      time.Duration // first request → every e-mail in the mail server
	Invitations []string      // their IDs, in the order sent
	usage
}

type bulkResult struct {
	People     int
	CSVBytes   int
	Import     time.Duration // request → the import's answer
	Started    time.Duration // request → the batch is finished: every invitation created and its workflow started
	SentAtDone int           // invitations already sent at that moment
	Mailed     time.Duration // request → every e-mail in the mail server
	Sent       time.Duration // request → the batch reports sent == total, with every e-mail in the mail server
	BatchID    string
	Invitation string // one invitation of the batch, for its history
	usage
}

// phase starts measuring a phase; the function it returns ends it.
func (s *stack) phase(opts options, name string) (func() usage, error) {
	var profile *os.File
	if opts.cpuProfile != "" {
		var err error
		if profile, err = os.Create(opts.cpuProfile + "-" + name + ".pprof"); err != nil {
			return nil, err
		}
		if err := pprof.StartCPUProfile(profile); err != nil {
			_ = profile.Close()
			return nil, err
		}
	}
	s.sql.reset()
	s.acts.reset()
	cpu0 := processCPU()
	db0, dbOK0 := mariadbCPU()
	psi0, psiOK0 := cpuPressureStall()
	inno0 := s.innodb()
	start := time.Now()
	return func() usage {
		u := usage{Wall: time.Since(start), CPU: processCPU() - cpu0, CPUPressure: -1}
		if db1, dbOK1 := mariadbCPU(); dbOK0 && dbOK1 && db1 >= db0 {
			u.DBCPU, u.HaveDBCPU = db1-db0, true
		}
		if psi1, psiOK1 := cpuPressureStall(); psiOK0 && psiOK1 {
			u.CPUPressure = (psi1 - psi0).Seconds() / u.Wall.Seconds()
		}
		u.InnoDB = s.innodb().minus(inno0)
		u.Activities = s.acts.snapshot()
		u.Starts = s.acts.workflowStarts()
		u.SQL = s.sql.snapshot()
		if profile != nil {
			pprof.StopCPUProfile()
			_ = profile.Close()
		}
		return u
	}, nil
}

// innodbCounters are InnoDB's lock counters (SHOW GLOBAL STATUS).
type innodbCounters struct {
	RowLockWaits int64
	RowLockTime  time.Duration
	Deadlocks    int64
	ok           bool
}

func (s *stack) innodb() innodbCounters {
	rows, err := s.db.Query(`SHOW GLOBAL STATUS WHERE Variable_name IN ('Innodb_row_lock_waits', 'Innodb_row_lock_time', 'Innodb_deadlocks')`)
	if err != nil {
		return innodbCounters{}
	}
	defer rows.Close()
	c := innodbCounters{ok: true}
	for rows.Next() {
		var name string
		var v int64
		if err := rows.Scan(&name, &v); err != nil {
			return innodbCounters{}
		}
		switch name {
		case "Innodb_row_lock_waits":
			c.RowLockWaits = v
		case "Innodb_row_lock_time":
			c.RowLockTime = time.Duration(v) * time.Millisecond
		case "Innodb_deadlocks":
			c.Deadlocks = v
		}
	}
	return c
}

func (c innodbCounters) minus(o innodbCounters) innodbCounters {
	if !c.ok || !o.ok {
		return innodbCounters{}
	}
	return innodbCounters{RowLockWaits: c.RowLockWaits - o.RowLockWaits, RowLockTime: c.RowLockTime - o.RowLockTime,
		Deadlocks: c.Deadlocks - o.Deadlocks, ok: true}
}

func (s *stack) createOrganization(ctx context.Context, name string) (string, error) {
	body, _ := json.Marshal(map[string]string{"name": name})
	raw, err := s.call(ctx, "POST", "/v1/organizations", "application/json", bytes.NewReader(body), http.StatusCreated)
	if err != nil {
		return "", err
	}
	var org struct{ ID string }
	if err := json.Unmarshal(raw, &org); err != nil || org.ID == "" {
		return "", fmt.Errorf("creating an organization: unexpected answer %s", raw)
	}
	return org.ID, nil
}

// mailWatch notes when the mail server has seen a number of sends.
type mailWatch struct {
	done chan struct{}
	at   time.Time
}

// watchMail waits, in the background, until the mail server has been asked to send
// target messages in all (every send succeeds here: it answers at once and never fails).
func (s *stack) watchMail(ctx context.Context, target int) *mailWatch {
	w := &mailWatch{done: make(chan struct{})}
	go func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for s.mailgun.Requests() < target {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
		w.at = time.Now()
		close(w.done)
	}()
	return w
}

// checkMail makes sure the mail server holds want messages (and not merely saw requests).
func (s *stack) checkMail(ctx context.Context, want int) error {
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := s.mailgun.WaitForMessages(wctx, want); err != nil {
		return fmt.Errorf("the mail server holds %d messages, want %d", len(s.mailgun.Messages()), want)
	}
	return nil
}

func (s *stack) mailCount() int { return s.mailgun.Requests() }

// mailBytes is roughly what the mail server keeps in memory: every message's bodies.
func (s *stack) mailBytes() int64 {
	var n int64
	for _, m := range s.mailgun.Messages() {
		n += int64(len(m.Text) + len(m.HTML) + len(m.Subject))
	}
	return n
}

func (s *stack) warmUp(ctx context.Context, n int) error {
	org, err := s.createOrganization(ctx, "Bench Warm-up")
	if err != nil {
		return err
	}
	target := s.mailCount() + 2*n
	w := s.watchMail(ctx, target)
	if _, err := s.sendSingles(ctx, org, "warmup", n, min(n, 10)); err != nil {
		return err
	}
	id, err := s.importCSV(ctx, org, buildCSV("warmup-bulk", n))
	if err != nil {
		return err
	}
	if _, err := s.waitBatch(ctx, id, time.Now(), nil, func(b batchState) bool { return b.Finished && b.Sent == b.Total }); err != nil {
		return err
	}
	select {
	case <-w.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.checkMail(ctx, target)
}

// runSingle is the baseline: single invitations through the API, opts.concurrency at once,
// until every e-mail is in the mail server.
func (s *stack) runSingle(ctx context.Context, opts options) (singleResult, error) {
	res := singleResult{Count: opts.single}
	org, err := s.createOrganization(ctx, "Bench Single")
	if err != nil {
		return res, err
	}
	logf("baseline: %d single invitations, %d at a time", opts.single, opts.concurrency)
	end, err := s.phase(opts, "single")
	if err != nil {
		return res, err
	}
	target := s.mailCount() + opts.single
	w := s.watchMail(ctx, target)
	start := time.Now()
	answers, err := s.sendSingles(ctx, org, "single", opts.single, opts.concurrency)
	if err != nil {
		end()
		return res, err
	}
	res.Answered = time.Since(start)
	select {
	case <-w.done:
	case <-ctx.Done():
		end()
		return res, fmt.Errorf("waiting for the baseline's e-mails (%d of %d sent): %w", s.mailCount()-(target-opts.single), opts.single, ctx.Err())
	}
	res.Mailed = w.at.Sub(start)
	res.usage = end()
	res.Invitations = answers.ids
	lat := answers.latencies
	slices.Sort(lat)
	res.P50, res.P99, res.Max = percentile(lat, 0.50), percentile(lat, 0.99), lat[len(lat)-1]
	logf("baseline: %d e-mails in %s (%.1f invitations/s)", opts.single, round(res.Mailed), rate(opts.single, res.Mailed))
	return res, s.checkMail(ctx, target)
}

type singleAnswers struct {
	latencies []time.Duration
	ids       []string
}

// sendSingles creates n invitations, concurrency at a time.
func (s *stack) sendSingles(ctx context.Context, org, prefix string, n, concurrency int) (singleAnswers, error) {
	out := singleAnswers{latencies: make([]time.Duration, n), ids: make([]string, n)}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for i := range next {
				body, _ := json.Marshal(map[string]any{
					"email": fmt.Sprintf("%s-%06d@bench.example.com", prefix, i), "name": fmt.Sprintf("Single %d", i),
					"organization_id": org, "role": "member",
				})
				t := time.Now()
				raw, err := s.call(ctx, "POST", "/v1/invitations", "application/json", bytes.NewReader(body), http.StatusCreated)
				out.latencies[i] = time.Since(t)
				if err != nil {
					cancel(err)
					continue
				}
				var inv struct{ ID string }
				_ = json.Unmarshal(raw, &inv)
				out.ids[i] = inv.ID
			}
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return out, err
	}
	return out, ctx.Err()
}

// buildCSV makes an import of n good rows.
func buildCSV(prefix string, n int) string {
	var b strings.Builder
	b.Grow(64 * (n + 1))
	b.WriteString("email,name,phone,locale,role\n")
	for i := range n {
		fmt.Fprintf(&b, "%s-%06d@bench.example.com,Person %d,,en,member\n", prefix, i, i)
	}
	return b.String()
}

type importAnswer struct {
	Rows     int     `json:"rows"`
	Imported int     `json:"imported"`
	Created  int     `json:"created"`
	BatchID  *string `json:"batch_id"`
	Errors   []any   `json:"errors"`
}

func (s *stack) importCSV(ctx context.Context, org, csv string) (string, error) {
	raw, err := s.call(ctx, "POST", "/v1/users/import?organization_id="+org+"&send_invitation=true", "text/csv", strings.NewReader(csv), http.StatusOK)
	if err != nil {
		return "", err
	}
	var a importAnswer
	if err := json.Unmarshal(raw, &a); err != nil {
		return "", fmt.Errorf("the import's answer: %w", err)
	}
	rows := strings.Count(csv, "\n") - 1
	if a.Rows != rows || a.Imported != rows || a.Created != rows || len(a.Errors) != 0 || a.BatchID == nil {
		if len(raw) > 500 {
			raw = raw[:500]
		}
		return "", fmt.Errorf("the import of %d rows answered %s", rows, raw)
	}
	return *a.BatchID, nil
}

type batchState struct {
	Total      int        `json:"total"`
	Queued     int        `json:"queued"`
	Sent       int        `json:"sent"`
	Failed     int        `json:"failed"`
	Done       int        `json:"done"`
	Finished   bool       `json:"finished"`
	FinishedAt *time.Time `json:"finished_at"`
}

func (s *stack) batch(ctx context.Context, id string) (batchState, error) {
	var b batchState
	raw, err := s.call(ctx, "GET", "/v1/batches/"+id, "", nil, http.StatusOK)
	if err != nil {
		return b, err
	}
	err = json.Unmarshal(raw, &b)
	return b, err
}

// waitBatch polls the batch until done says so, every 250 ms, or every 20 ms once fast
// (when not nil) is closed. It calls each, if not nil, with every state it sees.
func (s *stack) waitBatch(ctx context.Context, id string, start time.Time, fast <-chan struct{}, done func(batchState) bool, each ...func(batchState, time.Duration)) (batchState, error) {
	interval := 250 * time.Millisecond
	for {
		b, err := s.batch(ctx, id)
		if err != nil {
			return b, err
		}
		for _, f := range each {
			f(b, time.Since(start))
		}
		if done(b) {
			return b, nil
		}
		if b.Failed > 0 {
			return b, fmt.Errorf("batch %s: %d of %d failed", id, b.Failed, b.Total)
		}
		select {
		case <-ctx.Done():
			return b, fmt.Errorf("waiting for batch %s (%d of %d sent): %w", id, b.Sent, b.Total, ctx.Err())
		case <-fast:
			fast, interval = nil, 20*time.Millisecond
		case <-time.After(interval):
		}
	}
}

// runBulk imports opts.people people with send_invitation=true and waits until the batch
// reports every one sent and the mail server holds every e-mail.
func (s *stack) runBulk(ctx context.Context, opts options) (bulkResult, error) {
	res := bulkResult{People: opts.people}
	org, err := s.createOrganization(ctx, "Bench Bulk")
	if err != nil {
		return res, err
	}
	csv := buildCSV("bulk", opts.people)
	res.CSVBytes = len(csv)
	logf("bulk: importing %d people (%d KiB of CSV) with send_invitation=true", opts.people, len(csv)>>10)
	end, err := s.phase(opts, "bulk")
	if err != nil {
		return res, err
	}
	target := s.mailCount() + opts.people
	w := s.watchMail(ctx, target)
	start := time.Now()
	id, err := s.importCSV(ctx, org, csv)
	if err != nil {
		end()
		return res, err
	}
	res.Import, res.BatchID = time.Since(start), id
	logf("bulk: the import answered in %s; batch %s", round(res.Import), id)

	lastLog := time.Now()
	mailed := false
	_, err = s.waitBatch(ctx, id, start, w.done,
		func(b batchState) bool {
			if !mailed {
				select {
				case <-w.done:
					mailed = true
				default:
				}
			}
			return mailed && b.Finished && b.Total == opts.people && b.Sent == b.Total
		},
		func(b batchState, at time.Duration) {
			if b.FinishedAt != nil && res.Started == 0 {
				res.Started, res.SentAtDone = at, b.Sent
			}
			if time.Since(lastLog) >= 10*time.Second {
				lastLog = time.Now()
				var created int
				_ = s.db.GetContext(ctx, &created, `SELECT COUNT(*) FROM batch_items WHERE batch_id = ? AND state <> 'pending'`, id)
				logf("bulk: %s: %d of %d invitations created, %d sent (%.0f/s so far)", round(at), created, b.Total, b.Sent, rate(b.Sent, at))
			}
		})
	if err != nil {
		end()
		return res, err
	}
	res.Sent = time.Since(start)
	res.Mailed = w.at.Sub(start)
	res.usage = end()
	if err := s.checkMail(ctx, target); err != nil {
		return res, err
	}
	if err := s.db.GetContext(ctx, &res.Invitation, `SELECT invitation_id FROM batch_items WHERE batch_id = ? AND seq = 0`, id); err != nil {
		return res, fmt.Errorf("an invitation of the batch: %w", err)
	}
	logf("bulk: %d people sent in %s (%.1f people/s)", opts.people, round(res.Sent), rate(opts.people, res.Sent))
	return res, nil
}

// histories reads the workflow histories: the length of one invitation workflow of each
// kind, the batch workflow's runs, and samples of invitation workflows of each phase.
func (s *stack) histories(ctx context.Context, res *results) error {
	length := func(workflowID string) (int, error) {
		events, err := s.history(ctx, workflowID, "")
		return len(events), err
	}
	var err error
	if len(res.single.Invitations) > 0 {
		if res.singleHistory, err = length(workflows.InvitationWorkflowID(res.single.Invitations[0])); err != nil {
			return err
		}
	}
	if res.bulkHistory, err = length(workflows.InvitationWorkflowID(res.bulk.Invitation)); err != nil {
		return err
	}
	batchID := workflows.BatchWorkflowID(res.bulk.BatchID)
	// The last run is the current one of the workflow ID.
	last, err := s.history(ctx, batchID, "")
	if err != nil {
		return err
	}
	res.batchLastRun = len(last)
	res.batch = readBatchTimeline([]timeline{readTimeline(last)})
	// Every run, oldest first, through visibility; the last run alone if it cannot answer.
	runs, err := s.client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Namespace: namespace, PageSize: 1000, Query: fmt.Sprintf("WorkflowId = '%s'", batchID),
	})
	if err != nil {
		logf("listing the batch workflow's runs: %v", err)
	} else {
		execs := runs.GetExecutions()
		slices.SortFunc(execs, func(a, b *workflowpb.WorkflowExecutionInfo) int {
			return a.GetStartTime().AsTime().Compare(b.GetStartTime().AsTime())
		})
		var timelines []timeline
		for _, e := range execs {
			events, err := s.history(ctx, batchID, e.GetExecution().GetRunId())
			if err != nil {
				return err
			}
			timelines = append(timelines, readTimeline(events))
		}
		res.batch = readBatchTimeline(timelines)
	}

	const samples = 25
	if res.singleSample, err = s.sampleInvitations(ctx, spread(res.single.Invitations, samples)); err != nil {
		return err
	}
	var bulkIDs []string
	if err := s.db.SelectContext(ctx, &bulkIDs, `SELECT invitation_id FROM batch_items WHERE batch_id = ? AND invitation_id IS NOT NULL ORDER BY seq`, res.bulk.BatchID); err != nil {
		return err
	}
	res.bulkSample, err = s.sampleInvitations(ctx, spread(bulkIDs, samples))
	return err
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second)
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	default:
		return d.Round(100 * time.Microsecond)
	}
}
