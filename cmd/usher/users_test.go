package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/usherhq/usher/internal/apiclient"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata/ with the output of the tests")

const (
	testOrg     = "0190f3c2-0000-7000-8000-00000000a11c"
	testBatchID = "0190f3c2-7a9e-7c1b-9b3e-2d1f0a7c4e55"
	testAPIKey  = "usk_test"
)

var testCreatedAt = time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)

type progressStep struct{ sent, failed int }

// fakeUsher imitates POST /v1/users/import and GET /v1/batches/{id}: the import checks
// each row a little the way Usher does (an e-mail address with an @, a phone number with a
// country code, no address twice) and starts a batch for the good rows; the batch then
// moves through steps, one per GET, and has finished at the last one.
type fakeUsher struct {
	steps        []progressStep
	batchErrors  int             // how many GETs of the batch answer 503 first
	batchStatus  int             // when not 0, every GET of the batch answers this error
	existing     map[string]bool // addresses that have an account already
	onPoll       func(n int)     // called at the n-th GET of the batch (from 1)
	importStatus int             // when not 0, the import answers this error

	mu          sync.Mutex
	imports     int
	polls       int
	query       string
	contentType string
	length      int64
	body        string
	total       int
}

func (f *fakeUsher) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/users/import", f.importPeople)
	mux.HandleFunc("GET /v1/batches/{id}", f.getBatch)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-ID", "req-42")
		if r.Header.Get("Authorization") != "Bearer "+testAPIKey {
			writeFakeError(w, http.StatusUnauthorized, "unauthorized", "send an API key as Authorization: Bearer <key>", nil)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func writeFakeError(w http.ResponseWriter, status int, code, message string, details map[string]any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": code, "message": message, "details": details}})
}

func (f *fakeUsher) importPeople(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.imports++
	f.query, f.contentType, f.length, f.body = r.URL.RawQuery, r.Header.Get("Content-Type"), r.ContentLength, string(body)
	q := r.URL.Query()
	switch {
	case f.importStatus != 0:
		writeFakeError(w, f.importStatus, "temporarily_unavailable", "a service Usher depends on is unavailable; try again shortly", nil)
		return
	case q.Get("organization_id") != testOrg:
		writeFakeError(w, http.StatusNotFound, "organization_not_found", fmt.Sprintf("no organization with id %q", q.Get("organization_id")), nil)
		return
	case q.Get("send_invitation") == "true" && q.Get("channel") == "sms":
		writeFakeError(w, http.StatusBadRequest, "sms_not_configured", "SMS is not configured on this server", nil)
		return
	}
	type rowError struct {
		Row    int    `json:"row,omitempty"`
		Field  string `json:"field,omitempty"`
		Reason string `json:"reason"`
	}
	out := struct {
		Rows     int        `json:"rows"`
		Imported int        `json:"imported"`
		Created  int        `json:"created"`
		Errors   []rowError `json:"errors"`
		BatchID  *string    `json:"batch_id"`
	}{Errors: []rowError{}}
	cr := csv.NewReader(bytes.NewReader(body))
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		writeFakeError(w, http.StatusBadRequest, "invalid_request", "csv: the first row must be a header", map[string]any{"field": "csv"})
		return
	}
	col := map[string]int{}
	for i, name := range header {
		col[strings.ToLower(strings.TrimSpace(name))] = i
	}
	get := func(rec []string, name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	seen := map[string]int{}
	for row := 2; ; row++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		out.Rows++
		if err != nil {
			out.Errors = append(out.Errors, rowError{Row: row, Reason: "not a valid CSV row"})
			continue
		}
		email := strings.ToLower(get(rec, "email"))
		at := strings.Index(email, "@")
		switch {
		case email == "":
			out.Errors = append(out.Errors, rowError{row, "email", "email: is required"})
		case at < 1 || at == len(email)-1:
			out.Errors = append(out.Errors, rowError{row, "email", fmt.Sprintf("%q is not a valid e-mail address", get(rec, "email"))})
		case get(rec, "phone") != "" && !strings.HasPrefix(get(rec, "phone"), "+"):
			out.Errors = append(out.Errors, rowError{row, "phone", "phone: has no country code (write it as +44 20 7946 0958)"})
		case seen[email] != 0:
			out.Errors = append(out.Errors, rowError{row, "email", fmt.Sprintf("the same address as row %d", seen[email])})
		default:
			seen[email] = row
			out.Imported++
			if !f.existing[email] {
				out.Created++
			}
		}
	}
	if q.Get("send_invitation") == "true" && out.Imported > 0 {
		id := testBatchID
		out.BatchID = &id
		f.total = out.Imported
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func (f *fakeUsher) getBatch(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.polls++
	n, total, onPoll := f.polls, f.total, f.onPoll
	f.mu.Unlock()
	if onPoll != nil {
		onPoll(n)
	}
	switch {
	case r.PathValue("id") != testBatchID:
		writeFakeError(w, http.StatusNotFound, "batch_not_found", fmt.Sprintf("no batch with id %q", r.PathValue("id")), nil)
		return
	case f.batchStatus != 0:
		writeFakeError(w, f.batchStatus, "internal_error", "internal error", nil)
		return
	case n <= f.batchErrors:
		writeFakeError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "a service Usher depends on is unavailable; try again shortly", nil)
		return
	}
	i := min(n-f.batchErrors, len(f.steps)) - 1
	step := f.steps[i]
	b := apiclient.Batch{
		ID: testBatchID, Channel: "email", Total: total, Sent: step.sent, Failed: step.failed,
		Done: step.sent + step.failed, Queued: total - step.sent - step.failed, CreatedAt: testCreatedAt,
	}
	if i == len(f.steps)-1 {
		finished := testCreatedAt.Add(42 * time.Second)
		b.Finished, b.FinishedAt = true, &finished
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(b)
}

type cliResult struct {
	code           int
	stdout, stderr string
}

type cliTest struct {
	fake     *fakeUsher
	api      http.Handler      // served instead of fake when set
	env      map[string]string // USHER_API_URL and USHER_API_KEY are set unless given here
	stdin    string
	terminal bool
	ctx      context.Context
	giveUp   time.Duration
}

// run runs "usher <args>" against the fake, fast: polling every millisecond and, on a
// non-terminal, a progress line at every poll.
func (c cliTest) run(t *testing.T, args ...string) cliResult {
	t.Helper()
	if c.fake == nil {
		c.fake = &fakeUsher{}
	}
	handler := c.api
	if handler == nil {
		handler = c.fake.handler()
	}
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	vars := map[string]string{"USHER_API_URL": srv.URL, "USHER_API_KEY": testAPIKey}
	for k, v := range c.env {
		vars[k] = v
	}
	if c.ctx == nil {
		c.ctx = context.Background()
	}
	if c.giveUp == 0 {
		c.giveUp = time.Minute
	}
	var stdout, stderr bytes.Buffer
	res := cliResult{code: -1}
	env := &cliEnv{
		stdin: strings.NewReader(c.stdin), stdout: &stdout, stderr: &stderr,
		getenv:         func(k string) string { return vars[k] },
		stderrTerminal: c.terminal,
		httpClient:     srv.Client(),
		pollInterval:   time.Millisecond,
		pollTimeout:    5 * time.Second,
		progressEvery:  0,
		pollGiveUp:     c.giveUp,
		exit:           func(code int) { res.code = code },
	}
	root := &cobra.Command{Use: "usher", SilenceUsage: true, SilenceErrors: true}
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	root.AddCommand(usersCommand(env))
	root.AddCommand(adminCommands(env)...)
	root.SetArgs(args)
	err := root.ExecuteContext(c.ctx)
	switch {
	case err == nil && res.code == -1:
		res.code = 0
	case err != nil && !errors.Is(err, errExited):
		t.Fatalf("usher %s: %v", strings.Join(args, " "), err)
	}
	res.stdout, res.stderr = stdout.String(), stderr.String()
	return res
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *updateGolden {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/usher -run %s -update to write it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test -update rewrites it)\n--- got ---\n%s\n--- want ---\n%s", path, got, want)
	}
}

func checkCode(t *testing.T, res cliResult, want int) {
	t.Helper()
	if res.code != want {
		t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", res.code, want, res.stdout, res.stderr)
	}
}

func TestUsersImportSummary(t *testing.T) {
	fake := &fakeUsher{existing: map[string]bool{"cy@example.com": true}}
	res := cliTest{fake: fake}.run(t, "users", "import", "testdata/people.csv", "--organization", testOrg)
	checkCode(t, res, exitProblems)
	checkGolden(t, "import_summary.golden", res.stdout)
	if res.stderr != "" {
		t.Errorf("stderr: %q", res.stderr)
	}
	want, _ := os.ReadFile("testdata/people.csv")
	switch {
	case fake.query != "organization_id="+testOrg+"&send_invitation=false":
		t.Errorf("query %q", fake.query)
	case fake.contentType != "text/csv":
		t.Errorf("Content-Type %q", fake.contentType)
	case fake.length != -1:
		t.Errorf("Content-Length %d: the file should be streamed, not read first", fake.length)
	case fake.body != string(want):
		t.Errorf("body %q", fake.body)
	case fake.polls != 0:
		t.Errorf("%d polls without --send-invitations", fake.polls)
	}
}

func TestUsersImportAllGood(t *testing.T) {
	res := cliTest{stdin: "email,name\nann@example.com,Ann\nbo@example.com,Bo\n"}.
		run(t, "users", "import", "-", "--organization", testOrg)
	checkCode(t, res, exitOK)
	checkGolden(t, "import_all_good.golden", res.stdout)
}

func TestUsersImportManyBadRows(t *testing.T) {
	var b strings.Builder
	b.WriteString("email,name\nann@example.com,Ann\n")
	for i := range 62 {
		fmt.Fprintf(&b, "nobody%d,Nobody\n", i)
	}
	res := cliTest{stdin: b.String()}.run(t, "users", "import", "-", "--organization", testOrg)
	checkCode(t, res, exitProblems)
	checkGolden(t, "import_many_bad.golden", res.stdout)
}

func TestUsersImportInvitations(t *testing.T) {
	fake := &fakeUsher{steps: []progressStep{{0, 0}, {1, 0}, {2, 0}, {3, 0}}}
	res := cliTest{fake: fake}.run(t, "users", "import", "testdata/good.csv", "--organization", testOrg,
		"--send-invitations", "--expires-in", "72h")
	checkCode(t, res, exitOK)
	checkGolden(t, "import_invitations.stdout.golden", res.stdout)
	checkGolden(t, "import_invitations.stderr.golden", res.stderr)
	if fake.polls != 4 {
		t.Errorf("%d polls, want 4 (until finished)", fake.polls)
	}
	if want := "expires_in=72h&organization_id=" + testOrg + "&send_invitation=true"; fake.query != want {
		t.Errorf("query %q, want %q", fake.query, want)
	}
}

func TestUsersImportFailedInvitations(t *testing.T) {
	fake := &fakeUsher{steps: []progressStep{{1, 0}, {2, 1}}}
	res := cliTest{fake: fake}.run(t, "users", "import", "testdata/good.csv", "--organization", testOrg, "--send-invitations")
	checkCode(t, res, exitProblems)
	checkGolden(t, "import_failed_invitations.golden", res.stdout)
}

func TestUsersImportJSON(t *testing.T) {
	fake := &fakeUsher{steps: []progressStep{{0, 0}, {1, 1}}}
	res := cliTest{fake: fake}.run(t, "users", "import", "testdata/people.csv", "--organization", testOrg,
		"--send-invitations", "--json")
	checkCode(t, res, exitProblems)
	checkGolden(t, "import.json.golden", res.stdout)
	var report importReport
	if err := json.Unmarshal([]byte(res.stdout), &report); err != nil {
		t.Fatalf("stdout is not one JSON object: %v", err)
	}
	if report.Batch == nil || !report.Batch.Finished {
		t.Errorf("batch %+v, want its finished state", report.Batch)
	}
}

func TestUsersImportJSONWithoutInvitations(t *testing.T) {
	res := cliTest{}.run(t, "users", "import", "testdata/good.csv", "--organization", testOrg, "--json")
	checkCode(t, res, exitOK)
	checkGolden(t, "import_no_invitations.json.golden", res.stdout)
}

func TestUsersImportProgressBar(t *testing.T) {
	fake := &fakeUsher{steps: []progressStep{{0, 0}, {1, 0}, {2, 1}}}
	res := cliTest{fake: fake, terminal: true}.run(t, "users", "import", "testdata/good.csv", "--organization", testOrg, "--send-invitations")
	checkCode(t, res, exitProblems)
	for _, want := range []string{"sent 2, failed 1", "(3/3)", "100%"} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("the bar on stderr has no %q:\n%q", want, res.stderr)
		}
	}
	if strings.Contains(res.stderr, "invitations: ") {
		t.Errorf("progress lines on a terminal:\n%s", res.stderr)
	}
}

func TestUsersImportInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fake := &fakeUsher{steps: []progressStep{{0, 0}, {1, 0}, {2, 0}, {3, 0}}, onPoll: func(n int) {
		if n == 3 {
			cancel()
		}
	}}
	res := cliTest{fake: fake, ctx: ctx}.run(t, "users", "import", "testdata/good.csv", "--organization", testOrg, "--send-invitations")
	checkCode(t, res, exitInterrupted)
	if want := "usher: interrupted at 1/3 done (1 sent, 0 failed); the batch " + testBatchID + " carries on on the server"; !strings.Contains(res.stderr, want) {
		t.Errorf("stderr has no %q:\n%s", want, res.stderr)
	}
	if strings.Contains(res.stdout, "Invitations:") {
		t.Errorf("a final summary after an interruption:\n%s", res.stdout)
	}
}

func TestUsersImportPollingRetries(t *testing.T) {
	fake := &fakeUsher{batchErrors: 2, steps: []progressStep{{1, 0}, {3, 0}}}
	res := cliTest{fake: fake}.run(t, "users", "import", "testdata/good.csv", "--organization", testOrg, "--send-invitations")
	checkCode(t, res, exitOK)
	if fake.polls != 4 {
		t.Errorf("%d polls, want 2 failed and 2 answered", fake.polls)
	}
}

