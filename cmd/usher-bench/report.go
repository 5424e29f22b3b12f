//go:build !nodev

package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/usherhq/usher/internal/testdb"
	"github.com/usherhq/usher/worker"
)

type results struct {
	opts   options
	single singleResult
	bulk   bulkResult

	singleHistory, bulkHistory int // events of one invitation workflow
	batchLastRun               int // events of the batch workflow's last run
	batch                      batchTimeline
	singleSample, bulkSample   invitationSample

	setup, wall time.Duration
	peakRSS     int64 // bytes, VmHWM of this process
	mailBytes   int64
	machine     machine
}

func (r results) bulkRate() float64   { return rate(r.bulk.People, r.bulk.Sent) }
func (r results) singleRate() float64 { return rate(r.single.Count, r.single.Mailed) }

func (r results) ratio() float64 {
	if r.singleRate() == 0 {
		return 0
	}
	return r.bulkRate() / r.singleRate()
}

// table is the one table of results, in Markdown (it reads as well in a terminal).
func (r results) table() string {
	var b strings.Builder
	row := func(what, value string) { fmt.Fprintf(&b, "| %s | %s |\n", what, value) }
	b.WriteString("| measure | result |\n|---|---:|\n")
	bk, sg := r.bulk, r.single
	row("Worker", r.opts.workerOptions()+": no send cap")
	row("Bulk: people in the CSV (`POST /v1/users/import?send_invitation=true`)", fmt.Sprintf("%s (%d KiB)", thousands(bk.People), bk.CSVBytes>>10))
	row("Bulk: the import answered (rows checked, people stored, batch stored and started)", fmt.Sprintf("%s (%s rows/s)", seconds(bk.Import), thousands(int(rate(bk.People, bk.Import)))))
	row("Bulk: batch finished (every invitation created and its workflow started)", fmt.Sprintf("%s (%.1f people/s; %s sent by then)", seconds(bk.Started), rate(bk.People, bk.Started), thousands(bk.SentAtDone)))
	row("Bulk: every e-mail in the mail server", seconds(bk.Mailed))
	row("Bulk: the batch reports `sent` = total", seconds(bk.Sent))
	row("**Bulk: people/s** (request → all sent)", fmt.Sprintf("**%.1f**", r.bulkRate()))
	row(fmt.Sprintf("Single: invitations (`POST /v1/invitations`, %d at a time)", r.opts.concurrency), thousands(sg.Count))
	row("Single: API answer p50 / p99 / max", fmt.Sprintf("%s / %s / %s", millis(sg.P50), millis(sg.P99), millis(sg.Max)))
	row("Single: every request answered", seconds(sg.Answered))
	row("Single: every e-mail in the mail server", seconds(sg.Mailed))
	row("**Single: invitations/s** (first request → all e-mails)", fmt.Sprintf("**%.1f**", r.singleRate()))
	row("**Ratio bulk people/s ÷ single invitations/s**", fmt.Sprintf("**%.2f**", r.ratio()))
	row("History of one invitation workflow, e-mail sent (single / from the batch)", fmt.Sprintf("%d / %d events", r.singleHistory, r.bulkHistory))
	runs := ""
	if len(r.batch.Runs) > 1 {
		parts := make([]string, len(r.batch.Runs))
		for i, n := range r.batch.Runs {
			parts[i] = strconv.Itoa(n)
		}
		runs = fmt.Sprintf(" (%d runs: %s)", len(r.batch.Runs), strings.Join(parts, ", "))
	}
	row("History of the batch workflow's last run", fmt.Sprintf("%d events%s", r.batchLastRun, runs))
	row("Peak RSS of the process (Temporal server, worker, API, mail server)", fmt.Sprintf("%s MiB (of which the mail server's bodies: %s)", thousands(int(r.peakRSS>>20)), size(r.mailBytes)))
	row("CPU busy, cores of "+strconv.Itoa(r.machine.cpus)+": this process / MariaDB (single; bulk)", fmt.Sprintf("%s; %s", cores(sg.usage), cores(bk.usage)))
	row("Machine noise: share of time tasks waited for a CPU, /proc/pressure/cpu (single; bulk)", fmt.Sprintf("%s; %s", percent(sg.CPUPressure), percent(bk.CPUPressure)))
	row("Whole run (start-up, warm-up, both phases)", fmt.Sprintf("%s (start-up %s)", r.wall.Round(time.Second), seconds(r.setup)))
	return b.String()
}

func cores(u usage) string {
	s := fmt.Sprintf("%.2f", u.CPU.Seconds()/u.Wall.Seconds())
	if u.HaveDBCPU {
		s += fmt.Sprintf(" / %.2f", u.DBCPU.Seconds()/u.Wall.Seconds())
	} else {
		s += " / ?"
	}
	return s
}

