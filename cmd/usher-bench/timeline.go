//go:build !nodev

package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"

	"github.com/usherhq/usher/workflows"
)

// history reads a workflow run's events.
func (s *stack) history(ctx context.Context, workflowID, runID string) ([]*historypb.HistoryEvent, error) {
	it := s.client.GetWorkflowHistory(ctx, workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var out []*historypb.HistoryEvent
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return nil, fmt.Errorf("history of %s: %w", workflowID, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// interval is a stretch of time.
type interval struct{ from, to time.Time }

// timeline is what a workflow run's history says about where its time went.
type timeline struct {
	Events     int
	Start, End time.Time
	// Activities are the execution intervals (started → closed) of the run's activities.
	Activities []interval
	// WorkflowTaskWait is the time workflow tasks waited to be picked up by the worker
	// (scheduled → started), summed; WorkflowTaskMax the longest.
	WorkflowTaskWait, WorkflowTaskMax time.Duration
	WorkflowTasks                     int
	// Sent is when the first invitation e-mail activity completed, with its wait in the
	// task queue (scheduled → started, retries included) and its last attempt's run time.
	Sent                time.Time
	SendWait, SendRun   time.Duration
	WorkflowTaskToSent  time.Duration // workflow task waits before Sent
	ActivitiesCompleted int
}

func readTimeline(events []*historypb.HistoryEvent) timeline {
	t := timeline{Events: len(events)}
	if len(events) == 0 {
		return t
	}
	t.Start, t.End = events[0].GetEventTime().AsTime(), events[len(events)-1].GetEventTime().AsTime()
	at := map[int64]time.Time{}
	activityType := map[int64]string{} // scheduled event id → activity type
	for _, e := range events {
		now := e.GetEventTime().AsTime()
		at[e.GetEventId()] = now
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED:
			wait := now.Sub(at[e.GetWorkflowTaskStartedEventAttributes().GetScheduledEventId()])
			t.WorkflowTasks++
			t.WorkflowTaskWait += wait
			t.WorkflowTaskMax = max(t.WorkflowTaskMax, wait)
			if t.Sent.IsZero() {
				t.WorkflowTaskToSent += wait
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			activityType[e.GetEventId()] = e.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName()
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			a := e.GetActivityTaskCompletedEventAttributes()
			started := at[a.GetStartedEventId()]
			t.Activities = append(t.Activities, interval{started, now})
			t.ActivitiesCompleted++
			if activityType[a.GetScheduledEventId()] == workflows.ActivitySendInvitation && t.Sent.IsZero() {
				t.Sent = now
				t.SendWait = started.Sub(at[a.GetScheduledEventId()])
				t.SendRun = now.Sub(started)
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED:
			a := e.GetActivityTaskFailedEventAttributes()
			t.Activities = append(t.Activities, interval{at[a.GetStartedEventId()], now})
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
			a := e.GetActivityTaskTimedOutEventAttributes()
			if started, ok := at[a.GetStartedEventId()]; ok {
				t.Activities = append(t.Activities, interval{started, now})
			}
		}
	}
	return t
}

// covered is how much of the time the intervals cover together.
func covered(intervals []interval) time.Duration {
	list := slices.Clone(intervals)
	slices.SortFunc(list, func(a, b interval) int { return a.from.Compare(b.from) })
	var total time.Duration
	var cur interval
	for i, iv := range list {
		if i == 0 || iv.from.After(cur.to) {
			total += cur.to.Sub(cur.from)
			cur = iv
			continue
		}
		if iv.to.After(cur.to) {
			cur.to = iv.to
		}
	}
	if len(list) > 0 {
		total += cur.to.Sub(cur.from)
	}
	return total
}

// batchTimeline sums up the batch workflow's runs.
type batchTimeline struct {
	Runs []int // events per run, oldest first
	// Span is the first run's start to the last run's end; Busy how much of it had at
	// least one InviteBatchItems activity running, Idle the rest.
	Span, Busy, Idle time.Duration
	// BetweenRuns is the time from one run's last event to the next run's first,
	// summed over the continue-as-new hand-overs.
	BetweenRuns                       time.Duration
	WorkflowTaskWait, WorkflowTaskMax time.Duration
	WorkflowTasks                     int
}

func readBatchTimeline(runs []timeline) batchTimeline {
	var b batchTimeline
	if len(runs) == 0 {
		return b
	}
	var all []interval
	for i, r := range runs {
		b.Runs = append(b.Runs, r.Events)
		all = append(all, r.Activities...)
		b.WorkflowTaskWait += r.WorkflowTaskWait
		b.WorkflowTaskMax = max(b.WorkflowTaskMax, r.WorkflowTaskMax)
		b.WorkflowTasks += r.WorkflowTasks
		if i > 0 {
			b.BetweenRuns += r.Start.Sub(runs[i-1].End)
		}
	}
	b.Span = runs[len(runs)-1].End.Sub(runs[0].Start)
	b.Busy = covered(all)
	b.Idle = b.Span - b.Busy
	return b
}

// invitationSample is the mean, over sampled invitation workflows, of where the time from
// the workflow's start to its e-mail's being sent went.
type invitationSample struct {
	Count              int
	ToSent             time.Duration // workflow start → send activity completed
	WorkflowTaskToSent time.Duration // of which workflow tasks waited for the worker
	SendWait           time.Duration // the send activity waited in its task queue (retries included)
	SendRun            time.Duration // the send activity's last attempt ran
	Events             int
}

func (s *stack) sampleInvitations(ctx context.Context, ids []string) (invitationSample, error) {
	var out invitationSample
	for _, id := range ids {
		events, err := s.history(ctx, workflows.InvitationWorkflowID(id), "")
		if err != nil {
			return out, err
		}
		t := readTimeline(events)
		if t.Sent.IsZero() {
			continue
		}
		out.Count++
		out.ToSent += t.Sent.Sub(t.Start)
		out.WorkflowTaskToSent += t.WorkflowTaskToSent
		out.SendWait += t.SendWait
		out.SendRun += t.SendRun
		out.Events += t.Events
	}
	if out.Count > 0 {
		n := time.Duration(out.Count)
		out.ToSent, out.WorkflowTaskToSent, out.SendWait, out.SendRun = out.ToSent/n, out.WorkflowTaskToSent/n, out.SendWait/n, out.SendRun/n
		out.Events /= out.Count
	}
	return out, nil
}

// spread picks up to n of ids, evenly spaced.
func spread(ids []string, n int) []string {
	if len(ids) <= n {
		return ids
	}
	out := make([]string, 0, n)
	for i := range n {
		out = append(out, ids[i*len(ids)/n])
	}
	return out
}
