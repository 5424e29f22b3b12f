package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/usherhq/usher/internal/apiclient"
)

// Exit codes of the API commands (usher users …).
const (
	exitOK          = 0   // everything went through
	exitProblems    = 1   // some rows were bad or some invitations failed
	exitUsage       = 2   // wrong arguments or configuration
	exitAPI         = 3   // the API answered an error, or could not be reached
	exitInterrupted = 130 // Ctrl-C (128 + SIGINT); a batch carries on on the server
)

const (
	defaultAPIURL   = "http://localhost:8080"
	maxBadRowsShown = 50
)

// errExited is what a command returns after it has reported and exited through
// cliEnv.exit; it is only ever seen when exit returns, that is in tests.
var errExited = errors.New("exited")

// cliEnv is what the API commands take from the outside world, so that tests can give
// their own.
type cliEnv struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	// stderrTerminal says whether stderr is a terminal: a live progress bar then, a
	// progress line every progressEvery otherwise.
	stderrTerminal bool
	httpClient     *http.Client
	pollInterval   time.Duration // between two GET /v1/batches/{id}
	pollTimeout    time.Duration // of one GET /v1/batches/{id}
	progressEvery  time.Duration // between two progress lines when stderr is not a terminal
	// pollGiveUp is how long polling keeps retrying a server that is unreachable or
	// answers 5xx/429 before it gives up.
	pollGiveUp time.Duration
	exit       func(code int)
}

func defaultCLIEnv() *cliEnv {
	return &cliEnv{
		stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv,
		stderrTerminal: term.IsTerminal(int(os.Stderr.Fd())),
		httpClient:     &http.Client{},
		pollInterval:   500 * time.Millisecond,
		pollTimeout:    15 * time.Second,
		progressEvery:  5 * time.Second,
		pollGiveUp:     30 * time.Second,
		exit:           os.Exit,
	}
}

func newUsersCommand() *cobra.Command { return usersCommand(defaultCLIEnv()) }

// usersCommand is "usher users", the people on organizations' files, through the API.
func usersCommand(env *cliEnv) *cobra.Command {
	users := &cobra.Command{
		Use:   "users",
		Short: "Manage people on organizations' files through the API (USHER_API_URL, USHER_API_KEY)",
	}
	users.AddCommand(usersImportCommand(env))
	return users
}

type importOptions struct {
	organization    string
	sendInvitations bool
	channel         string
	expiresIn       string
	json            bool
}

func usersImportCommand(env *cliEnv) *cobra.Command {
	var o importOptions
	cmd := &cobra.Command{
		Use:   "import FILE.csv --organization ORG_ID [flags]",
		Short: "Import people from a CSV file onto an organization's file, and invite them",
		Long: `Import people from a CSV file onto an organization's file through Usher's API
(POST /v1/users/import), and with --send-invitations invite them all in one batch, showing
its progress until every invitation is sent or has failed.

The file ("-" reads standard input) starts with a header naming the columns email, name,
phone, locale and role, in any order; only email is required. Each row is checked on its
own: bad rows are listed and do not stop the good ones. Importing the same file again is
safe: nobody is added twice.

Environment:
  USHER_API_URL  the API's address (default ` + defaultAPIURL + `)
  USHER_API_KEY  an API key (required; see "usher apikey create")

Exit status:
  0    every row imported and, with --send-invitations, every invitation sent
  1    some rows were bad, or some invitations failed
  2    wrong arguments or configuration
  3    the API answered an error or could not be reached
  130  interrupted (Ctrl-C); a batch being watched carries on on the server`,
		Example: `  usher users import people.csv --organization 0190a0c4-…
  usher users import people.csv --organization 0190a0c4-… --send-invitations --expires-in 72h
  cat people.csv | usher users import - --organization 0190a0c4-… --json`,
		Args: cobra.ArbitraryArgs, // checked in run, so that a wrong count exits 2 too
		RunE: func(cmd *cobra.Command, args []string) error {
			if code := runUsersImport(cmd.Context(), env, o, args, cmd.Flags().Changed); code != exitOK {
				env.exit(code)
				return errExited
			}
			return nil
		},
	}
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		usageError(env, c, err.Error())
		env.exit(exitUsage)
		return errExited
	})
	f := cmd.Flags()
	f.StringVar(&o.organization, "organization", "", "the organization whose file the people go on (required)")
	f.BoolVar(&o.sendInvitations, "send-invitations", false, "invite everyone imported, in one batch, and show its progress")
	f.StringVar(&o.channel, "channel", "", `how to invite: "email" (the server's default) or "sms"`)
	f.StringVar(&o.expiresIn, "expires-in", "", "how long invitations stay open once sent, such as 72h (the server's default is 168h)")
	f.BoolVar(&o.json, "json", false, "print one JSON object with the import result and the final batch state instead of tables")
	return cmd
}

