//go:build !nodev

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// The benchmark suite (-suite, what `make bench` runs): five figures, each measured on the
// local stack and set against a baseline measured in the same run, so that the machine's
// noise cancels.
//
//  1. Journeys per second (create through the API → e-mail sent → accept through the API →
//     account created), 50 clients at once, ÷ empty workflows per second (start → complete)
//     on the same server at the same concurrency; target ≥ 0.5.
//  2. p50 and p99 of POST /v1/invitations ÷ those of a bare ExecuteWorkflow start; of accept
//     ÷ those of a bare no-op Update; targets ≤ 1.5 (p50) and ≤ 2 (p99).
//  3. p99 of GET /v1/invitations?status=pending&organization_id=… over a million seeded
//     rows, first page and a deep page; target < 10 ms with an index range scan.
//  4. The worker's resident memory with N pending invitations waiting on timers and with
//     none; target: within 100 MB. The worker is the production binary (usher worker, built
//     with -tags nodev) run as a child process, so its memory is its own; it serves every
//     Usher task queue of the suite.
//  5. N people invited through one POST /v1/invitations/bulk: time to 202, and people per
//     second to all sent ÷ the create-and-send rate of benchmark 1's clients.
type suiteOptions struct {
	on           bool
	journeys     int
	bulk         int
	rows         int
	listRequests int
	settle       time.Duration
	only         string
	usherBin     string
}

func (o *suiteOptions) flags() {
	flag.BoolVar(&o.on, "suite", false, "run the benchmark suite (journeys, API latency, listing, idle memory, bulk) against baselines measured in the same run; one table; with -write, its \"## Benchmark suite\" section")
	flag.IntVar(&o.journeys, "suite-journeys", 1000, "suite: journeys (create → e-mail → accept) for benchmarks 1 and 2, and as many create-and-sends; each baseline takes as many samples; -concurrency clients")
	flag.IntVar(&o.bulk, "suite-bulk", 10_000, "suite: people in the one POST /v1/invitations/bulk call (5); left pending, they are the invitations waiting on timers of benchmark 4")
	flag.IntVar(&o.rows, "suite-rows", 1_000_000, "suite: invitation rows seeded straight into MariaDB for the listing benchmark (3)")
	flag.IntVar(&o.listRequests, "suite-list-requests", 200, "suite: requests of each listed page (3)")
	flag.DurationVar(&o.settle, "suite-settle", 20*time.Second, "suite: how long the worker idles before its memory is read (4)")
	flag.StringVar(&o.only, "suite-only", "", "suite: run only these, comma-separated: bulk (5, with 4), journey (1 and 2), listing (3)")
	flag.StringVar(&o.usherBin, "suite-usher", "", "suite: the usher binary to run as the worker (default: built now with go build -tags nodev ./cmd/usher)")
}

var suiteParts = []string{"bulk", "journey", "listing"}

func (o suiteOptions) check() error {
	if o.journeys < 1 || o.bulk < 1 || o.bulk > 10_000 || o.rows < 1000 || o.listRequests < 1 || o.settle < 0 {
		return errors.New("-suite needs -suite-journeys ≥ 1, -suite-bulk 1..10000 (the API's limit for one call), -suite-rows ≥ 1000, -suite-list-requests ≥ 1")
	}
	for p := range strings.SplitSeq(o.only, ",") {
		if p = strings.TrimSpace(p); p != "" && !slices.Contains(suiteParts, p) {
			return fmt.Errorf("-suite-only: unknown part %q (want some of %s)", p, strings.Join(suiteParts, ","))
		}
	}
	return nil
}

func (o suiteOptions) runs(part string) bool {
	if strings.TrimSpace(o.only) == "" {
		return true
	}
	for p := range strings.SplitSeq(o.only, ",") {
		if strings.TrimSpace(p) == part {
			return true
		}
	}
	return false
}

// suiteResults is everything the suite measured.
type suiteResults struct {
	opts    options
	machine machine
	ran     map[string]bool

	pressureBefore string // /proc/pressure/cpu "some" averages when the run began
	build          time.Duration

	sendOnly journeyRun    // create → e-mail, no accept (the create-and-send rate of 1)
	journey  journeyRun    // create → e-mail → accept
	empty    baselineRun   // empty workflows: start → complete; start latency
	update   baselineRun   // no-op updates on running workflows
	history  journeyTrace  // one journey's workflow
	emptyH   journeyTrace  // one empty workflow
	bulk     suiteBulkRun  // 5
	idle     idleResult    // 4
	listing  listingResult // 3

	wall time.Duration
}