func TestUsersImportPollingGivesUp(t *testing.T) {
	fake := &fakeUsher{batchStatus: http.StatusInternalServerError, steps: []progressStep{{0, 0}}}
	res := cliTest{fake: fake, giveUp: 20 * time.Millisecond}.run(t, "users", "import", "testdata/good.csv",
		"--organization", testOrg, "--send-invitations", "--json")
	checkCode(t, res, exitAPI)
	for _, want := range []string{"reading the batch's progress failed: usher API: 500 internal_error", "carries on on the server"} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("stderr has no %q:\n%s", want, res.stderr)
		}
	}
	// The import went through: --json still tells the batch's ID.
	if !strings.Contains(res.stdout, `"batch_id": "`+testBatchID+`"`) {
		t.Errorf("stdout:\n%s", res.stdout)
	}
}

func TestUsersImportAPIErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fake  *fakeUsher
		env   map[string]string
		args  []string
		wants []string
	}{
		{name: "unknown organization", args: []string{"--organization", "nope"}, wants: []string{
			`usher: the import failed: usher API: 404 organization_not_found: no organization with id "nope"`, "request ID: req-42"}},
		{name: "refused key", env: map[string]string{"USHER_API_KEY": "usk_wrong"}, args: []string{"--organization", testOrg},
			wants: []string{"401 unauthorized", "check USHER_API_KEY"}},
		{name: "sms", args: []string{"--organization", testOrg, "--send-invitations", "--channel", "sms"},
			wants: []string{"400 sms_not_configured"}},
		{name: "unavailable", fake: &fakeUsher{importStatus: http.StatusServiceUnavailable}, args: []string{"--organization", testOrg},
			wants: []string{"503 temporarily_unavailable"}},
		{name: "unreachable", env: map[string]string{"USHER_API_URL": "http://127.0.0.1:1"}, args: []string{"--organization", testOrg},
			wants: []string{"usher: the import failed: cannot reach Usher at http://127.0.0.1:1: "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := cliTest{fake: tc.fake, env: tc.env}.run(t, append([]string{"users", "import", "testdata/good.csv"}, tc.args...)...)
			checkCode(t, res, exitAPI)
			for _, want := range tc.wants {
				if !strings.Contains(res.stderr, want) {
					t.Errorf("stderr has no %q:\n%s", want, res.stderr)
				}
			}
			if res.stdout != "" {
				t.Errorf("stdout: %q", res.stdout)
			}
		})
	}
}

func TestUsersImportUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{name: "missing key", env: map[string]string{"USHER_API_KEY": ""}, args: []string{"testdata/good.csv", "--organization", testOrg},
			want: "usher: USHER_API_KEY is not set"},
		{name: "bad URL", env: map[string]string{"USHER_API_URL": "localhost:8080"}, args: []string{"testdata/good.csv", "--organization", testOrg},
			want: `usher: USHER_API_URL "localhost:8080" is not an http(s) address`},
		{name: "no file", args: []string{"--organization", testOrg}, want: "give one CSV file"},
		{name: "two files", args: []string{"a.csv", "b.csv", "--organization", testOrg}, want: "give one CSV file"},
		{name: "missing file", args: []string{"testdata/nope.csv", "--organization", testOrg}, want: "cannot read the CSV file"},
		{name: "directory", args: []string{"testdata", "--organization", testOrg}, want: "is a directory"},
		{name: "no organization", args: []string{"testdata/good.csv"}, want: "--organization is required"},
		{name: "unknown flag", args: []string{"testdata/good.csv", "--organisation", testOrg}, want: "unknown flag: --organisation"},
		{name: "bad channel", args: []string{"testdata/good.csv", "--organization", testOrg, "--send-invitations", "--channel", "fax"}, want: "--channel must be"},
		{name: "bad expiry", args: []string{"testdata/good.csv", "--organization", testOrg, "--send-invitations", "--expires-in", "3 days"}, want: "--expires-in must be"},
		{name: "channel without invitations", args: []string{"testdata/good.csv", "--organization", testOrg, "--channel", "email"}, want: "go with --send-invitations"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := &fakeUsher{}
			res := cliTest{fake: fake, env: tc.env}.run(t, append([]string{"users", "import"}, tc.args...)...)
			checkCode(t, res, exitUsage)
			if !strings.Contains(res.stderr, tc.want) {
				t.Errorf("stderr has no %q:\n%s", tc.want, res.stderr)
			}
			if fake.imports != 0 {
				t.Error("the API was called")
			}
		})
	}
}
