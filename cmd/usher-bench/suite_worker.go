//go:build !nodev

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/usherhq/usher/workflows"
)

// buildUsher builds the production binary (no dev command, no Temporal server linked in)
// into dir.
func buildUsher(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "usher")
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "nodev", "-o", bin, "github.com/usherhq/usher/cmd/usher")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building usher: %w", err)
	}
	return bin, nil
}

// childWorker is `usher worker` running as a child process against the bench's stack.
type childWorker struct {
	cmd     *exec.Cmd
	log     *os.File
	metrics string // base URL of its /metrics
	exited  chan struct{}
	err     error
}

func (s *stack) startChildWorker(ctx context.Context, bin string) (*childWorker, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	log, err := os.CreateTemp("", "usher-bench-worker-*.log")
	if err != nil {
		return nil, err
	}
	w := &childWorker{log: log, metrics: fmt.Sprintf("http://127.0.0.1:%d/metrics", port), exited: make(chan struct{})}
	cmd := exec.Command(bin, "worker")
	cmd.Env = append(os.Environ(),
		"USHER_MYSQL_DSN="+s.testDB.DSN,
		"TEMPORAL_ADDRESS="+s.temporal.FrontendAddress(),
		"TEMPORAL_NAMESPACE="+s.temporal.Namespace(),
		"MAILGUN_API_BASE="+s.mailHTTP.URL+"/v3",
		"MAILGUN_DOMAIN="+mailgunDomain,
		"MAILGUN_API_KEY="+mailgunKey,
		"USHER_PUBLIC_URL="+publicURL,
		"USHER_EMAIL_FROM=Usher <usher@usher.bench>",
		"USHER_SECRET_KEY=usher-bench-secret-key-0123456789abcdef",
		// Read by the suite for the Go heap and goroutines; the same in both idle readings.
		fmt.Sprintf("USHER_METRICS_ADDR=127.0.0.1:%d", port),
		"USHER_LOG_LEVEL=warn",
		// No cap on sends, as for the in-process worker of the bulk benchmark.
		"USHER_SENDS_PER_SECOND=0",
	)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = log.Close()
		return nil, fmt.Errorf("starting usher worker: %w", err)
	}
	w.cmd = cmd
	go func() {
		w.err = cmd.Wait()
		close(w.exited)
	}()
	logf("worker: usher worker, pid %d (log: %s)", cmd.Process.Pid, log.Name())

	// Ready once it polls the main task queue.
	deadline := time.Now().Add(time.Minute)
	for {
		select {
		case <-w.exited:
			return nil, fmt.Errorf("usher worker exited: %v\n%s", w.err, w.logTail())
		case <-ctx.Done():
			w.stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		d, err := s.client.DescribeTaskQueue(ctx, workflows.TaskQueue, enumspb.TASK_QUEUE_TYPE_WORKFLOW)
		if err == nil && len(d.GetPollers()) > 0 {
			return w, nil
		}
		if time.Now().After(deadline) {
			w.stop()
			return nil, fmt.Errorf("usher worker did not poll %s within a minute\n%s", workflows.TaskQueue, w.logTail())
		}
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (w *childWorker) stop() {
	if w.cmd == nil || w.cmd.Process == nil {
		return
	}
	select {
	case <-w.exited:
	default:
		_ = w.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-w.exited:
		case <-time.After(20 * time.Second):
			_ = w.cmd.Process.Kill()
			<-w.exited
		}
	}
	_ = w.log.Close()
	_ = os.Remove(w.log.Name())
}

func (w *childWorker) logTail() string {
	raw, err := os.ReadFile(w.log.Name())
	if err != nil {
		return ""
	}
	if len(raw) > 4000 {
		raw = raw[len(raw)-4000:]
	}
	return string(raw)
}

// rss is the child's resident set (VmRSS), in bytes.
func (w *childWorker) rss() (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", w.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS in /proc/<pid>/status")
}

// cpu is the child's user+system CPU time so far.
func (w *childWorker) cpu() time.Duration {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", w.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	i := strings.LastIndexByte(string(stat), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * time.Second / clockTicks
}

// goStats reads the Go runtime's figures from the child's /metrics: heap in use, heap
// the runtime holds (in use + idle not yet returned), goroutines. -1 where unknown.
type goStats struct {
	HeapInuse, HeapSys, StackInuse, Goroutines float64
}

func (w *childWorker) goStats(ctx context.Context) goStats {
	out := goStats{-1, -1, -1, -1}
	req, err := http.NewRequestWithContext(ctx, "GET", w.metrics, nil)
	if err != nil {
		return out
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return out
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(io.LimitReader(res.Body, 8<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		switch name {
		case "go_memstats_heap_inuse_bytes":
			out.HeapInuse = v
		case "go_memstats_heap_sys_bytes":
			out.HeapSys = v
		case "go_memstats_stack_inuse_bytes":
			out.StackInuse = v
		case "go_goroutines":
			out.Goroutines = v
		}
	}
	return out
}

// idleResult is benchmark 4.
type idleResult struct {
	Pending      int
	RSS0, RSSN   int64 // bytes
	Go0, GoN     goStats
	CPU0, CPUN   float64 // cores the worker used while settling
	Settle       time.Duration
	SampledRSS0  []int64
	SampledRSSN  []int64
	PendingCheck int // pending invitations in MySQL when RSSN was read
}

// settle waits d, reading the worker's RSS every 5 s, and returns the last reading, the
// readings, and the cores it used meanwhile.
func (w *childWorker) settle(ctx context.Context, d time.Duration) (int64, []int64, float64, error) {
	cpu0, t0 := w.cpu(), time.Now()
	var samples []int64
	for {
		rss, err := w.rss()
		if err != nil {
			return 0, nil, 0, err
		}
		samples = append(samples, rss)
		if time.Since(t0) >= d {
			busy := (w.cpu() - cpu0).Seconds() / max(time.Since(t0).Seconds(), 0.001)
			return rss, samples, busy, nil
		}
		select {
		case <-ctx.Done():
			return 0, nil, 0, ctx.Err()
		case <-w.exited:
			return 0, nil, 0, fmt.Errorf("usher worker exited: %v\n%s", w.err, w.logTail())
		case <-time.After(min(5*time.Second, d-time.Since(t0))):
		}
	}
}