// detail is where the time went in each phase: activities and SQL.
func (r results) detail() string {
	var b strings.Builder
	type ph struct {
		name string
		per  int
		unit string
		u    usage
	}
	phases := []ph{{"bulk", r.bulk.People, "person", r.bulk.usage}, {"single", r.single.Count, "invitation", r.single.usage}}

	b.WriteString("Activities (time in the activity function; queue wait is scheduled → started):\n\n")
	b.WriteString("| phase | activity | runs | mean | max | mean queue wait | sum |\n|---|---|---:|---:|---:|---:|---:|\n")
	for _, p := range phases {
		for _, a := range p.u.Activities {
			name := a.Name
			if a.Local {
				name += " (local)"
			}
			wait := "–"
			if !a.Local && a.Count > 0 {
				wait = millis(a.Waited / time.Duration(a.Count))
			}
			extra := ""
			if a.Failed > 0 || a.Retries > 0 {
				extra = fmt.Sprintf(" (%d failed, %d retries)", a.Failed, a.Retries)
			}
			fmt.Fprintf(&b, "| %s | %s | %s%s | %s | %s | %s | %s |\n", p.name, name, thousands(a.Count), extra,
				millis(a.Total/time.Duration(max(a.Count, 1))), millis(a.Max), wait, seconds(a.Total))
		}
	}

	bt := r.batch
	b.WriteString("\nThe batch workflow, from its histories (all runs):\n\n")
	b.WriteString("| from the first run's start to the last run's end | some `InviteBatchItems` running | none running | between runs (continue-as-new) | workflow tasks: waited for the worker (sum / max) |\n|---:|---:|---:|---:|---:|\n")
	fmt.Fprintf(&b, "| %s | %s | %s | %s | %s / %s over %d tasks |\n", seconds(bt.Span), seconds(bt.Busy), seconds(bt.Idle), seconds(bt.BetweenRuns),
		seconds(bt.WorkflowTaskWait), seconds(bt.WorkflowTaskMax), bt.WorkflowTasks)

	b.WriteString("\nInvitation workflows, mean over a sample of each phase, from their histories (workflow start → invitation e-mail sent):\n\n")
	b.WriteString("| phase | sampled | start → sent | workflow tasks waiting for the worker | send activity waiting in its queue (retries included) | send activity running | events |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for _, p := range []struct {
		name string
		s    invitationSample
	}{{"bulk", r.bulkSample}, {"single", r.singleSample}} {
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %d |\n", p.name, p.s.Count, millis(p.s.ToSent), millis(p.s.WorkflowTaskToSent),
			millis(p.s.SendWait), millis(p.s.SendRun), p.s.Events)
	}

	b.WriteString("\nWorkflow starts through the Temporal client (`ExecuteWorkflow`: the API for single invitations, the batch activity for each person):\n\n")
	b.WriteString("| phase | starts | mean | max | sum |\n|---|---:|---:|---:|---:|\n")
	for _, p := range phases {
		st := p.u.Starts
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", p.name, thousands(st.Count), millis(st.Total/time.Duration(max(st.Count, 1))), millis(st.Max), seconds(st.Total))
	}

	b.WriteString("\nSQL (every statement of the process, API and worker; round trips count a prepare, a BEGIN and a COMMIT as one each):\n\n")
	b.WriteString("| phase | statements | prepared | transactions | round trips | round trips per item | time waiting on MySQL (summed over connections) |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for _, p := range phases {
		q := p.u.SQL
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %.1f per %s | %s |\n", p.name, thousands(q.Statements), thousands(q.Prepared),
			thousands(q.Transactions), thousands(q.RoundTrips), float64(q.RoundTrips)/float64(max(p.per, 1)), p.unit, seconds(q.Time))
	}
	b.WriteString("\nInnoDB row locks (SHOW GLOBAL STATUS; server-wide, so other users of the server count too):\n\n")
	b.WriteString("| phase | row lock waits | time waiting for row locks | deadlocks |\n|---|---:|---:|---:|\n")
	for _, p := range phases {
		if i := p.u.InnoDB; i.ok {
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", p.name, thousands(int(i.RowLockWaits)), seconds(i.RowLockTime), thousands(int(i.Deadlocks)))
		}
	}
	for _, p := range phases {
		fmt.Fprintf(&b, "\nThe %s phase's costliest statements:\n\n", p.name)
		fmt.Fprintf(&b, "| statement | runs | per %s | mean | sum |\n|---|---:|---:|---:|---:|\n", p.unit)
		for i, st := range p.u.SQL.Top {
			if i == 10 {
				break
			}
			runs := thousands(st.calls)
			if st.prepares > 0 {
				runs += fmt.Sprintf(" (%s prepared)", thousands(st.prepares))
			}
			fmt.Fprintf(&b, "| `%s` | %s | %.2f | %s | %s |\n", strings.ReplaceAll(shortQuery(st.query), "|", `\|`), runs,
				float64(st.calls)/float64(max(p.per, 1)), millis(st.time/time.Duration(max(st.calls, 1))), seconds(st.time))
		}
	}
	return b.String()
}

