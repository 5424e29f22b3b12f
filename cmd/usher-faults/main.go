//go:build !nodev

// Command usher-faults is Usher's fault suite: each scenario runs a realistic load
// (hundreds of invitation journeys in flight: created through the API, the link read from
// the e-mail, accepted, revoked or left pending) while it injects one fault, then checks
// the invariants straight in MySQL and Temporal: every invitation reaches its expected
// state, no journey is lost, no account, membership or e-mail exists twice, no workflow is
// stuck.
//
//	go run ./cmd/usher-faults [-scenarios contest,worker-kill,...] [-journeys 300] [-write RELIABILITY.md]
//
// The Temporal server and the Mailgun test server run in this process; `usher worker` and
// `usher api` (built once, -tags nodev) run as child processes so that they can be killed
// with SIGKILL. Each scenario has a fresh database on the MariaDB of the tests
// (USHER_TEST_MYSQL_DSN, default root@tcp(127.0.0.1:3306)/), except mariadb-stop, which
// starts a MariaDB server of its own (a temporary data directory and port) so that
// stopping it disturbs no one. It exits non-zero if any invariant fails.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/usherhq/usher/internal/testdb"
)

type options struct {
	scenarios   []string
	journeys    int
	concurrency int
	settle      time.Duration
	write       string
	bin         string
	keepLogs    bool
	verbose     bool
}

func main() {
	var o options
	var names string
	var all []string
	for _, s := range scenarios {
		all = append(all, s.name)
	}
	flag.StringVar(&names, "scenarios", strings.Join(all, ","), "comma-separated scenarios to run, of: "+strings.Join(all, ", "))
	flag.IntVar(&o.journeys, "journeys", 300, "journeys per scenario")
	flag.IntVar(&o.concurrency, "concurrency", 100, "clients driving journeys at once")
	flag.DurationVar(&o.settle, "settle", 4*time.Minute, "how long to wait, after the load, for everything to reach its final state")
	flag.StringVar(&o.write, "write", "", "also write the results as the \"## Fault suite\" section of this Markdown file (e.g. RELIABILITY.md)")
	flag.StringVar(&o.bin, "usher", "", "the usher binary to run as worker and API (default: build ./cmd/usher with -tags nodev)")
	flag.BoolVar(&o.keepLogs, "keep-logs", false, "keep the children's logs (printed path) even when every scenario passes")
	flag.BoolVar(&o.verbose, "v", false, "show the Temporal server's warnings")
	flag.Parse()
	for _, n := range strings.Split(names, ",") {
		if n = strings.TrimSpace(n); n == "" {
			continue
		}
		if findScenario(n) == nil {
			fmt.Fprintf(os.Stderr, "usher-faults: unknown scenario %q (have %s)\n", n, strings.Join(all, ", "))
			os.Exit(2)
		}
		o.scenarios = append(o.scenarios, n)
	}
	if flag.NArg() > 0 || len(o.scenarios) == 0 || o.journeys < 20 || o.concurrency < 1 {
		fmt.Fprintln(os.Stderr, "usage: usher-faults [-scenarios a,b] [-journeys N>=20] [-concurrency N] [-write RELIABILITY.md]")
		flag.PrintDefaults()
		os.Exit(2)
	}

	// The driver logs every connection MariaDB closed while it was down; the report counts
	// what matters.
	_ = mysql.SetLogger(log.New(io.Discard, "", 0))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	results, err := run(ctx, o)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "usher-faults:", err)
		os.Exit(1)
	}
	for _, r := range results {
		if !r.pass() {
			os.Exit(1)
		}
	}
}

func findScenario(name string) *scenario {
	for i := range scenarios {
		if scenarios[i].name == name {
			return &scenarios[i]
		}
	}
	return nil
}

func run(ctx context.Context, o options) ([]*result, error) {
	began := time.Now()
	logDir, err := os.MkdirTemp("", "usher-faults-")
	if err != nil {
		return nil, err
	}
	_ = os.Chmod(logDir, 0o755)
	if o.bin == "" {
		o.bin = filepath.Join(logDir, "usher")
		logf("building ./cmd/usher (-tags nodev)")
		build := exec.CommandContext(ctx, "go", "build", "-tags", "nodev", "-o", o.bin, "./cmd/usher")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return nil, fmt.Errorf("building usher: %w", err)
		}
	}
	logf("logs of the worker and API processes under %s", logDir)

	var results []*result
	for _, name := range o.scenarios {
		sc := findScenario(name)
		r := runScenario(ctx, o, sc, logDir)
		results = append(results, r)
		fmt.Println(r.summary())
		if ctx.Err() != nil {
			break
		}
	}
	rep := report{results: results, opts: o, wall: time.Since(began), machine: describeMachine(ctx)}
	fmt.Print("\n" + rep.table() + "\n" + rep.details())
	if o.write != "" {
		if err := writeSection(o.write, rep.markdown()); err != nil {
			return results, err
		}
		logf("wrote the \"%s\" section of %s", sectionHeading, o.write)
	}
	passed := true
	for _, r := range results {
		passed = passed && r.pass()
	}
	if passed && !o.keepLogs {
		_ = os.RemoveAll(logDir)
	} else {
		logf("logs kept under %s", logDir)
	}
	return results, ctx.Err()
}

