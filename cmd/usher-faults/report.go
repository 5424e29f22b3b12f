//go:build !nodev

package main

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/usherhq/usher/internal/testdb"
)

const sectionHeading = "## Fault suite"

type report struct {
	results []*result
	opts    options
	wall    time.Duration
	machine machine
}

func (r *result) verdictWord() string {
	if r.pass() {
		return "PASS"
	}
	return "FAIL"
}

func (r *result) summary() string {
	if r.v == nil {
		return fmt.Sprintf("%s: FAIL: %v", r.name, r.err)
	}
	return fmt.Sprintf("%s: %s: %d journeys, load %s, settled in %s; lost %d, wrong state %d, duplicates %d, stuck %d, client errors %d, failed as expected %d/%d",
		r.name, r.verdictWord(), r.journeys, r.load.Round(100*time.Millisecond), r.settle.Round(100*time.Millisecond),
		r.v.lost, r.v.wrong, r.v.duplicates, r.v.stuck, r.v.clientErrs, r.v.failedOK, r.refused)
}

// table is the results, one row per scenario, in Markdown.
func (rep report) table() string {
	var b strings.Builder
	b.WriteString("| scenario | journeys | load | settled in | lost | wrong state | duplicates | stuck | client errors | failed as expected | result |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, r := range rep.results {
		if r.v == nil {
			fmt.Fprintf(&b, "| %s | %d | – | – | – | – | – | – | – | – | **FAIL** (%s) |\n", r.name, r.journeys, oneLine(fmt.Sprint(r.err)))
			continue
		}
		failed := "–"
		if r.refused > 0 {
			failed = fmt.Sprintf("%d / %d", r.v.failedOK, r.refused)
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %d | %d | %d | %d | %d | %s | **%s** |\n", r.name, r.journeys,
			fmtDur(r.load), fmtDur(r.settle), r.v.lost, r.v.wrong, r.v.duplicates, r.v.stuck, r.v.clientErrs, failed, r.verdictWord())
	}
	return b.String()
}

func (rep report) details() string {
	var b strings.Builder
	for _, r := range rep.results {
		fmt.Fprintf(&b, "- **%s**: %s.", r.name, r.title)
		if r.contests > 0 && r.v != nil {
			fmt.Fprintf(&b, " %d links, each accepted by %d clients at once.", r.contests, contestants)
		}
		for _, n := range r.notes {
			n = strings.TrimSuffix(oneLine(n), ".")
			if n != "" {
				n = strings.ToUpper(n[:1]) + n[1:]
			}
			fmt.Fprintf(&b, " %s.", n)
		}
		for _, n := range r.unexpected {
			fmt.Fprintf(&b, " %s.", oneLine(n))
		}
		if r.err != nil && r.v != nil {
			fmt.Fprintf(&b, " Error: %s.", oneLine(r.err.Error()))
		}
		if r.v != nil && len(r.v.problems) > 0 {
			b.WriteString(" Problems found:")
			for i, p := range r.v.problems {
				if i == 10 {
					fmt.Fprintf(&b, " … and %d more", len(r.v.problems)-10)
					break
				}
				fmt.Fprintf(&b, " %s;", oneLine(p))
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

func (rep report) markdown() string {
	var b strings.Builder
	b.WriteString(sectionHeading + "\n\n")
	b.WriteString("<!-- Written by `make faults` (go run ./cmd/usher-faults -write RELIABILITY.md); edits here are replaced on the next run. -->\n\n")
	fmt.Fprintf(&b, "`go run ./cmd/usher-faults -scenarios %s -journeys %d -concurrency %d`, %s; the whole run took %s.\n\n",
		strings.Join(rep.opts.scenarios, ","), rep.opts.journeys, rep.opts.concurrency, rep.machine.date, rep.wall.Round(time.Second))
	fmt.Fprintf(&b, "- Machine: %s; %d CPUs%s; %s; MariaDB %s.\n", rep.machine.goVersion, rep.machine.cpus, rep.machine.cpuModel, rep.machine.kernel, rep.machine.mariadb)
	if rep.machine.commit != "" {
		fmt.Fprintf(&b, "- Usher at %s (plus whatever the working tree changed).\n", rep.machine.commit)
	}
	b.WriteString("- Each scenario: a fresh database, the Temporal server (devtemporal, in-memory SQLite) and the Mailgun test server in the fault program; " +
		"`usher worker` and `usher api` (built with `-tags nodev`) as child processes. The load: journeys started evenly over the first part of the scenario, " +
		"driven by concurrent clients: 70 % create → read the link from the e-mail → accept, 20 % left pending, 10 % revoked once their e-mail arrived " +
		"(mailgun-storm: 10 % are addresses Mailgun refuses with 400 after the storm; contest: 20 links each accepted by 20 clients at once). " +
		"Every create carries an `Idempotency-Key`; clients send a request again after a network error or a 5xx.\n")
	b.WriteString("- After the load, the program waits for every invitation to reach its expected state and every workflow but the pending ones to end, then checks, " +
		"straight in MySQL and Temporal: **lost** = a journey without its invitation row, a row without its workflow, or a delivery MySQL calls sent that Mailgun never took; " +
		"**wrong state** = an invitation (row, or the workflow's `UsherStatus`) not in the state its journey must end in, a pending one whose e-mail was not sent, an accepted one without exactly one account, one membership and one set-password e-mail; " +
		"**duplicates** = a second invitation for one idempotency key, a second account for an address, a second membership, an e-mail sent twice for one delivery key (the `usher_delivery_id` user variable at the Mailgun test server); " +
		"**stuck** = a workflow still running that should have ended, one that failed or was terminated, a workflow task at attempt > 3 or an activity at attempt > 10; " +
		"**client errors** = an answer a client should not have had (e.g. a contest without exactly one 200 and nineteen `409 invitation_used`).\n\n")
	b.WriteString(rep.table())
	b.WriteString("\n")
	b.WriteString(rep.details())
	return b.String()
}

func fmtDur(d time.Duration) string {
	if d >= 10*time.Second {
		return d.Round(time.Second).String()
	}
	return d.Round(100 * time.Millisecond).String()
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	s = strings.ReplaceAll(s, "|", "\\|")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// writeSection puts section in place of the file's "## Fault suite" section (up to the next
// "## " heading), or appends it; it creates the file if need be.
func writeSection(path, section string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	doc := replaceSection(string(old), section)
	tmp, err := os.CreateTemp(filepath.Dir(path), ".faults-*.md")
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

const newDocument = `# Reliability

What Usher was shown to withstand, and how. ` + "`make faults`" + ` reruns the fault suite and
replaces its section below; the machine it ran on is given with it.
`

func replaceSection(doc, section string) string {
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
		}
		if inFence {
			continue
		}
		if start < 0 && strings.TrimSpace(trimmed) == sectionHeading {
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

func describeMachine(ctx context.Context) machine {
	m := machine{
		goVersion: fmt.Sprintf("go version %s %s/%s", runtime.Version(), runtime.GOOS, runtime.GOARCH),
		cpus:      runtime.NumCPU(),
		date:      time.Now().UTC().Format("2006-01-02 15:04 UTC"),
	}
	if out, err := exec.Command("uname", "-sr").Output(); err == nil {
		m.kernel = strings.TrimSpace(string(out))
	} else {
		m.kernel = runtime.GOOS
	}
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		m.commit = "commit " + strings.TrimSpace(string(out))
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
	if db, err := sql.Open("mysql", testdb.ServerDSN()); err == nil {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_ = db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&m.mariadb)
		cancel()
		_ = db.Close()
	}
	return m
}