const sectionHeading = "## Bulk invitations"

func (o options) workerOptions() string {
	if o.wftPollers > 0 {
		return fmt.Sprintf("`worker.Options{Worker: sdkworker.Options{MaxConcurrentWorkflowTaskPollers: %d}}` (an experiment)", o.wftPollers)
	}
	return fmt.Sprintf("`worker.Options{}` (%d workflow task pollers)", worker.DefaultWorkflowTaskPollers)
}

// markdown is the section written to BENCHMARKS.md.
func (r results) markdown() string {
	var b strings.Builder
	b.WriteString(sectionHeading + "\n\n")
	b.WriteString("<!-- Written by `make bench-bulk` (go run ./cmd/usher-bench -write BENCHMARKS.md); edits here are replaced on the next run. -->\n\n")
	extra := ""
	if r.opts.wftPollers > 0 {
		extra = fmt.Sprintf(" -wft-pollers %d", r.opts.wftPollers)
	}
	fmt.Fprintf(&b, "`go run ./cmd/usher-bench -people %d -single %d -concurrency %d%s`, %s.\n\n", r.opts.people, r.opts.single, r.opts.concurrency, extra, r.machine.date)
	fmt.Fprintf(&b, "- Machine: %s; %d CPUs%s; %s.\n", r.machine.goVersion, r.machine.cpus, r.machine.cpuModel, r.machine.kernel)
	if r.machine.commit != "" {
		fmt.Fprintf(&b, "- Usher at %s.\n", r.machine.commit)
	}
	fmt.Fprintf(&b, "- One process: the Temporal server in-process (devtemporal, in-memory SQLite, namespace `%s`), "+
		"the worker started with %s (no `SendsPerSecond` cap, so the provider's rate limit does not dominate), "+
		"the API behind httptest, the Mailgun test server answering at once; MariaDB %s (a fresh database, dropped afterwards).\n", namespace, r.opts.workerOptions(), r.machine.mariadb)
	order := "the single invitations first, then the bulk import"
	if r.opts.bulkFirst {
		order = "the bulk import first, then the single invitations"
	}
	fmt.Fprintf(&b, "- After a warm-up of %d invitations each way: %s. Bulk is timed from the import request until the batch reports "+
		"every person sent and the mail server holds every e-mail; single from the first request until every e-mail is in the mail server. "+
		"Both rates share the machine's noise, so their ratio is the figure to compare across runs; it still moves with load (the two phases wait on different things), so read it with the noise row.\n\n", r.opts.warmup, order)
	b.WriteString(r.table())
	b.WriteString("\n### Where the time goes\n\n")
	b.WriteString(r.detail())
	return b.String()
}

// writeSection puts section in place of the file's "## Bulk invitations" section (up to
// the next "## " heading), or appends it; it creates the file if need be.
func writeSection(path, section string) error {
	return writeSectionNamed(path, sectionHeading, section)
}

// writeSectionNamed is writeSection for the section under heading.
func writeSectionNamed(path, heading, section string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	doc := replaceSectionNamed(string(old), heading, section)
	tmp, err := os.CreateTemp(filepath.Dir(path), ".bench-*.md")
	if err != nil {
		return err
	}
	if _, err := tmp.WriteString(doc); err != nil {
		_ = tmp.Close()
		_ = os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		_ = os.Remove(tmp.Name())
		return err
	}
	_ = os.Chmod(tmp.Name(), 0o644)
	return os.Rename(tmp.Name(), path)
}

const newDocument = `# Benchmarks

Figures measured on the whole of Usher in one process. ` + "`make bench`" + ` reruns them and
replaces its section below; the machine each was measured on is given with it.
`

func replaceSection(doc, section string) string {
	return replaceSectionNamed(doc, sectionHeading, section)
}

func replaceSectionNamed(doc, heading, section string) string {
	section = strings.TrimRight(section, "\n") + "\n"
	if strings.TrimSpace(doc) == "" {
		return newDocument + "\n" + section
	}
	lines := strings.SplitAfter(doc, "\n")
	start, end := -1, len(lines)
	inFence := false
	for i, line := range lines {
		trimmed := strings.TrimRight(line, "\r\n")
		if strings.HasPrefix(trimmed, "```") {
			inFence = !inFence
			continue
		}
		if inFence {
			continue
		}
		if start < 0 && strings.TrimSpace(trimmed) == heading {
			start = i
			continue
		}
		if start >= 0 && (strings.HasPrefix(trimmed, "## ") || strings.HasPrefix(trimmed, "# ")) {
			end = i
			break
		}
	}
	if start < 0 {
		return strings.TrimRight(doc, "\n") + "\n\n" + section
	}
	rest := strings.Join(lines[end:], "")
	if rest != "" {
		section += "\n"
	}
	return strings.Join(lines[:start], "") + section + rest
}

