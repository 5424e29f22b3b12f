//go:build !nodev

package main

import (
	"fmt"
	"strings"
	"time"
)

const suiteHeading = "## Benchmark suite"

// mb is bytes in decimal megabytes, the unit of benchmark 4's target.
func mb(n int64) string { return fmt.Sprintf("%.0f MB", float64(n)/1e6) }

func ratioOf(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func durRatio(a, b time.Duration) float64 { return ratioOf(float64(a), float64(b)) }

func met(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

// table is the suite's one table: benchmark, measured, baseline, ratio, target, met?
func (r suiteResults) table() string {
	var b strings.Builder
	b.WriteString("| benchmark | measured | baseline (same run) | ratio | target | met? |\n|---|---:|---:|---:|---|:---:|\n")
	row := func(cells ...string) { fmt.Fprintf(&b, "| %s |\n", strings.Join(cells, " | ")) }
	c := r.opts.concurrency
	if r.ran["journey"] {
		j, e := r.journey, r.empty
		tr := ratioOf(j.rate(), e.rate())
		row(fmt.Sprintf("1. Journeys/s (create → e-mail → accept → account), %d clients", c),
			fmt.Sprintf("%.1f /s", j.rate()), fmt.Sprintf("%.1f /s empty workflows (start → complete)", e.rate()),
			fmt.Sprintf("%.2f", tr), "≥ 0.5", met(tr >= 0.5))
		row("1. History of one journey's workflow", fmt.Sprintf("%d events, %d state transitions", r.history.Events, r.history.StateTransitions),
			fmt.Sprintf("%d events, %d state transitions (empty workflow)", r.emptyH.Events, r.emptyH.StateTransitions),
			fmt.Sprintf("%.1f / %.1f", ratioOf(float64(r.history.Events), float64(r.emptyH.Events)), ratioOf(float64(r.history.StateTransitions), float64(r.emptyH.StateTransitions))),
			"reported", "–")
		lat := func(name string, meas, base []time.Duration, baseName string, p float64, target float64) {
			m, bl := percentile(meas, p), percentile(base, p)
			q := durRatio(m, bl)
			row(fmt.Sprintf("2. %s p%.0f", name, p*100), millis(m), fmt.Sprintf("%s %s", millis(bl), baseName),
				fmt.Sprintf("%.2f", q), fmt.Sprintf("≤ %.1f", target), met(q <= target))
		}
		lat("`POST /v1/invitations`", j.Create, e.Lat, "`ExecuteWorkflow` start", 0.50, 1.5)
		lat("`POST /v1/invitations`", j.Create, e.Lat, "`ExecuteWorkflow` start", 0.99, 2)
		lat("`POST /v1/public/invitations/accept`", j.AcceptLat, r.update.Lat, "no-op `UpdateWorkflow`", 0.50, 1.5)
		lat("`POST /v1/public/invitations/accept`", j.AcceptLat, r.update.Lat, "no-op `UpdateWorkflow`", 0.99, 2)
	}
	if r.ran["listing"] {
		l := r.listing
		first, deep := percentile(l.First, 0.99), percentile(l.Deep, 0.99)
		row(fmt.Sprintf("3. `GET /v1/invitations?status=pending&organization_id=…` p99, first page (%s rows)", thousands(l.Rows)),
			fmt.Sprintf("%s (SQL %s)", millis(first), millis(percentile(l.FirstSQL, 0.99))), "–", "–", "< 10 ms", met(first < 10*time.Millisecond))
		row(fmt.Sprintf("3. … p99, deep page (after %s of %s pending)", thousands(l.DeepRow), thousands(l.OrgPending)),
			fmt.Sprintf("%s (SQL %s)", millis(deep), millis(percentile(l.DeepSQL, 0.99))), "–", "–", "< 10 ms", met(deep < 10*time.Millisecond))
		row("3. `EXPLAIN` of the store's query (first page; deep page)", fmt.Sprintf("%s; %s", planString(l.PlanFirst), planString(l.PlanDeep)),
			"–", "–", "index range scan", met(isRangeScan(l.PlanFirst) && isRangeScan(l.PlanDeep)))
	}
	if r.ran["bulk"] {
		i, bk := r.idle, r.bulk
		diff := i.RSSN - i.RSS0
		row(fmt.Sprintf("4. Worker RSS (`usher worker`), %s invitations pending on timers vs none", thousands(i.Pending)),
			mb(i.RSSN), mb(i.RSS0)+" with none", fmt.Sprintf("%+.0f MB", float64(diff)/1e6), "within 100 MB", met(diff <= 100e6 && -diff <= 100e6))
		row(fmt.Sprintf("5. Bulk: %s people in one `POST /v1/invitations/bulk`, time to 202", thousands(bk.People)), seconds(bk.To202), "–", "–", "reported", "–")
		if r.ran["journey"] {
			q := ratioOf(bk.rate(), r.sendOnly.rate())
			row("5. Bulk: people/s, request → all sent", fmt.Sprintf("%.1f /s", bk.rate()),
				fmt.Sprintf("%.1f /s create-and-send (1's clients without the accept)", r.sendOnly.rate()), fmt.Sprintf("%.2f", q), "reported (no target set)", "–")
		} else {
			row("5. Bulk: people/s, request → all sent", fmt.Sprintf("%.1f /s", bk.rate()), "(journey not run)", "–", "reported", "–")
		}
	}
	return b.String()
}

// details are the figures behind the table.
func (r suiteResults) details() string {
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, "- "+format+"\n", args...) }
	if r.ran["journey"] {
		j, s, e, u := r.journey, r.sendOnly, r.empty, r.update
		pct := func(l []time.Duration) string {
			return fmt.Sprintf("%s / %s / %s", millis(percentile(l, 0.5)), millis(percentile(l, 0.99)), millis(l[len(l)-1]))
		}
		line("Journeys (%d, %d clients): %s; `POST /v1/invitations` p50/p99/max %s; create → e-mail at the mail server %s; accept %s. CPU pressure %s.",
			j.Count, r.opts.concurrency, seconds(j.Wall), pct(j.Create), pct(j.Sent), pct(j.AcceptLat), percent(j.Pressure))
		line("Create-and-send (%d, same clients, no accept): %.1f /s in %s; create p50/p99/max %s; create → e-mail %s. CPU pressure %s.",
			s.Count, s.rate(), seconds(s.Wall), pct(s.Create), pct(s.Sent), percent(s.Pressure))
		line("Baseline, empty workflows (%d, %d clients, own task queue, worker in the bench process with %d workflow task pollers): %.1f /s in %s; `ExecuteWorkflow` p50/p99/max %s. CPU pressure %s.",
			e.Count, r.opts.concurrency, 16, e.rate(), seconds(e.Wall), pct(e.Lat), percent(e.Pressure))
		line("Baseline, no-op updates (%d, %d clients, each on an idle running workflow, `WaitForStage: Completed`): p50/p99/max %s. CPU pressure %s.",
			u.Count, r.opts.concurrency, pct(u.Lat), percent(u.Pressure))
		line("One journey's workflow: %d events, %d state transitions: %s. The empty workflow: %d events, %d state transitions.",
			r.history.Events, r.history.StateTransitions, r.history.summary(), r.emptyH.Events, r.emptyH.StateTransitions)
	}
	if r.ran["bulk"] {
		bk, i := r.bulk, r.idle
		line("Bulk: %s people (%s KiB of JSON): 202 in %s; batch finished (every invitation created, workflow started) at %s; everyone sent at %s (%.1f /s). CPU pressure %s.",
			thousands(bk.People), thousands(bk.BodyBytes>>10), seconds(bk.To202), seconds(bk.Finished), seconds(bk.Sent), bk.rate(), percent(bk.Pressure))
		goLine := func(g goStats) string {
			if g.HeapInuse < 0 {
				return "Go figures unknown"
			}
			return fmt.Sprintf("Go heap in use %s, heap held %s, stacks %s, %s goroutines", mb(int64(g.HeapInuse)), mb(int64(g.HeapSys)), mb(int64(g.StackInuse)), thousands(int(g.Goroutines)))
		}
		line("Worker memory after idling %s: none pending %s (%s; %.2f cores busy meanwhile); %s pending (%s in MySQL) %s (%s; %.2f cores busy).",
			i.Settle, mb(i.RSS0), goLine(i.Go0), i.CPU0, thousands(i.Pending), thousands(i.PendingCheck), mb(i.RSSN), goLine(i.GoN), i.CPUN)
	}
	if r.ran["listing"] {
		l := r.listing
		pct := func(l []time.Duration) string {
			return fmt.Sprintf("%s / %s", millis(percentile(l, 0.5)), millis(percentile(l, 0.99)))
		}
		line("Listing: %s rows seeded in %s (%s in the listed organization, %s of them pending; the rest over %d organizations); InnoDB buffer pool %d MiB. %d sequential requests per page, after 20 unmeasured; page size %d.",
			thousands(l.Rows), seconds(l.Seed), thousands(l.OrgRows), thousands(l.OrgPending), l.Orgs-1, l.BufferPoolMB, l.Requests, l.PageSize)
		line("Listing p50 / p99: first page HTTP %s, store %s; deep page HTTP %s, store %s. The deep page's cursor is the one a client following `next_cursor` holds there (checked against the API's encoding: %v).",
			pct(l.First), pct(l.FirstSQL), pct(l.Deep), pct(l.DeepSQL), l.CursorOK)
		line("The store's statement: `%s`; EXPLAIN, first page: %s; deep page: %s.", strings.Join(strings.Fields(l.Query), " "), planString(l.PlanFirst), planString(l.PlanDeep))
	}
	line("Machine: %s; %d CPUs%s; %s; MariaDB %s. CPU pressure (/proc/pressure/cpu some) when the run began: %s.", r.machine.goVersion, r.machine.cpus, r.machine.cpuModel, r.machine.kernel, r.machine.mariadb, r.pressureBefore)
	line("Whole run %s (building the worker %s).", r.wall.Round(time.Second), seconds(r.build))
	return b.String()
}