func runSuite(ctx context.Context, opts options) error {
	began := time.Now()
	so := opts.suite
	res := suiteResults{opts: opts, ran: map[string]bool{}, pressureBefore: pressureAverages()}

	bin := so.usherBin
	if bin == "" && (so.runs("bulk") || so.runs("journey")) {
		dir, err := os.MkdirTemp("", "usher-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		logf("building the worker: go build -tags nodev ./cmd/usher")
		t := time.Now()
		if bin, err = buildUsher(ctx, dir); err != nil {
			return err
		}
		res.build = time.Since(t)
	}

	logf("starting Temporal (in-process), a fresh MariaDB database, the mail server and the API")
	s, err := startStack(ctx, opts)
	if err != nil {
		return err
	}
	defer func() {
		logf("stopping; dropping the database")
		s.stop()
	}()
	hook := s.hookMail()

	var child *childWorker
	if bin != "" {
		if child, err = s.startChildWorker(ctx, bin); err != nil {
			return err
		}
		defer child.stop()
		stopBaseline, err := s.startBaselineWorker()
		if err != nil {
			return err
		}
		defer stopBaseline()

		org, err := s.createOrganization(ctx, "Bench Suite")
		if err != nil {
			return err
		}
		if opts.warmup > 0 {
			logf("warming up: %d journeys, %d of each baseline", opts.warmup, opts.warmup)
			if _, err := s.journeys(ctx, hook, org, "warmup", opts.warmup, min(opts.warmup, opts.concurrency), true); err != nil {
				return fmt.Errorf("warming up: %w", err)
			}
			if _, err := s.emptyWorkflows(ctx, opts.warmup, min(opts.warmup, opts.concurrency)); err != nil {
				return fmt.Errorf("warming up: %w", err)
			}
			if _, err := s.noopUpdates(ctx, opts.warmup, min(opts.warmup, opts.concurrency)); err != nil {
				return fmt.Errorf("warming up: %w", err)
			}
		}

		if so.runs("bulk") {
			if res.bulk, res.idle, err = s.runSuiteBulk(ctx, opts, child); err != nil {
				return fmt.Errorf("bulk: %w", err)
			}
			res.ran["bulk"] = true
		}
		if so.runs("journey") {
			if err := s.runSuiteJourneys(ctx, opts, hook, org, &res); err != nil {
				return fmt.Errorf("journeys: %w", err)
			}
			res.ran["journey"] = true
		}
	}
	if so.runs("listing") {
		if res.listing, err = s.runListing(ctx, opts); err != nil {
			return fmt.Errorf("listing: %w", err)
		}
		res.ran["listing"] = true
	}

	res.wall = time.Since(began)
	res.machine = describeMachine()
	var version string
	if err := s.db.GetContext(ctx, &version, "SELECT VERSION()"); err == nil {
		res.machine.mariadb = version + " " + res.machine.mariadb
	}
	fmt.Print(res.table())
	fmt.Print("\n" + res.details())
	if opts.write != "" {
		if err := writeSectionNamed(opts.write, suiteHeading, res.markdown()); err != nil {
			return err
		}
		logf("wrote the \"%s\" section of %s", suiteHeading, opts.write)
	}
	return nil
}

// pressureAverages is the "some" line of /proc/pressure/cpu without its total.
func pressureAverages() string {
	raw, err := os.ReadFile("/proc/pressure/cpu")
	if err != nil {
		return "unknown"
	}
	for line := range strings.SplitSeq(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "some "); ok {
			if i := strings.Index(rest, " total="); i >= 0 {
				rest = rest[:i]
			}
			return rest
		}
	}
	return "unknown"
}

// pressureMeter measures the share of a stretch of time some task waited for a CPU.
type pressureMeter struct {
	start time.Time
	stall time.Duration
	ok    bool
}

func startPressure() pressureMeter {
	stall, ok := cpuPressureStall()
	return pressureMeter{start: time.Now(), stall: stall, ok: ok}
}

func (p pressureMeter) share() float64 {
	stall, ok := cpuPressureStall()
	if !ok || !p.ok {
		return -1
	}
	return (stall - p.stall).Seconds() / time.Since(p.start).Seconds()
}
