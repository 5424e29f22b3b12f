package workflows_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/testsuite"

	"github.com/usherhq/usher/internal/domain"
	"github.com/usherhq/usher/workflows"
)

type fakeJoinWorld struct {
	mu            sync.Mutex
	alreadyMember bool
	existingUser  bool
	changes       []workflows.JoinStatusChange
	emails        []string
	approvals     []string // roles
	approvedMails int
}

func (f *fakeJoinWorld) register(env *testsuite.TestWorkflowEnvironment) {
	reg := func(name string, fn any) { env.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name}) }
	reg(workflows.ActivityRecordJoinStarted, func(ctx context.Context, id string) error { return nil })
	reg(workflows.ActivityRecordJoinStatus, func(ctx context.Context, c workflows.JoinStatusChange) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.changes = append(f.changes, c)
		return nil
	})
	reg(workflows.ActivityCheckVisitorMember, func(ctx context.Context, id string) (bool, error) { return f.alreadyMember, nil })
	reg(workflows.ActivitySendJoinEmail, func(ctx context.Context, r workflows.JoinEmailArgs) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.emails = append(f.emails, r.Email)
		return nil
	})
	reg(workflows.ActivityApproveJoinRequest, func(ctx context.Context, r workflows.ApproveActivityRequest) (workflows.JoinApproval, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.approvals = append(f.approvals, r.Role)
		return workflows.JoinApproval{UserID: "visitor-1", ExistingUser: f.existingUser}, nil
	})
	reg(workflows.ActivitySendJoinApprovedEmail, func(ctx context.Context, r workflows.JoinApprovedEmailRequest) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.approvedMails++
		return nil
	})
}

func (f *fakeJoinWorld) sent(email string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, e := range f.emails {
		if e == email {
			n++
		}
	}
	return n
}

type joinHarness struct {
	t     *testing.T
	env   *testsuite.TestWorkflowEnvironment
	world *fakeJoinWorld
	start time.Time
}

const (
	day          = 24 * time.Hour
	twoWeeks     = 14 * day
	afterConfirm = time.Hour
)

func newJoinHarness(t *testing.T) *joinHarness {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	world := &fakeJoinWorld{}
	world.register(env)
	env.RegisterWorkflow(workflows.JoinRequestWorkflow)
	return &joinHarness{t: t, env: env, world: world, start: env.Now()}
}

func (h *joinHarness) run(tell bool) workflows.JoinRequestOutcome {
	h.t.Helper()
	h.env.ExecuteWorkflow(workflows.JoinRequestWorkflow, workflows.JoinRequestInput{
		JoinRequestID: "jr-1", ConfirmBy: h.start.Add(day), DecisionWindow: twoWeeks, TellVisitorOnReject: tell,
	})
	if !h.env.IsWorkflowCompleted() {
		h.t.Fatal("workflow did not complete")
	}
	if err := h.env.GetWorkflowError(); err != nil {
		h.t.Fatalf("workflow failed: %v", err)
	}
	var out workflows.JoinRequestOutcome
	if err := h.env.GetWorkflowResult(&out); err != nil {
		h.t.Fatal(err)
	}
	return out
}

func (h *joinHarness) update(delay time.Duration, name string, outcome *updateOutcome, args ...any) {
	h.env.RegisterDelayedCallback(func() {
		h.env.UpdateWorkflow(name, "", &testsuite.TestUpdateCallback{
			OnAccept:   func() {},
			OnReject:   func(err error) { outcome.err, outcome.rejected = err, true },
			OnComplete: func(result any, err error) { outcome.completed, outcome.result, outcome.err = true, result, err },
		}, args...)
	}, delay)
}

func TestJoinConfirmThenApprove(t *testing.T) {
	h := newJoinHarness(t)
	var confirmed, approved, again updateOutcome
	h.update(afterConfirm, workflows.UpdateConfirm, &confirmed)
	h.update(2*day, workflows.UpdateApprove, &approved, workflows.ApproveRequest{Role: "admin"})
	h.update(2*day, workflows.UpdateReject, &again)
	out := h.run(true)
	if confirmed.err != nil || approved.err != nil {
		t.Fatalf("confirm %v, approve %v", confirmed.err, approved.err)
	}
	if out.Status != domain.JoinApproved || out.UserID != "visitor-1" {
		t.Fatalf("outcome %+v", out)
	}
	if len(h.world.approvals) != 1 || h.world.approvals[0] != "admin" || h.world.approvedMails != 1 {
		t.Fatalf("approvals %v, approved e-mails %d", h.world.approvals, h.world.approvedMails)
	}
	if h.world.sent(workflows.JoinEmailConfirm) != 1 || h.world.sent(workflows.JoinEmailToMember) != 1 || h.world.sent(workflows.JoinEmailReminder) != 0 {
		t.Fatalf("e-mails %v", h.world.emails)
	}
	if again.err == nil || again.code() != domain.CodeAlreadyDecided {
		t.Fatalf("a reject racing the approval: %+v", again)
	}
}

