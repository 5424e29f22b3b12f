//go:build !nodev

package main

import (
	"context"
	"sort"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
)

// activityStats times every activity the worker runs, by type. It is a client interceptor
// that is also a worker interceptor, which the SDK applies to every worker made with the
// client, so the worker itself is started with worker.Options{} as in production.
type activityStats struct {
	interceptor.ClientInterceptorBase
	interceptor.WorkerInterceptorBase

	mu     sync.Mutex
	byType map[string]*activityStat
	starts callStat // workflow starts through the client (API and batch activity)
}

// callStat times calls to the Temporal server.
type callStat struct {
	Count  int
	Failed int
	Total  time.Duration
	Max    time.Duration
}

type activityStat struct {
	Name    string
	Local   bool
	Count   int // executions, retries included
	Failed  int
	Total   time.Duration // time in the activity function, summed
	Max     time.Duration
	Waited  time.Duration // scheduled → started (task queue wait), summed; not for local activities
	Retries int           // executions that were a retry (attempt > 1)
}

func newActivityStats() *activityStats { return &activityStats{byType: map[string]*activityStat{}} }

func (s *activityStats) reset() {
	s.mu.Lock()
	s.byType = map[string]*activityStat{}
	s.starts = callStat{}
	s.mu.Unlock()
}

func (s *activityStats) workflowStarts() callStat {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.starts
}

func (s *activityStats) snapshot() []activityStat {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]activityStat, 0, len(s.byType))
	for _, st := range s.byType {
		out = append(out, *st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Total > out[j].Total })
	return out
}

func (s *activityStats) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	in := &timedActivity{stats: s}
	in.Next = next
	return in
}

type timedActivity struct {
	interceptor.ActivityInboundInterceptorBase
	stats *activityStats
}

func (t *timedActivity) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	info := activity.GetInfo(ctx)
	start := time.Now()
	res, err := t.Next.ExecuteActivity(ctx, in)
	took := time.Since(start)

	t.stats.mu.Lock()
	st := t.stats.byType[info.ActivityType.Name]
	if st == nil {
		st = &activityStat{Name: info.ActivityType.Name, Local: info.IsLocalActivity}
		t.stats.byType[info.ActivityType.Name] = st
	}
	st.Count++
	if info.Attempt > 1 {
		st.Retries++
	}
	if err != nil {
		st.Failed++
	}
	st.Total += took
	st.Max = max(st.Max, took)
	if !info.IsLocalActivity && !info.ScheduledTime.IsZero() && info.StartedTime.After(info.ScheduledTime) {
		st.Waited += info.StartedTime.Sub(info.ScheduledTime)
	}
	t.stats.mu.Unlock()
	return res, err
}

func (s *activityStats) InterceptClient(next interceptor.ClientOutboundInterceptor) interceptor.ClientOutboundInterceptor {
	out := &timedClient{stats: s}
	out.Next = next
	return out
}

type timedClient struct {
	interceptor.ClientOutboundInterceptorBase
	stats *activityStats
}

func (c *timedClient) ExecuteWorkflow(ctx context.Context, in *interceptor.ClientExecuteWorkflowInput) (client.WorkflowRun, error) {
	start := time.Now()
	run, err := c.Next.ExecuteWorkflow(ctx, in)
	took := time.Since(start)
	c.stats.mu.Lock()
	c.stats.starts.Count++
	if err != nil {
		c.stats.starts.Failed++
	}
	c.stats.starts.Total += took
	c.stats.starts.Max = max(c.stats.starts.Max, took)
	c.stats.mu.Unlock()
	return run, err
}
