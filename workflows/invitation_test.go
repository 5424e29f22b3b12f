package workflows_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/usherhq/usher/internal/domain"
	"github.com/usherhq/usher/workflows"
)

// fakeWorld stands in for MySQL and Mailgun in workflow tests.
type fakeWorld struct {
	mu             sync.Mutex
	changes        []workflows.StatusChange
	sends          []string // delivery keys of invitation e-mails, one per attempt
	sendErrors     []error  // returned by the next attempts, in order
	accepts        int
	passwordEmails int
	inviterEmails  int

	// Delivery tracking and reminders (reminders_test.go).
	settings       workflows.InvitationSettings
	reminders      []string // delivery keys of reminders, one per attempt
	reminderTimes  []time.Time
	failureNotices int
	expiryNotices  int
}

func (f *fakeWorld) register(env *testsuite.TestWorkflowEnvironment) {
	env.RegisterActivityWithOptions(func(ctx context.Context, id string) error { return nil },
		activity.RegisterOptions{Name: workflows.ActivityRecordWorkflowStarted})
	env.RegisterActivityWithOptions(func(ctx context.Context, c workflows.StatusChange) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.changes = append(f.changes, c)
		return nil
	}, activity.RegisterOptions{Name: workflows.ActivityRecordStatus})
	env.RegisterActivityWithOptions(func(ctx context.Context, r workflows.DeliveryRequest) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.sends = append(f.sends, r.DeliveryKey)
		if len(f.sendErrors) > 0 {
			err := f.sendErrors[0]
			f.sendErrors = f.sendErrors[1:]
			return err
		}
		return nil
	}, activity.RegisterOptions{Name: workflows.ActivitySendInvitation})
	env.RegisterActivityWithOptions(func(ctx context.Context, r workflows.AcceptActivityRequest) (workflows.AcceptResult, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.accepts++
		return workflows.AcceptResult{UserID: "user-1"}, nil
	}, activity.RegisterOptions{Name: workflows.ActivityAcceptInvitation})
	env.RegisterActivityWithOptions(func(ctx context.Context, r workflows.SetPasswordRequest) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.passwordEmails++
		return nil
	}, activity.RegisterOptions{Name: workflows.ActivitySendSetPassword})
	env.RegisterActivityWithOptions(func(ctx context.Context, r workflows.DeliveryRequest) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.inviterEmails++
		return nil
	}, activity.RegisterOptions{Name: workflows.ActivityNotifyInviter})
	f.registerFollowUps(env)
}

func (f *fakeWorld) lastKey() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.sends) == 0 {
		return ""
	}
	return f.sends[len(f.sends)-1]
}

func (f *fakeWorld) statuses() []domain.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []domain.Status
	for _, c := range f.changes {
		out = append(out, c.To)
	}
	return out
}

const week = 7 * 24 * time.Hour

type harness struct {
	t     *testing.T
	env   *testsuite.TestWorkflowEnvironment
	world *fakeWorld
	start time.Time
}

func newHarness(t *testing.T) *harness {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	world := &fakeWorld{}
	world.register(env)
	env.RegisterWorkflow(workflows.InvitationWorkflow)
	return &harness{t: t, env: env, world: world, start: env.Now()}
}

// run starts a pending invitation that expires after a week.
func (h *harness) run() workflows.InvitationOutcome {
	return h.runWith(workflows.InvitationInput{
		InvitationID: "inv-1", Status: domain.StatusPending, ExpiresIn: week, ExpiresAt: h.start.Add(week),
	})
}

func (h *harness) runWith(in workflows.InvitationInput) workflows.InvitationOutcome {
	h.t.Helper()
	h.env.ExecuteWorkflow(workflows.InvitationWorkflow, in)
	if !h.env.IsWorkflowCompleted() {
		h.t.Fatal("workflow did not complete")
	}
	if err := h.env.GetWorkflowError(); err != nil {
		h.t.Fatalf("workflow failed: %v", err)
	}
	var out workflows.InvitationOutcome
	if err := h.env.GetWorkflowResult(&out); err != nil {
		h.t.Fatal(err)
	}
	return out
}