func TestJoinApproveDefaultsToMemberAndExistingUserIsToldToLogIn(t *testing.T) {
	h := newJoinHarness(t)
	h.world.existingUser = true
	var confirmed, approved updateOutcome
	h.update(afterConfirm, workflows.UpdateConfirm, &confirmed)
	h.update(day, workflows.UpdateApprove, &approved, workflows.ApproveRequest{})
	out := h.run(true)
	if out.Status != domain.JoinApproved || h.world.approvals[0] != "member" {
		t.Fatalf("outcome %+v, roles %v", out, h.world.approvals)
	}
	if h.world.approvedMails != 0 || h.world.sent(workflows.JoinEmailAlreadyMember) != 1 {
		t.Fatalf("existing user got %d set-password e-mails, %d log-in e-mails", h.world.approvedMails, h.world.sent(workflows.JoinEmailAlreadyMember))
	}
}

func TestJoinRejectTellsVisitorOnlyWhenConfigured(t *testing.T) {
	for _, tell := range []bool{true, false} {
		h := newJoinHarness(t)
		var confirmed, rejected updateOutcome
		h.update(afterConfirm, workflows.UpdateConfirm, &confirmed)
		h.update(3*day, workflows.UpdateReject, &rejected)
		out := h.run(tell)
		if rejected.err != nil || out.Status != domain.JoinRejected {
			t.Fatalf("tell=%v: reject %v, outcome %+v", tell, rejected.err, out)
		}
		want := 0
		if tell {
			want = 1
		}
		if got := h.world.sent(workflows.JoinEmailRejected); got != want {
			t.Fatalf("tell=%v: %d rejection e-mails", tell, got)
		}
	}
}

func TestJoinReminderHalfwayThenExpiry(t *testing.T) {
	h := newJoinHarness(t)
	var confirmed updateOutcome
	h.update(afterConfirm, workflows.UpdateConfirm, &confirmed)
	var remindersAtDay6, remindersAtDay8 int
	h.env.RegisterDelayedCallback(func() { remindersAtDay6 = h.world.sent(workflows.JoinEmailReminder) }, afterConfirm+6*day)
	h.env.RegisterDelayedCallback(func() { remindersAtDay8 = h.world.sent(workflows.JoinEmailReminder) }, afterConfirm+8*day)
	out := h.run(true)
	if out.Status != domain.JoinExpired {
		t.Fatalf("status %s", out.Status)
	}
	if remindersAtDay6 != 0 || remindersAtDay8 != 1 || h.world.sent(workflows.JoinEmailReminder) != 1 {
		t.Fatalf("reminders: day 6 %d, day 8 %d, total %d", remindersAtDay6, remindersAtDay8, h.world.sent(workflows.JoinEmailReminder))
	}
	if elapsed := h.env.Now().Sub(h.start); elapsed < afterConfirm+twoWeeks || elapsed > afterConfirm+twoWeeks+time.Minute {
		t.Fatalf("expired after %s", elapsed)
	}
}

func TestJoinUnconfirmedExpiresAfterADay(t *testing.T) {
	h := newJoinHarness(t)
	out := h.run(true)
	if out.Status != domain.JoinExpired {
		t.Fatalf("status %s", out.Status)
	}
	if elapsed := h.env.Now().Sub(h.start); elapsed > day+time.Minute {
		t.Fatalf("expired after %s, want a day", elapsed)
	}
	if h.world.sent(workflows.JoinEmailToMember) != 0 {
		t.Fatal("the member heard of an unconfirmed request")
	}
}

func TestJoinCancel(t *testing.T) {
	h := newJoinHarness(t)
	var cancelled, approve updateOutcome
	h.update(time.Hour, workflows.UpdateCancel, &cancelled)
	h.update(time.Hour+time.Second, workflows.UpdateApprove, &approve, workflows.ApproveRequest{})
	out := h.run(true)
	if cancelled.err != nil || out.Status != domain.JoinCancelled {
		t.Fatalf("cancel %v, outcome %+v", cancelled.err, out)
	}
	if len(h.world.approvals) != 0 {
		t.Fatal("a cancelled request was approved")
	}
}

func TestJoinApproveBeforeConfirmIsRefused(t *testing.T) {
	h := newJoinHarness(t)
	var approve, badRole, confirmed, approved updateOutcome
	h.update(time.Minute, workflows.UpdateApprove, &approve, workflows.ApproveRequest{})
	h.update(time.Hour, workflows.UpdateConfirm, &confirmed)
	h.update(2*time.Hour, workflows.UpdateApprove, &badRole, workflows.ApproveRequest{Role: "owner"})
	h.update(3*time.Hour, workflows.UpdateApprove, &approved, workflows.ApproveRequest{Role: "guest"})
	out := h.run(true)
	if !approve.rejected || approve.code() != domain.CodeInvalidState {
		t.Fatalf("approve before confirm: %+v", approve)
	}
	if !badRole.rejected || badRole.code() != domain.CodeInvalidRequest {
		t.Fatalf("approve as owner: %+v", badRole)
	}
	if approved.err != nil || out.Status != domain.JoinApproved || h.world.approvals[0] != "guest" {
		t.Fatalf("approve: %+v, outcome %+v", approved, out)
	}
}

func TestJoinVisitorAlreadyMemberIsToldToLogIn(t *testing.T) {
	h := newJoinHarness(t)
	h.world.alreadyMember = true
	out := h.run(true)
	if out.Status != domain.JoinCancelled || h.world.sent(workflows.JoinEmailAlreadyMember) != 1 || h.world.sent(workflows.JoinEmailConfirm) != 0 {
		t.Fatalf("outcome %+v, e-mails %v", out, h.world.emails)
	}
	if last := h.world.changes[len(h.world.changes)-1]; last.Reason != "already_member" {
		t.Fatalf("reason %q", last.Reason)
	}
}