func usageError(env *cliEnv, cmd *cobra.Command, msg string) {
	fmt.Fprintf(env.stderr, "usher: %s\nRun '%s --help' for usage.\n", msg, cmd.CommandPath())
}

// importReport is the output of --json.
type importReport struct {
	Import apiclient.ImportResult `json:"import"`
	// Batch is the batch's last state seen: finished unless polling was interrupted or
	// failed. Null without --send-invitations or when nobody was invited.
	Batch *apiclient.Batch `json:"batch"`
}

func runUsersImport(ctx context.Context, env *cliEnv, o importOptions, args []string, changed func(string) bool) int {
	const cmdPath = "usher users import"
	usage := func(format string, a ...any) int {
		fmt.Fprintf(env.stderr, "usher: %s\nRun '%s --help' for usage.\n", fmt.Sprintf(format, a...), cmdPath)
		return exitUsage
	}
	switch {
	case len(args) != 1:
		return usage("give one CSV file to import (or - for standard input)")
	case strings.TrimSpace(o.organization) == "":
		return usage("--organization is required")
	case o.channel != "" && o.channel != "email" && o.channel != "sms":
		return usage(`--channel must be "email" or "sms"`)
	case !o.sendInvitations && (changed("channel") || changed("expires-in")):
		return usage("--channel and --expires-in go with --send-invitations")
	}
	if o.expiresIn != "" {
		if d, err := time.ParseDuration(o.expiresIn); err != nil || d <= 0 {
			return usage("--expires-in must be a duration such as 72h or 30m")
		}
	}

	apiURL, apiKey, msg := apiConfig(env.getenv)
	if msg != "" {
		fmt.Fprintln(env.stderr, "usher:", msg)
		return exitUsage
	}

	var csv io.Reader
	name := args[0]
	if name == "-" {
		csv, name = env.stdin, "standard input"
	} else {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintf(env.stderr, "usher: cannot read the CSV file: %v\n", err)
			return exitUsage
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil && st.IsDir() {
			fmt.Fprintf(env.stderr, "usher: %s is a directory, not a CSV file\n", name)
			return exitUsage
		}
		csv = f
	}

	client := apiclient.New(apiURL, apiKey, env.httpClient)
	result, err := client.ImportUsers(ctx, apiclient.ImportRequest{
		OrganizationID: strings.TrimSpace(o.organization), SendInvitations: o.sendInvitations,
		Channel: o.channel, ExpiresIn: o.expiresIn, CSV: csv,
	})
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(env.stderr, "\nusher: interrupted during the import; rows read before that may be on file already (importing the file again is safe)")
			return exitInterrupted
		}
		reportAPIError(env.stderr, "the import failed", apiURL, err)
		return exitAPI
	}

	code := exitOK
	if len(result.Errors) > 0 {
		code = exitProblems
	}
	if !o.json {
		printImportSummary(env.stdout, name, o.organization, result)
	}

	report := importReport{Import: result}
	if result.BatchID != nil {
		w := watcher{env: env, client: client, apiURL: apiURL}
		batch, watchCode := w.watch(ctx, *result.BatchID)
		report.Batch = batch
		if watchCode != exitOK {
			code = watchCode
		} else if batch.Failed > 0 && code == exitOK {
			code = exitProblems
		}
		if !o.json && watchCode == exitOK {
			printBatchSummary(env.stdout, o.organization, *batch)
		}
	} else if o.sendInvitations && !o.json {
		if result.Rows == 0 {
			fmt.Fprintln(env.stdout, "\nNobody to invite: the file has no rows.")
		} else {
			fmt.Fprintln(env.stdout, "\nNobody to invite: no row was good.")
		}
	}
	if o.json {
		out, err := json.MarshalIndent(report, "", "  ")
		if err != nil { // cannot happen with these types
			fmt.Fprintln(env.stderr, "usher:", err)
			return exitAPI
		}
		fmt.Fprintf(env.stdout, "%s\n", out)
	}
	return code
}