// update sends an update after delay and records how it ended.
func (h *harness) update(delay time.Duration, name string, outcome *updateOutcome, args ...any) {
	h.env.RegisterDelayedCallback(func() {
		h.env.UpdateWorkflow(name, "", &testsuite.TestUpdateCallback{
			OnAccept: func() {},
			OnReject: func(err error) { outcome.err, outcome.rejected = err, true },
			OnComplete: func(result any, err error) {
				outcome.completed, outcome.result, outcome.err = true, result, err
			},
		}, args...)
	}, delay)
}

type updateOutcome struct {
	rejected, completed bool
	result              any
	err                 error
}

func (o *updateOutcome) code() domain.Code {
	if de, ok := workflows.DomainError(o.err); ok {
		return de.Code
	}
	return ""
}

func (h *harness) accept(delay time.Duration, outcome *updateOutcome, key func() string) {
	h.env.RegisterDelayedCallback(func() {
		h.env.UpdateWorkflow(workflows.UpdateAccept, "", &testsuite.TestUpdateCallback{
			OnAccept: func() {},
			OnReject: func(err error) { outcome.err, outcome.rejected = err, true },
			OnComplete: func(result any, err error) {
				outcome.completed, outcome.result, outcome.err = true, result, err
			},
		}, workflows.AcceptRequest{DeliveryKey: key(), AttemptID: "attempt"})
	}, delay)
}

func TestAcceptBeforeExpiry(t *testing.T) {
	h := newHarness(t)
	var accepted updateOutcome
	h.accept(time.Hour, &accepted, h.world.lastKey)
	out := h.run()

	if accepted.err != nil || !accepted.completed {
		t.Fatalf("accept: %+v", accepted)
	}
	if out.Status != domain.StatusAccepted || out.UserID != "user-1" {
		t.Fatalf("outcome %+v", out)
	}
	if h.world.accepts != 1 || h.world.passwordEmails != 1 || h.world.inviterEmails != 1 {
		t.Fatalf("accepts=%d password e-mails=%d inviter e-mails=%d", h.world.accepts, h.world.passwordEmails, h.world.inviterEmails)
	}
	if got := len(h.world.sends); got != 1 {
		t.Fatalf("%d invitation e-mails, want 1", got)
	}
}

func TestExpiresWhenNobodyAccepts(t *testing.T) {
	h := newHarness(t)
	out := h.run()
	if out.Status != domain.StatusExpired {
		t.Fatalf("status %s, want expired", out.Status)
	}
	if elapsed := h.env.Now().Sub(h.start); elapsed < week || elapsed > week+time.Minute {
		t.Fatalf("expired after %s, want a week", elapsed)
	}
	if got := h.world.statuses(); len(got) != 2 || got[0] != domain.StatusPending || got[1] != domain.StatusExpired {
		t.Fatalf("recorded %v", got)
	}
}

func TestAcceptAfterExpiryIsRefused(t *testing.T) {
	h := newHarness(t)
	var late updateOutcome
	// The workflow has completed by then, so the update cannot even be delivered; the
	// interesting case is an accept racing the timer at the very instant of expiry.
	h.accept(week, &late, h.world.lastKey)
	out := h.run()
	if out.Status != domain.StatusExpired {
		t.Fatalf("status %s", out.Status)
	}
	if late.err == nil || h.world.accepts != 0 {
		t.Fatalf("accept at expiry: %+v, accepts=%d", late, h.world.accepts)
	}
}

func TestRenewMovesTheExpiry(t *testing.T) {
	h := newHarness(t)
	var renewed updateOutcome
	h.update(6*24*time.Hour, workflows.UpdateRenew, &renewed, workflows.RenewRequest{ExpiresIn: 72 * time.Hour})
	out := h.run()
	if renewed.err != nil {
		t.Fatalf("renew: %v", renewed.err)
	}
	if out.Status != domain.StatusExpired {
		t.Fatalf("status %s", out.Status)
	}
	if elapsed := h.env.Now().Sub(h.start); elapsed < 9*24*time.Hour {
		t.Fatalf("expired after %s, want 6 days + 72h", elapsed)
	}
	if len(h.world.sends) != 1 {
		t.Fatalf("renewing a pending invitation sent %d e-mails, want just the first", len(h.world.sends))
	}
}

