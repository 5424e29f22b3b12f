//go:build !nodev

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/usherhq/usher/internal/mailgunsrv"
	"github.com/usherhq/usher/workflows"
)

// mailHook hands each invitation e-mail to the client waiting for it, as the mail server
// receives it (its fault hook sees every message, and injects no fault here).
type mailHook struct {
	mu      sync.Mutex
	waiting map[string]chan string
}

var inviteLink = regexp.MustCompile(regexp.QuoteMeta(publicURL) + `/invite/([A-Za-z0-9_-]{43})`)

func (s *stack) hookMail() *mailHook {
	h := &mailHook{waiting: map[string]chan string{}}
	s.mailgun.SetFault(func(m mailgunsrv.Message) *mailgunsrv.Fault {
		match := inviteLink.FindStringSubmatch(m.Text)
		if match == nil {
			return nil
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, to := range m.To {
			if ch, ok := h.waiting[strings.ToLower(to)]; ok {
				delete(h.waiting, strings.ToLower(to))
				ch <- match[1]
			}
		}
		return nil
	})
	return h
}

// expect returns where the token of the next invitation e-mail to addr will arrive.
func (h *mailHook) expect(addr string) <-chan string {
	ch := make(chan string, 1)
	h.mu.Lock()
	h.waiting[strings.ToLower(addr)] = ch
	h.mu.Unlock()
	return ch
}

func (h *mailHook) forget(addr string) {
	h.mu.Lock()
	delete(h.waiting, strings.ToLower(addr))
	h.mu.Unlock()
}

// journeyRun is n journeys, concurrency clients at once.
type journeyRun struct {
	Count      int
	Accept     bool
	Wall       time.Duration
	Create     []time.Duration // POST /v1/invitations, sorted
	Sent       []time.Duration // create request → e-mail at the mail server, sorted
	AcceptLat  []time.Duration // POST /v1/public/invitations/accept, sorted
	Pressure   float64
	Invitation string // one of them, for its history
}

func (j journeyRun) rate() float64 { return rate(j.Count, j.Wall) }

// journeys runs n journeys: create through the API, wait for the e-mail, and (if accept)
// accept it through the public API until it answers 200 with the new account's user_id.
func (s *stack) journeys(ctx context.Context, hook *mailHook, org, prefix string, n, concurrency int, accept bool) (journeyRun, error) {
	out := journeyRun{Count: n, Accept: accept, Create: make([]time.Duration, n), Sent: make([]time.Duration, n)}
	if accept {
		out.AcceptLat = make([]time.Duration, n)
	}
	ids := make([]string, n)
	tag := prefix + "-" + runID()
	p := startPressure()
	start := time.Now()
	err := fanOut(ctx, n, concurrency, func(ctx context.Context, i int) error {
		email := fmt.Sprintf("%s-%06d@journey.example.com", tag, i)
		tokens := hook.expect(email)
		defer hook.forget(email)
		body, _ := json.Marshal(map[string]any{"email": email, "name": fmt.Sprintf("Journey %d", i), "organization_id": org, "role": "member"})
		t := time.Now()
		raw, err := s.call(ctx, "POST", "/v1/invitations", "application/json", bytes.NewReader(body), http.StatusCreated)
		out.Create[i] = time.Since(t)
		if err != nil {
			return err
		}
		var inv struct{ ID string }
		_ = json.Unmarshal(raw, &inv)
		ids[i] = inv.ID
		var token string
		select {
		case token = <-tokens:
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Minute):
			return fmt.Errorf("no invitation e-mail to %s within 5 minutes", email)
		}
		out.Sent[i] = time.Since(t)
		if !accept {
			return nil
		}
		body, _ = json.Marshal(map[string]any{"token": token})
		t = time.Now()
		raw, err = s.call(ctx, "POST", "/v1/public/invitations/accept", "application/json", bytes.NewReader(body), http.StatusOK)
		out.AcceptLat[i] = time.Since(t)
		if err != nil {
			return err
		}
		var acc struct {
			UserID string `json:"user_id"`
		}
		if err := json.Unmarshal(raw, &acc); err != nil || acc.UserID == "" {
			return fmt.Errorf("accept answered without a user_id: %s", raw)
		}
		return nil
	})
	out.Wall, out.Pressure = time.Since(start), p.share()
	out.Invitation = ids[0]
	slices.Sort(out.Create)
	slices.Sort(out.Sent)
	slices.Sort(out.AcceptLat)
	return out, err
}