// apiConfig reads USHER_API_URL and USHER_API_KEY; msg says what is wrong with them.
func apiConfig(getenv func(string) string) (apiURL, apiKey, msg string) {
	apiURL = strings.TrimSpace(getenv("USHER_API_URL"))
	if apiURL == "" {
		apiURL = defaultAPIURL
	}
	u, err := url.Parse(apiURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", "", fmt.Sprintf("USHER_API_URL %q is not an http(s) address such as %s", apiURL, defaultAPIURL)
	}
	apiKey = strings.TrimSpace(getenv("USHER_API_KEY"))
	if apiKey == "" {
		return "", "", `USHER_API_KEY is not set: export an API key (create one with "usher apikey create --name NAME", or use the one "usher dev" printed)`
	}
	return strings.TrimRight(apiURL, "/"), apiKey, ""
}

// reportAPIError explains a failed call: the API's answer, or why it could not be reached.
func reportAPIError(w io.Writer, what, apiURL string, err error) {
	apiErr, ok := apiclient.AsError(err)
	if !ok {
		fmt.Fprintf(w, "usher: %s: cannot reach Usher at %s: %v\n", what, apiURL, unwrapURLError(err))
		return
	}
	fmt.Fprintf(w, "usher: %s: %s\n", what, apiErr.Error())
	for _, k := range slices.Sorted(maps.Keys(apiErr.Details)) {
		fmt.Fprintf(w, "  %s: %v\n", k, apiErr.Details[k])
	}
	switch {
	case apiErr.Status == http.StatusUnauthorized:
		fmt.Fprintln(w, "  check USHER_API_KEY: the server does not accept it")
	case apiErr.Code == "" && apiErr.Status == http.StatusNotFound:
		fmt.Fprintf(w, "  is USHER_API_URL (%s) the address of Usher's API?\n", apiURL)
	}
	if apiErr.RequestID != "" {
		fmt.Fprintf(w, "  request ID: %s\n", apiErr.RequestID)
	}
}

// unwrapURLError drops the method and URL that *url.Error repeats.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func printImportSummary(w io.Writer, name, organization string, r apiclient.ImportResult) {
	fmt.Fprintf(w, "Import of %s into organization %s:\n", name, organization)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  rows:\t%d\n", r.Rows)
	fmt.Fprintf(tw, "  imported:\t%d\n", r.Imported)
	fmt.Fprintf(tw, "  created:\t%d\n", r.Created)
	fmt.Fprintf(tw, "  bad rows:\t%d\n", len(r.Errors))
	_ = tw.Flush()
	if len(r.Errors) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ROW\tFIELD\tREASON")
	for _, e := range r.Errors[:min(len(r.Errors), maxBadRowsShown)] {
		row, field := "-", "-"
		if e.Row > 0 {
			row = fmt.Sprint(e.Row)
		}
		reason := e.Reason
		if e.Field != "" {
			field = oneLine(e.Field)
			reason = strings.TrimPrefix(reason, e.Field+": ") // the server's messages may name the field again
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", row, field, oneLine(reason))
	}
	_ = tw.Flush()
	if more := len(r.Errors) - maxBadRowsShown; more > 0 {
		fmt.Fprintf(w, "… and %d more (--json lists them all)\n", more)
	}
}

// oneLine keeps a cell of the table on its line and in its column.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