type machine struct {
	goVersion, kernel, cpuModel, date, mariadb, commit string
	cpus                                               int
}

func describeMachine() machine {
	m := machine{
		goVersion: fmt.Sprintf("go version %s %s/%s", runtime.Version(), runtime.GOOS, runtime.GOARCH),
		cpus:      runtime.NumCPU(),
		date:      time.Now().UTC().Format("2006-01-02 15:04 UTC"),
		mariadb:   "at " + serverAddr(),
	}
	if out, err := exec.Command("go", "version").Output(); err == nil {
		m.goVersion = strings.TrimSpace(string(out))
	}
	if out, err := exec.Command("uname", "-sr").Output(); err == nil {
		m.kernel = strings.TrimSpace(string(out))
	} else {
		m.kernel = runtime.GOOS
	}
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		m.commit = "commit " + strings.TrimSpace(string(out))
		if dirty, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(bytes.TrimSpace(dirty)) > 0 {
			m.commit += " with uncommitted changes"
		}
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpuModel = " (" + strings.TrimSpace(v) + ")"
				break
			}
		}
		_ = f.Close()
	}
	return m
}

func serverAddr() string {
	dsn := testdb.ServerDSN()
	if _, rest, ok := strings.Cut(dsn, "@"); ok {
		dsn = rest
	}
	if i := strings.LastIndex(dsn, "/"); i >= 0 {
		dsn = dsn[:i]
	}
	if inner, ok := strings.CutPrefix(dsn, "tcp("); ok {
		dsn = strings.TrimSuffix(inner, ")")
	}
	return dsn
}

// processCPU is the user and system CPU time of this process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// mariadbCPU is the CPU time of the local MariaDB (or MySQL) server so far, when there is
// one on this machine and /proc says so.
func mariadbCPU() (time.Duration, bool) {
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, false
	}
	var total time.Duration
	found := false
	for _, d := range dirs {
		if _, err := strconv.Atoi(d.Name()); err != nil {
			continue
		}
		comm, err := os.ReadFile("/proc/" + d.Name() + "/comm")
		if err != nil {
			continue
		}
		if name := string(bytes.TrimSpace(comm)); name != "mariadbd" && name != "mysqld" {
			continue
		}
		stat, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue
		}
		// Fields after the command's closing parenthesis; utime and stime are 14 and 15.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(stat[i+1:]))
		if len(fields) < 13 {
			continue
		}
		utime, err1 := strconv.ParseInt(fields[11], 10, 64)
		stime, err2 := strconv.ParseInt(fields[12], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		total += time.Duration(utime+stime) * time.Second / clockTicks
		found = true
	}
	return total, found
}

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicks = 100

// cpuPressureStall is the machine's total time with some task waiting for a CPU
// (/proc/pressure/cpu, "some" line).
func cpuPressureStall() (time.Duration, bool) {
	raw, err := os.ReadFile("/proc/pressure/cpu")
	if err != nil {
		return 0, false
	}
	for line := range strings.SplitSeq(string(raw), "\n") {
		if !strings.HasPrefix(line, "some ") {
			continue
		}
		for field := range strings.FieldsSeq(line) {
			if v, ok := strings.CutPrefix(field, "total="); ok {
				us, err := strconv.ParseInt(v, 10, 64)
				return time.Duration(us) * time.Microsecond, err == nil
			}
		}
	}
	return 0, false
}

// peakRSS is the process's peak resident set (VmHWM), in bytes.
func peakRSS() int64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func size(n int64) string {
	if n >= 10<<20 {
		return thousands(int(n>>20)) + " MiB"
	}
	return thousands(int(n>>10)) + " KiB"
}

func percent(f float64) string {
	if f < 0 {
		return "?"
	}
	return fmt.Sprintf("%.0f %%", 100*f)
}

func thousands(n int) string {
	s := strconv.Itoa(n)
	if n < 0 {
		return "-" + thousands(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func seconds(d time.Duration) string {
	switch {
	case d >= 100*time.Second:
		return fmt.Sprintf("%.0f s", d.Seconds())
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	default:
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
}

func millis(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	switch {
	case ms >= 100:
		return fmt.Sprintf("%.0f ms", ms)
	case ms >= 10:
		return fmt.Sprintf("%.1f ms", ms)
	default:
		return fmt.Sprintf("%.2f ms", ms)
	}
}