func TestRenewReopensAnExpiredInvitation(t *testing.T) {
	h := newHarness(t)
	var renewed, accepted updateOutcome
	h.update(0, workflows.UpdateRenew, &renewed, workflows.RenewRequest{ExpiresIn: time.Hour})
	h.accept(30*time.Minute, &accepted, h.world.lastKey)
	out := h.runWith(workflows.InvitationInput{InvitationID: "inv-1", Status: domain.StatusExpired})
	if renewed.err != nil || accepted.err != nil {
		t.Fatalf("renew: %v, accept: %v", renewed.err, accepted.err)
	}
	if out.Status != domain.StatusAccepted {
		t.Fatalf("status %s", out.Status)
	}
	if len(h.world.sends) != 1 {
		t.Fatalf("reopening sent %d e-mails, want 1 fresh link", len(h.world.sends))
	}
	if got := h.world.statuses(); len(got) < 1 || got[0] != domain.StatusPending {
		t.Fatalf("recorded %v", got)
	}
}

func TestReopenedRunWithoutRenewEnds(t *testing.T) {
	h := newHarness(t)
	out := h.runWith(workflows.InvitationInput{InvitationID: "inv-1", Status: domain.StatusExpired})
	if out.Status != domain.StatusExpired || len(h.world.sends) != 0 {
		t.Fatalf("outcome %+v, sends %d", out, len(h.world.sends))
	}
}

func TestRenewRefusesOutOfRangeExpiry(t *testing.T) {
	h := newHarness(t)
	var renewed updateOutcome
	h.update(time.Hour, workflows.UpdateRenew, &renewed, workflows.RenewRequest{ExpiresIn: 1000 * time.Hour})
	h.run()
	if !renewed.rejected || renewed.code() != domain.CodeInvalidExpiry {
		t.Fatalf("renew: %+v", renewed)
	}
}

func TestRevoke(t *testing.T) {
	h := newHarness(t)
	var revoked, acceptAfter updateOutcome
	h.update(time.Hour, workflows.UpdateRevoke, &revoked)
	h.accept(time.Hour+time.Second, &acceptAfter, h.world.lastKey)
	out := h.run()
	if revoked.err != nil {
		t.Fatalf("revoke: %v", revoked.err)
	}
	if out.Status != domain.StatusRevoked || h.world.accepts != 0 {
		t.Fatalf("outcome %+v, accepts %d", out, h.world.accepts)
	}
	if elapsed := h.env.Now().Sub(h.start); elapsed > 2*time.Hour {
		t.Fatalf("revoked workflow lingered %s", elapsed)
	}
}

func TestRevokeAfterAcceptIsRefused(t *testing.T) {
	h := newHarness(t)
	var accepted, revoked updateOutcome
	h.accept(time.Hour, &accepted, h.world.lastKey)
	h.env.RegisterDelayedCallback(func() {
		// Still inside the accept's workflow task: the invitation is as good as accepted.
		h.env.UpdateWorkflow(workflows.UpdateRevoke, "", &testsuite.TestUpdateCallback{
			OnAccept:   func() {},
			OnReject:   func(err error) { revoked.err, revoked.rejected = err, true },
			OnComplete: func(result any, err error) { revoked.completed, revoked.err = true, err },
		})
	}, time.Hour)
	out := h.run()
	if out.Status != domain.StatusAccepted {
		t.Fatalf("status %s", out.Status)
	}
	if revoked.err == nil || revoked.code() != domain.CodeInvalidState {
		t.Fatalf("revoke after accept: %+v", revoked)
	}
}

func TestResendInvalidatesTheOldLink(t *testing.T) {
	h := newHarness(t)
	var firstKey string
	h.env.RegisterDelayedCallback(func() { firstKey = h.world.lastKey() }, time.Minute)
	var resent, oldLink, newLink updateOutcome
	h.update(time.Hour, workflows.UpdateResend, &resent)
	h.accept(2*time.Hour, &oldLink, func() string { return firstKey })
	h.accept(3*time.Hour, &newLink, h.world.lastKey)
	out := h.run()

	if resent.err != nil {
		t.Fatalf("resend: %v", resent.err)
	}
	if len(h.world.sends) != 2 || h.world.sends[0] == h.world.sends[1] {
		t.Fatalf("sends %v, want two with different keys", h.world.sends)
	}
	if !oldLink.rejected || oldLink.code() != domain.CodeInvalidToken {
		t.Fatalf("old link: %+v", oldLink)
	}
	if newLink.err != nil || out.Status != domain.StatusAccepted || h.world.accepts != 1 {
		t.Fatalf("new link: %+v, outcome %+v", newLink, out)
	}
}

