package devtemporal

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

var usherStatus = temporal.NewSearchAttributeKeyKeyword("UsherStatus")

// testLogger returns the server logger for tests: silent unless
// DEVTEMPORAL_LOG=1, then warnings and errors go to stderr.
func testLogger() *slog.Logger {
	if os.Getenv("DEVTEMPORAL_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func dial(t *testing.T, s *Server) client.Client {
	t.Helper()
	c, err := client.Dial(client.Options{
		HostPort:  s.FrontendAddress(),
		Namespace: s.Namespace(),
		Logger:    sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)),
	})
	if err != nil {
		t.Fatalf("dial %s: %v", s.FrontendAddress(), err)
	}
	t.Cleanup(c.Close)
	return c
}

func greetWorkflow(ctx workflow.Context, name string) (string, error) {
	if err := workflow.UpsertTypedSearchAttributes(ctx, usherStatus.ValueSet("x")); err != nil {
		return "", err
	}
	return "hello " + name, nil
}

func pickPort(t *testing.T) int {
	t.Helper()
	p, err := freePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// waitForVisibility polls ListWorkflow until query returns want executions.
func waitForVisibility(t *testing.T, c client.Client, query string, want int) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query})
		if err == nil && len(resp.GetExecutions()) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ListWorkflow(%q): got %d executions (err %v), want %d", query, len(resp.GetExecutions()), err, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestServerRunsWorkflowsWithSearchAttributesAndUI(t *testing.T) {
	uiPort := pickPort(t)
	begin := time.Now()
	s, err := Start(Options{
		UIPort:           uiPort,
		Namespace:        "usher-test",
		Logger:           testLogger(),
		SearchAttributes: map[string]enums.IndexedValueType{"UsherStatus": enums.INDEXED_VALUE_TYPE_KEYWORD},
	})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("Start took %v (frontend %s, UI %s)", time.Since(begin).Round(time.Millisecond), s.FrontendAddress(), s.UIAddress())
	defer s.Stop()

	if s.Namespace() != "usher-test" {
		t.Errorf("Namespace() = %q", s.Namespace())
	}
	if want := fmt.Sprintf("127.0.0.1:%d", uiPort); s.UIAddress() != want {
		t.Errorf("UIAddress() = %q, want %q", s.UIAddress(), want)
	}
	if !strings.HasPrefix(s.FrontendAddress(), "127.0.0.1:") {
		t.Errorf("FrontendAddress() = %q", s.FrontendAddress())
	}

	c := dial(t, s)
	w := worker.New(c, "devtemporal-test", worker.Options{})
	w.RegisterWorkflow(greetWorkflow)
	if err := w.Start(); err != nil {
		t.Fatalf("worker start: %v", err)
	}
	defer w.Stop()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "greet-1", TaskQueue: "devtemporal-test"}, greetWorkflow, "usher")
	if err != nil {
		t.Fatalf("ExecuteWorkflow: %v", err)
	}
	var got string
	if err := run.Get(ctx, &got); err != nil {
		t.Fatalf("workflow result: %v", err)
	}
	if got != "hello usher" {
		t.Fatalf("workflow returned %q", got)
	}

	waitForVisibility(t, c, "UsherStatus='x'", 1)
	waitForVisibility(t, c, "UsherStatus='other'", 0)

	resp, err := http.Get("http://" + s.UIAddress() + "/")
	if err != nil {
		t.Fatalf("GET UI /: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET UI / = %s", resp.Status)
	}
	if !strings.Contains(strings.ToLower(string(body)), "<html") {
		t.Errorf("GET UI / did not return HTML: %.200q", body)
	}

	addr, ui := s.FrontendAddress(), s.UIAddress()
	s.Stop()
	s.Stop() // idempotent
	for _, a := range []string{addr, ui} {
		if conn, err := net.DialTimeout("tcp", a, time.Second); err == nil {
			conn.Close()
			t.Errorf("%s still accepts connections after Stop", a)
		}
	}
}