// result is one scenario's outcome.
type result struct {
	name, title string
	journeys    int
	refused     int
	contests    int
	load        time.Duration // first request to the last client finished
	settle      time.Duration
	err         error // the scenario could not run, or did not settle
	v           *verdict
	notes       []string
	unexpected  []string // processes that exited on their own
}

func (r *result) pass() bool {
	return r.err == nil && r.v != nil && r.v.pass()
}

func runScenario(ctx context.Context, o options, sc *scenario, logDir string) *result {
	m := sc.mix(o.journeys)
	p := newPlan(sc.name, m)
	r := &result{name: sc.name, title: sc.title, journeys: len(p.journeys), refused: p.count(kindRefused), contests: p.count(kindContest)}
	logf("=== %s: %s; %d journeys", sc.name, sc.title, r.journeys)

	eo := envOptions{bin: o.bin, serverDSN: testdb.ServerDSN(), logDir: logDir, verbose: o.verbose}
	fault := sc.fault
	if sc.privateDB {
		db, err := startPrivateMariaDB(ctx, filepath.Join(logDir, sc.name))
		if err != nil {
			r.err = err
			return r
		}
		defer db.stop()
		eo.serverDSN = db.dsn()
		fault = func(ctx context.Context, e *env, loadDone <-chan struct{}) ([]string, error) {
			select {
			case <-time.After(m.spread / 3):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			logf("mariadb-stop: stopping MariaDB (%d journeys in flight)", inFlight.Load())
			stopped := time.Now()
			db.stop()
			select {
			case <-time.After(20*time.Second - time.Since(stopped)):
			case <-ctx.Done():
			}
			// Started again whatever happens: the checks need it.
			if err := db.start(context.Background()); err != nil {
				return nil, err
			}
			logf("mariadb-stop: MariaDB is back after %s", time.Since(stopped).Round(100*time.Millisecond))
			return []string{fmt.Sprintf("MariaDB down %s, from %s into the load", time.Since(stopped).Round(100*time.Millisecond), (m.spread / 3).Round(time.Second))}, nil
		}
	}

	e, err := startEnv(ctx, sc.name, eo)
	if err != nil {
		r.err = err
		return r
	}
	defer e.stop()

	began := time.Now()
	loadDone := make(chan struct{})
	faultDone := make(chan struct{})
	go func() {
		defer close(faultDone)
		notes, err := fault(ctx, e, loadDone)
		r.notes = append(r.notes, notes...)
		if err != nil {
			r.err = errors.Join(r.err, fmt.Errorf("fault: %w", err))
		}
	}()
	peakInFlight.Store(0)
	stopProgress := progress(e, p)
	p.run(ctx, e, o.concurrency, m.spread+5*time.Minute)
	r.load = time.Since(began)
	r.notes = append(r.notes, fmt.Sprintf("at most %d journeys in flight at once on the clients' side", peakInFlight.Load()))
	close(loadDone)
	<-faultDone
	logf("%s: load done in %s; waiting for everything to settle", sc.name, r.load.Round(100*time.Millisecond))
	r.settle, err = e.waitSettled(ctx, p, o.settle)
	stopProgress()
	if err != nil {
		logf("%s: %v", sc.name, err)
		r.notes = append(r.notes, err.Error())
	}
	checkCtx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if r.v, err = e.check(checkCtx, p); err != nil {
		r.err = errors.Join(r.err, fmt.Errorf("checking: %w", err))
	}
	for _, c := range []*child{e.worker, e.api} {
		if n := c.unexpected.Load(); n > 0 {
			r.unexpected = append(r.unexpected, fmt.Sprintf("%s exited on its own %d times (last: %s)", c.name, n, c.lastExit))
		}
	}
	retries := 0
	for _, j := range p.journeys {
		retries += j.retries
	}
	if retries > 0 {
		r.notes = append(r.notes, fmt.Sprintf("clients sent %d requests again after a network error or a 5xx", retries))
	}
	if r.v != nil {
		for _, problem := range r.v.problems {
			logf("%s: PROBLEM: %s", sc.name, problem)
		}
	}
	return r
}

// progress logs the state of the load every 10 s until the returned function is called.
func progress(e *env, p *plan) func() {
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				created := 0
				for _, j := range p.journeys {
					j.mu.Lock()
					if j.id != "" {
						created++
					}
					j.mu.Unlock()
				}
				logf("%s: %d/%d created, %d clients at work, %d e-mails at the provider (%d send requests)",
					e.name, created, len(p.journeys), inFlight.Load(), len(e.mail.Messages()), e.mail.Requests())
			}
		}
	}()
	return func() { close(quit); <-done }
}

// logf reports progress on stderr, so that stdout holds only the results.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s usher-faults: "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}
