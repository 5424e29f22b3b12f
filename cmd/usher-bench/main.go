//go:build !nodev

// Command usher-bench measures bulk invitations against single ones, on the whole of Usher
// in one process: an in-process Temporal server (in-memory SQLite), a fresh MariaDB
// database (dropped at the end), the Mailgun test server answering at once, the worker
// (worker.Options{}: no send cap) and the API behind httptest.
//
//	go run ./cmd/usher-bench [-people 10000] [-single 1000] [-concurrency 50] [-write BENCHMARKS.md]
//
// With -suite it runs instead the benchmark suite of suite.go: invitation journeys, API
// latency, listing over a million rows, the worker's idle memory and one bulk call, each
// as a ratio to a baseline measured in the same run (make bench).
//
// Without -suite it first sends -single invitations through POST /v1/invitations, -concurrency at a time,
// and times them until every e-mail is in the mail server (the baseline); then it imports a
// CSV of -people people with send_invitation=true through POST /v1/users/import and times
// it until the batch reports everyone sent and the mail server holds every e-mail. The
// ratio of the two rates is the figure to compare across machines. MariaDB must answer on
// USHER_TEST_MYSQL_DSN (default root@tcp(127.0.0.1:3306)/), as for the tests.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

type options struct {
	people      int
	single      int
	concurrency int
	warmup      int
	bulkFirst   bool
	write       string
	detail      bool
	verbose     bool
	cpuProfile  string
	timeout     time.Duration
	// wftPollers, for experiments only, sets the worker's MaxConcurrentWorkflowTaskPollers
	// (0: worker.Options{}, that is worker.DefaultWorkflowTaskPollers).
	wftPollers int

	suite suiteOptions // -suite: benchmarks 1–5 against their baselines (suite.go)
}

func main() {
	var opts options
	flag.IntVar(&opts.people, "people", 10_000, "people in the imported CSV, all invited in one batch")
	flag.IntVar(&opts.single, "single", 1_000, "single invitations (POST /v1/invitations) for the baseline")
	flag.IntVar(&opts.concurrency, "concurrency", 50, "single invitation requests in flight at once")
	flag.IntVar(&opts.warmup, "warmup", 20, "invitations sent each way before measuring, to warm the stack up")
	flag.BoolVar(&opts.bulkFirst, "bulk-first", false, "run the bulk import before the baseline (default: baseline first, so the smaller phase leaves less behind for the other)")
	flag.StringVar(&opts.write, "write", "", "also write the results as the \"## Bulk invitations\" section of this Markdown file (e.g. BENCHMARKS.md)")
	flag.BoolVar(&opts.detail, "detail", false, "also print where the time goes: activities and SQL statements of each phase")
	flag.BoolVar(&opts.verbose, "v", false, "show warnings of the Temporal server, the SDK and the API")
	flag.StringVar(&opts.cpuProfile, "cpuprofile", "", "write a CPU profile of each phase to PREFIX-single.pprof and PREFIX-bulk.pprof")
	flag.DurationVar(&opts.timeout, "timeout", 3*time.Hour, "give up after this long")
	flag.IntVar(&opts.wftPollers, "wft-pollers", 0, "experiment: start the worker with this many workflow task pollers instead of worker.Options{} (worker.DefaultWorkflowTaskPollers)")
	opts.suite.flags()
	flag.Parse()
	if flag.NArg() > 0 || opts.people < 1 || opts.people > 100_000 || opts.single < 1 || opts.concurrency < 1 || opts.warmup < 0 || opts.wftPollers == 1 || opts.wftPollers < 0 {
		fmt.Fprintln(os.Stderr, "usage: usher-bench [-people 1..100000] [-single N] [-concurrency N] [-write BENCHMARKS.md]")
		flag.PrintDefaults()
		os.Exit(2)
	}

	if opts.suite.on {
		if err := opts.suite.check(); err != nil {
			fmt.Fprintln(os.Stderr, "usher-bench:", err)
			os.Exit(2)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(ctx, opts.timeout)
	var err error
	if opts.suite.on {
		err = runSuite(ctx, opts)
	} else {
		err = run(ctx, opts)
	}
	cancel()
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "usher-bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, opts options) error {
	began := time.Now()
	logf("starting Temporal (in-process), a fresh MariaDB database, the mail server, the worker (%s, no send cap) and the API", strings.Trim(opts.workerOptions(), "`"))
	s, err := startStack(ctx, opts)
	if err != nil {
		return err
	}
	defer func() {
		logf("stopping; dropping the database")
		s.stop()
	}()
	setup := time.Since(began)

	if opts.warmup > 0 {
		logf("warming up: %d single invitations and a batch of %d", opts.warmup, opts.warmup)
		if err := s.warmUp(ctx, opts.warmup); err != nil {
			return fmt.Errorf("warming up: %w", err)
		}
	}

	var res results
	phases := []func() error{
		func() (err error) { res.single, err = s.runSingle(ctx, opts); return err },
		func() (err error) { res.bulk, err = s.runBulk(ctx, opts); return err },
	}
	if opts.bulkFirst {
		phases[0], phases[1] = phases[1], phases[0]
	}
	for _, phase := range phases {
		if err := phase(); err != nil {
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("%w (after -timeout %s)", err, opts.timeout)
			}
			return err
		}
	}
	if err := s.histories(ctx, &res); err != nil {
		return fmt.Errorf("reading workflow histories: %w", err)
	}
	res.opts = opts
	res.setup = setup
	res.wall = time.Since(began)
	res.peakRSS = peakRSS()
	res.mailBytes = s.mailBytes()
	res.machine = describeMachine()
	var version string
	if err := s.db.GetContext(ctx, &version, "SELECT VERSION()"); err == nil {
		res.machine.mariadb = version + " " + res.machine.mariadb
	}

	fmt.Print(res.table())
	if opts.detail {
		fmt.Print("\n" + res.detail())
	}
	if opts.write != "" {
		if err := writeSection(opts.write, res.markdown()); err != nil {
			return err
		}
		logf("wrote the \"%s\" section of %s", sectionHeading, opts.write)
	}
	return nil
}

// logf reports progress on stderr, so that stdout holds only the results.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "usher-bench: "+format+"\n", args...)
}