// Several servers in one process (one per test package is the normal case,
// but nothing should be global), plus a persistent DBFile that is reopened
// with an extra search attribute, which then goes through the operator
// service instead of the initial namespace registration.
func TestConcurrentServersAndDBFileReuse(t *testing.T) {
	dbFile := filepath.Join(t.TempDir(), "sub", "temporal.db")

	var (
		wg      sync.WaitGroup
		servers [2]*Server
		errs    [2]error
	)
	begin := time.Now()
	for i := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			opts := Options{Logger: testLogger()}
			if i == 1 {
				opts.DBFile = dbFile
				opts.SearchAttributes = map[string]enums.IndexedValueType{"UsherStatus": enums.INDEXED_VALUE_TYPE_KEYWORD}
			}
			servers[i], errs[i] = Start(opts)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Start server %d: %v", i, err)
		}
		defer servers[i].Stop()
	}
	if servers[0].FrontendAddress() == servers[1].FrontendAddress() {
		t.Fatalf("both servers on %s", servers[0].FrontendAddress())
	}
	for _, s := range servers {
		if s.Namespace() != "default" || s.UIAddress() != "" {
			t.Errorf("Namespace()=%q UIAddress()=%q", s.Namespace(), s.UIAddress())
		}
		c := dial(t, s)
		if _, err := c.DescribeWorkflowExecution(context.Background(), "nope", ""); err == nil {
			t.Errorf("%s: describing a missing workflow succeeded", s.FrontendAddress())
		}
	}

	t.Logf("two concurrent servers up after %v", time.Since(begin).Round(time.Millisecond))

	// Leave a workflow in the file database, then restart on the same file.
	c := dial(t, servers[1])
	if _, err := c.ExecuteWorkflow(context.Background(),
		client.StartWorkflowOptions{ID: "persisted", TaskQueue: "nobody-polls"}, greetWorkflow, "x"); err != nil {
		t.Fatalf("ExecuteWorkflow: %v", err)
	}
	stopBegin := time.Now()
	servers[1].Stop()
	t.Logf("Stop took %v", time.Since(stopBegin).Round(time.Millisecond))

	begin = time.Now()
	s, err := Start(Options{
		DBFile: dbFile,
		Logger: testLogger(),
		SearchAttributes: map[string]enums.IndexedValueType{
			"UsherStatus": enums.INDEXED_VALUE_TYPE_KEYWORD,
			"UsherOrg":    enums.INDEXED_VALUE_TYPE_INT,
		},
	})
	if err != nil {
		t.Fatalf("restart on %s: %v", dbFile, err)
	}
	defer s.Stop()
	t.Logf("restart on existing DBFile (adding a search attribute) took %v", time.Since(begin).Round(time.Millisecond))
	c = dial(t, s)
	if _, err := c.DescribeWorkflowExecution(context.Background(), "persisted", ""); err != nil {
		t.Fatalf("workflow did not survive the restart: %v", err)
	}
	sa, err := c.OperatorService().ListSearchAttributes(context.Background(),
		&operatorservice.ListSearchAttributesRequest{Namespace: s.Namespace()})
	if err != nil {
		t.Fatal(err)
	}
	for name, typ := range map[string]enums.IndexedValueType{
		"UsherStatus": enums.INDEXED_VALUE_TYPE_KEYWORD,
		"UsherOrg":    enums.INDEXED_VALUE_TYPE_INT,
	} {
		if got := sa.GetCustomAttributes()[name]; got != typ {
			t.Errorf("search attribute %s = %v, want %v", name, got, typ)
		}
	}
	waitForVisibility(t, c, "UsherOrg=7", 0) // the new attribute is queryable
	s.Stop()

	// A conflicting type is reported, not silently ignored.
	if s2, err := Start(Options{DBFile: dbFile, SearchAttributes: map[string]enums.IndexedValueType{
		"UsherOrg": enums.INDEXED_VALUE_TYPE_KEYWORD,
	}}); err == nil {
		s2.Stop()
		t.Errorf("Start with a conflicting search attribute type succeeded")
	} else if !strings.Contains(err.Error(), "UsherOrg") {
		t.Errorf("unexpected error: %v", err)
	}
}

func TestStartRejectsBusyPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	if s, err := Start(Options{Port: port}); err == nil {
		s.Stop()
		t.Fatal("Start on a busy port succeeded")
	}
	if s, err := Start(Options{UIPort: port}); err == nil {
		s.Stop()
		t.Fatal("Start with a busy UI port succeeded")
	}
}

// A randomly chosen internal port that is taken by the time the server binds
// it must not kill the process (Temporal calls Fatal on listen errors): Start
// retries with new ports.
func TestStartRetriesOnInternalPortCollision(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port

	calls := 0
	choosePort = func(ip string) (int, error) {
		calls++
		if calls == 3 { // history's gRPC port in the first attempt
			return busyPort, nil
		}
		return freePort(ip)
	}
	defer func() { choosePort = freePort }()

	s, err := Start(Options{Logger: testLogger()})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer s.Stop()
	if calls <= 8 {
		t.Fatalf("Start did not retry (port picked %d times)", calls)
	}
	c := dial(t, s)
	if _, err := c.CheckHealth(context.Background(), &client.CheckHealthRequest{}); err != nil {
		t.Fatalf("CheckHealth: %v", err)
	}
}