func printBatchSummary(w io.Writer, organization string, b apiclient.Batch) {
	fmt.Fprintf(w, "\nInvitations: %d sent, %d failed (batch %s)\n", b.Sent, b.Failed, b.ID)
	if b.Failed > 0 {
		fmt.Fprintf(w, "The people whose invitation failed: GET /v1/users?organization_id=%s&invitation_status=error\n",
			url.QueryEscape(organization))
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

// watcher follows a batch until it has finished, showing its progress on stderr.
type watcher struct {
	env    *cliEnv
	client *apiclient.Client
	apiURL string

	bar       *progressbar.ProgressBar
	lastLine  time.Time
	announced bool
}

// watch polls the batch every pollInterval until it has finished, and returns its last
// state seen (nil when none was) and exitOK, or exitAPI / exitInterrupted with the
// reason reported on stderr.
func (w *watcher) watch(ctx context.Context, id string) (*apiclient.Batch, int) {
	var last *apiclient.Batch
	var failingSince time.Time
	ticker := time.NewTicker(w.env.pollInterval)
	defer ticker.Stop()
	for {
		pollCtx, cancel := context.WithTimeout(ctx, w.env.pollTimeout)
		b, err := w.client.GetBatch(pollCtx, id)
		cancel()
		switch {
		case ctx.Err() != nil:
			w.stopped(last, id, "")
			return last, exitInterrupted
		case err != nil:
			if failingSince.IsZero() {
				failingSince = time.Now()
			}
			if !retryable(err) || time.Since(failingSince) >= w.env.pollGiveUp {
				w.endBar()
				reportAPIError(w.env.stderr, "reading the batch's progress failed", w.apiURL, err)
				w.stopped(last, id, "stopped watching")
				return last, exitAPI
			}
		default:
			failingSince = time.Time{}
			last = &b
			w.show(b)
			if b.Finished {
				w.endBar()
				return last, exitOK
			}
		}
		select {
		case <-ctx.Done():
			w.stopped(last, id, "")
			return last, exitInterrupted
		case <-ticker.C:
		}
	}
}

// retryable errors are those that may pass: the server unreachable, unavailable or
// overloaded, or one poll timing out.
func retryable(err error) bool {
	if apiErr, ok := apiclient.AsError(err); ok {
		return apiErr.Temporary()
	}
	return true
}

func (w *watcher) describe(b apiclient.Batch) string {
	return fmt.Sprintf("sent %d, failed %d", b.Sent, b.Failed)
}

// show shows a state of the batch: on a terminal as a live bar, otherwise as a line
// every progressEvery.
func (w *watcher) show(b apiclient.Batch) {
	stderr := w.env.stderr
	if !w.announced {
		w.announced = true
		fmt.Fprintf(stderr, "\nInviting %s by %s (batch %s). Ctrl-C stops watching; the batch carries on on the server.\n",
			plural(b.Total, "person", "people"), b.Channel, b.ID)
	}
	if !w.env.stderrTerminal {
		if b.Finished || (!w.lastLine.IsZero() && time.Since(w.lastLine) < w.env.progressEvery) {
			return
		}
		w.lastLine = time.Now()
		fmt.Fprintf(stderr, "invitations: %d/%d done (%d sent, %d failed)\n", b.Done, b.Total, b.Sent, b.Failed)
		return
	}
	if w.bar == nil {
		w.bar = progressbar.NewOptions(max(b.Total, 1),
			progressbar.OptionSetWriter(stderr),
			progressbar.OptionSetDescription(w.describe(b)),
			progressbar.OptionShowCount(),
			progressbar.OptionSetWidth(30),
			progressbar.OptionSetPredictTime(false),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionSetRenderBlankState(true),
		)
	}
	if b.Total > 0 && b.Total != w.bar.GetMax() {
		w.bar.ChangeMax(b.Total)
	}
	w.bar.Describe(w.describe(b))
	_ = w.bar.Set(b.Done)
}

// endBar leaves the bar, if any, on its own line.
func (w *watcher) endBar() {
	if w.bar != nil {
		fmt.Fprintln(w.env.stderr)
		w.bar = nil
	}
}

// stopped says that watching stopped and the batch goes on without us.
func (w *watcher) stopped(last *apiclient.Batch, id, why string) {
	w.endBar()
	if why == "" {
		why = "interrupted"
	}
	progress := ""
	if last != nil {
		progress = fmt.Sprintf(" at %d/%d done (%d sent, %d failed)", last.Done, last.Total, last.Sent, last.Failed)
	}
	fmt.Fprintf(w.env.stderr, "usher: %s%s; the batch %s carries on on the server: GET /v1/batches/%s shows its progress\n",
		why, progress, id, id)
}
