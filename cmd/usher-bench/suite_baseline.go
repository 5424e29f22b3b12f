//go:build !nodev

package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/usherhq/usher/worker"
)

// The baselines run on a task queue of their own, served by a worker in this process (on
// the same Temporal server as Usher's worker, with as many workflow task pollers).
const (
	baselineQueue      = "usher-bench-baseline"
	baselineEmpty      = "BenchEmpty"
	baselineUpdatable  = "BenchUpdatable"
	baselineNoopUpdate = "noop"
	baselineFinish     = "finish"
)

// benchEmpty does nothing: a start, one workflow task, complete.
func benchEmpty(workflow.Context) error { return nil }

// benchUpdatable answers a no-op update and waits until signalled to finish.
func benchUpdatable(ctx workflow.Context) error {
	if err := workflow.SetUpdateHandler(ctx, baselineNoopUpdate, func(workflow.Context) error { return nil }); err != nil {
		return err
	}
	workflow.GetSignalChannel(ctx, baselineFinish).Receive(ctx, nil)
	return workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
}

func (s *stack) startBaselineWorker() (func(), error) {
	w := sdkworker.New(s.client, baselineQueue, sdkworker.Options{MaxConcurrentWorkflowTaskPollers: worker.DefaultWorkflowTaskPollers})
	w.RegisterWorkflowWithOptions(benchEmpty, workflow.RegisterOptions{Name: baselineEmpty})
	w.RegisterWorkflowWithOptions(benchUpdatable, workflow.RegisterOptions{Name: baselineUpdatable})
	if err := w.Start(); err != nil {
		return nil, fmt.Errorf("starting the baseline worker: %w", err)
	}
	return w.Stop, nil
}

// baselineRun is one baseline's measure: n operations, concurrency at a time.
type baselineRun struct {
	Count    int
	Wall     time.Duration // first start → last completion
	Lat      []time.Duration
	Pressure float64
	LastID   string // a workflow of the run, for its history
}

func (b baselineRun) rate() float64 { return rate(b.Count, b.Wall) }

func runID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// fanOut runs f(i) for i in [0,n), concurrency at a time; the first error stops it.
func fanOut(ctx context.Context, n, concurrency int, f func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for i := range next {
				if err := f(ctx, i); err != nil {
					cancel(err)
				}
			}
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}

// emptyWorkflows runs n empty workflows start → complete; Lat holds the start calls'
// latencies (ExecuteWorkflow until it returns).
func (s *stack) emptyWorkflows(ctx context.Context, n, concurrency int) (baselineRun, error) {
	out := baselineRun{Count: n, Lat: make([]time.Duration, n)}
	prefix := "bench-empty-" + runID()
	p := startPressure()
	start := time.Now()
	err := fanOut(ctx, n, concurrency, func(ctx context.Context, i int) error {
		t := time.Now()
		run, err := s.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: fmt.Sprintf("%s-%d", prefix, i), TaskQueue: baselineQueue}, baselineEmpty)
		out.Lat[i] = time.Since(t)
		if err != nil {
			return err
		}
		return run.Get(ctx, nil)
	})
	out.Wall, out.Pressure = time.Since(start), p.share()
	out.LastID = fmt.Sprintf("%s-%d", prefix, n-1)
	slices.Sort(out.Lat)
	return out, err
}

// noopUpdates starts n updatable workflows, concurrency at a time; each client waits until
// its workflow has run its first workflow task (idle, as an invitation is when accepted),
// then times one no-op update to completion, then signals the workflow to finish.
func (s *stack) noopUpdates(ctx context.Context, n, concurrency int) (baselineRun, error) {
	out := baselineRun{Count: n, Lat: make([]time.Duration, n)}
	prefix := "bench-update-" + runID()
	p := startPressure()
	start := time.Now()
	err := fanOut(ctx, n, concurrency, func(ctx context.Context, i int) error {
		id := fmt.Sprintf("%s-%d", prefix, i)
		run, err := s.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: baselineQueue}, baselineUpdatable)
		if err != nil {
			return err
		}
		for {
			d, err := s.client.DescribeWorkflowExecution(ctx, id, run.GetRunID())
			if err != nil {
				return err
			}
			if d.GetWorkflowExecutionInfo().GetHistoryLength() >= 4 { // started, task scheduled, started, completed
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(5 * time.Millisecond):
			}
		}
		t := time.Now()
		h, err := s.client.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
			WorkflowID: id, RunID: run.GetRunID(), UpdateName: baselineNoopUpdate, WaitForStage: client.WorkflowUpdateStageCompleted,
		})
		if err == nil {
			err = h.Get(ctx, nil)
		}
		out.Lat[i] = time.Since(t)
		if err != nil {
			return err
		}
		if err := s.client.SignalWorkflow(ctx, id, run.GetRunID(), baselineFinish, nil); err != nil {
			return err
		}
		return run.Get(ctx, nil)
	})
	out.Wall, out.Pressure = time.Since(start), p.share()
	out.LastID = fmt.Sprintf("%s-%d", prefix, n-1)
	slices.Sort(out.Lat)
	return out, err
}