// markdown is the section written to BENCHMARKS.md.
func (r suiteResults) markdown() string {
	var b strings.Builder
	so := r.opts.suite
	b.WriteString(suiteHeading + "\n\n")
	b.WriteString("<!-- Written by `make bench` (go run ./cmd/usher-bench -suite -write BENCHMARKS.md); edits here are replaced on the next run. -->\n\n")
	args := fmt.Sprintf("-suite -suite-journeys %d -suite-bulk %d -suite-rows %d -suite-list-requests %d -suite-settle %s -concurrency %d -warmup %d",
		so.journeys, so.bulk, so.rows, so.listRequests, so.settle, r.opts.concurrency, r.opts.warmup)
	if so.only != "" {
		args += " -suite-only " + so.only
	}
	fmt.Fprintf(&b, "`go run ./cmd/usher-bench %s`, %s", args, r.machine.date)
	if r.machine.commit != "" {
		fmt.Fprintf(&b, ", Usher at %s", r.machine.commit)
	}
	b.WriteString(".\n\n")
	fmt.Fprintf(&b, "One process holds the Temporal server (devtemporal, in-memory SQLite, namespace `%s`), the API behind httptest, "+
		"the Mailgun test server answering at once, and the baselines' worker (its own task queue); Usher's worker is the production "+
		"binary (`usher worker`, built with `-tags nodev`, no send cap) in a child process, so that benchmark 4 reads its own memory. "+
		"MariaDB is a fresh database, dropped afterwards. Each ratio divides by a baseline measured in the same run on the same server, "+
		"so that the machine's noise mostly cancels; the CPU pressure of each phase says how noisy it was.\n\n", namespace)
	b.WriteString(r.table())
	b.WriteString("\n")
	b.WriteString(r.details())
	return b.String()
}