func TestSecondAcceptIsRefused(t *testing.T) {
	h := newHarness(t)
	var first, second updateOutcome
	h.accept(time.Hour, &first, h.world.lastKey)
	h.accept(time.Hour, &second, h.world.lastKey)
	out := h.run()
	if first.err != nil || out.Status != domain.StatusAccepted {
		t.Fatalf("first: %+v, outcome %+v", first, out)
	}
	if second.err == nil || second.code() != domain.CodeInvitationUsed {
		t.Fatalf("second accept: %+v (code %q)", second, second.code())
	}
	if h.world.accepts != 1 {
		t.Fatalf("%d accepts ran, want 1", h.world.accepts)
	}
}

func TestPermanentDeliveryFailureFails(t *testing.T) {
	h := newHarness(t)
	h.world.sendErrors = []error{temporal.NewNonRetryableApplicationError("mailgun 400: 'to' parameter is not a valid address", workflows.ErrDeliveryRefused, nil)}
	out := h.run()
	if out.Status != domain.StatusFailed {
		t.Fatalf("status %s", out.Status)
	}
	if len(h.world.sends) != 1 {
		t.Fatalf("a refused e-mail was tried %d times", len(h.world.sends))
	}
	h.world.mu.Lock()
	defer h.world.mu.Unlock()
	if last := h.world.changes[len(h.world.changes)-1]; last.Reason == "" {
		t.Fatal("failed without a reason")
	}
}

func TestTransientDeliveryFailuresAreRetried(t *testing.T) {
	h := newHarness(t)
	h.world.sendErrors = []error{
		errors.New("mailgun 503"),
		temporal.NewApplicationErrorWithOptions("mailgun 429", workflows.ErrRateLimited, temporal.ApplicationErrorOptions{NextRetryDelay: 10 * time.Minute}),
		errors.New("mailgun 502"),
	}
	var accepted updateOutcome
	h.accept(2*time.Hour, &accepted, h.world.lastKey)
	out := h.run()
	if out.Status != domain.StatusAccepted {
		t.Fatalf("status %s (accept %+v)", out.Status, accepted)
	}
	if len(h.world.sends) != 4 {
		t.Fatalf("%d attempts, want 3 failures and a success", len(h.world.sends))
	}
	for _, k := range h.world.sends {
		if k != h.world.sends[0] {
			t.Fatalf("a retry changed the delivery key: %v", h.world.sends)
		}
	}
}

func TestDraftIsSentLater(t *testing.T) {
	h := newHarness(t)
	var sent, accepted updateOutcome
	h.update(24*time.Hour, workflows.UpdateSend, &sent)
	h.accept(25*time.Hour, &accepted, h.world.lastKey)
	out := h.runWith(workflows.InvitationInput{InvitationID: "inv-1", Status: domain.StatusDraft, ExpiresIn: 48 * time.Hour})
	if sent.err != nil || accepted.err != nil || out.Status != domain.StatusAccepted {
		t.Fatalf("send %+v accept %+v outcome %+v", sent, accepted, out)
	}
}

func TestDraftCannotBeAccepted(t *testing.T) {
	h := newHarness(t)
	var accepted, revoked updateOutcome
	h.accept(time.Hour, &accepted, func() string { return "" })
	h.update(2*time.Hour, workflows.UpdateRevoke, &revoked)
	out := h.runWith(workflows.InvitationInput{InvitationID: "inv-1", Status: domain.StatusDraft, ExpiresIn: time.Hour})
	if !accepted.rejected || accepted.code() != domain.CodeInvalidState {
		t.Fatalf("accept of a draft: %+v", accepted)
	}
	if out.Status != domain.StatusRevoked || len(h.world.sends) != 0 {
		t.Fatalf("outcome %+v, sends %d", out, len(h.world.sends))
	}
}

func TestWorkflowIDRoundTrip(t *testing.T) {
	id, ok := workflows.InvitationIDFromWorkflowID(workflows.InvitationWorkflowID("0193-abc"))
	if !ok || id != "0193-abc" {
		t.Fatalf("got %q %v", id, ok)
	}
	if _, ok := workflows.InvitationIDFromWorkflowID("join-request/1"); ok {
		t.Fatal("parsed a foreign workflow ID")
	}
}