// journeyTrace is what one workflow's history and mutable state say.
type journeyTrace struct {
	Events           int
	StateTransitions int64
	WorkflowTasks    int
	Activities       int            // activity tasks scheduled (round trips through the server)
	LocalActivities  int            // markers
	Timers           int            // timers started
	Updates          int            // updates accepted
	Signals          int            // signals received
	Upserts          int            // search attribute / properties changes
	ByType           map[string]int // activity type → times scheduled
}

// trace waits for the workflow to close, then reads its history and state transitions.
func (s *stack) trace(ctx context.Context, workflowID string) (journeyTrace, error) {
	var t journeyTrace
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := s.client.GetWorkflow(wctx, workflowID, "").Get(wctx, nil); err != nil {
		return t, fmt.Errorf("waiting for %s to close: %w", workflowID, err)
	}
	events, err := s.history(ctx, workflowID, "")
	if err != nil {
		return t, err
	}
	t.Events = len(events)
	t.ByType = map[string]int{}
	for _, e := range events {
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
			t.WorkflowTasks++
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			t.Activities++
			t.ByType[e.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName()]++
		case enumspb.EVENT_TYPE_MARKER_RECORDED:
			t.LocalActivities++
		case enumspb.EVENT_TYPE_TIMER_STARTED:
			t.Timers++
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
			t.Updates++
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
			t.Signals++
		case enumspb.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES, enumspb.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED:
			t.Upserts++
		}
	}
	d, err := s.client.DescribeWorkflowExecution(ctx, workflowID, "")
	if err != nil {
		return t, err
	}
	t.StateTransitions = d.GetWorkflowExecutionInfo().GetStateTransitionCount()
	return t, nil
}

func (t journeyTrace) summary() string {
	parts := []string{fmt.Sprintf("%d workflow tasks", t.WorkflowTasks)}
	if t.Activities > 0 {
		var names []string
		for name, n := range t.ByType {
			if n > 1 {
				name = fmt.Sprintf("%s ×%d", name, n)
			}
			names = append(names, name)
		}
		slices.Sort(names)
		parts = append(parts, fmt.Sprintf("%d activities (%s)", t.Activities, strings.Join(names, ", ")))
	}
	add := func(n int, what string) {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, what))
		}
	}
	add(t.LocalActivities, "local activities (markers)")
	add(t.Timers, "timers")
	add(t.Updates, "updates")
	add(t.Signals, "signals")
	add(t.Upserts, "search attribute upserts")
	return strings.Join(parts, ", ")
}

// runSuiteJourneys is benchmarks 1 and 2 and their baselines.
func (s *stack) runSuiteJourneys(ctx context.Context, opts options, hook *mailHook, org string, res *suiteResults) error {
	n, c := opts.suite.journeys, opts.concurrency
	var err error
	s.quiesce(ctx)
	logf("journey: %d create-and-sends (create → e-mail), %d clients", n, c)
	if res.sendOnly, err = s.journeys(ctx, hook, org, "send", n, c, false); err != nil {
		return err
	}
	logf("journey: %.1f create-and-sends/s", res.sendOnly.rate())
	s.quiesce(ctx)
	logf("journey: %d journeys (create → e-mail → accept → account), %d clients", n, c)
	if res.journey, err = s.journeys(ctx, hook, org, "journey", n, c, true); err != nil {
		return err
	}
	logf("journey: %.1f journeys/s", res.journey.rate())
	s.quiesce(ctx)
	logf("baseline: %d empty workflows, %d clients", n, c)
	if res.empty, err = s.emptyWorkflows(ctx, n, c); err != nil {
		return err
	}
	logf("baseline: %.1f empty workflows/s", res.empty.rate())
	logf("baseline: %d no-op updates, %d clients", n, c)
	if res.update, err = s.noopUpdates(ctx, n, c); err != nil {
		return err
	}
	if res.history, err = s.trace(ctx, workflows.InvitationWorkflowID(res.journey.Invitation)); err != nil {
		return err
	}
	res.emptyH, err = s.trace(ctx, res.empty.LastID)
	return err
}

// quiesce waits (up to 30 s) until the mail server has seen no send for a second, so that
// what the previous phase left running (welcome e-mails after accepts) does not count.
func (s *stack) quiesce(ctx context.Context) {
	deadline := time.Now().Add(30 * time.Second)
	last, since := s.mailCount(), time.Now()
	for time.Now().Before(deadline) && time.Since(since) < time.Second {
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
		if n := s.mailCount(); n != last {
			last, since = n, time.Now()
		}
	}
}
