package workflows_test

import (
	"context"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/usherhq/usher/internal/domain"
	"github.com/usherhq/usher/workflows"
)

// registerFollowUps registers the fakes of the delivery-tracking activities.
func (f *fakeWorld) registerFollowUps(env *testsuite.TestWorkflowEnvironment) {
	env.RegisterActivityWithOptions(func(ctx context.Context) (workflows.InvitationSettings, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.settings, nil
	}, activity.RegisterOptions{Name: workflows.ActivityInvitationSettings})
	env.RegisterActivityWithOptions(func(ctx context.Context, r workflows.DeliveryRequest) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.reminders = append(f.reminders, r.DeliveryKey)
		f.reminderTimes = append(f.reminderTimes, env.Now())
		return nil
	}, activity.RegisterOptions{Name: workflows.ActivitySendInvitationReminder})
	env.RegisterActivityWithOptions(func(ctx context.Context, r workflows.DeliveryRequest) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.failureNotices++
		return nil
	}, activity.RegisterOptions{Name: workflows.ActivityNotifyInviterOfFailure})
	env.RegisterActivityWithOptions(func(ctx context.Context, r workflows.DeliveryRequest) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.expiryNotices++
		return nil
	}, activity.RegisterOptions{Name: workflows.ActivityNotifyInviterOfExpiry})
}

// currentKey is the delivery key of the newest link: the last reminder's, or the last
// invitation e-mail's.
func (f *fakeWorld) currentKey() string {
	f.mu.Lock()
	n := len(f.reminders)
	f.mu.Unlock()
	if n > 0 {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.reminders[n-1]
	}
	return f.lastKey()
}

func (f *fakeWorld) actions() []domain.Action {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []domain.Action
	for _, c := range f.changes {
		out = append(out, c.Action)
	}
	return out
}

// signal sends a delivery event about the e-mail key names after delay.
func (h *harness) signal(delay time.Duration, outcome domain.DeliveryOutcome, reason string, key func() string) {
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflow(workflows.SignalDeliveryEvent, workflows.DeliveryEvent{DeliveryKey: key(), Outcome: outcome, Reason: reason})
	}, delay)
}

// reminderOffsets says how long before the expiry each reminder went out.
func (h *harness) reminderOffsets(expiry time.Time) []time.Duration {
	h.world.mu.Lock()
	defer h.world.mu.Unlock()
	var out []time.Duration
	for _, at := range h.world.reminderTimes {
		out = append(out, expiry.Sub(at).Round(time.Minute))
	}
	return out
}

func TestBounceFailsTheInvitationAndTellsTheInviter(t *testing.T) {
	h := newHarness(t)
	h.signal(time.Minute, domain.OutcomeFailed, "550 5.1.1 mailbox unavailable", h.world.lastKey)
	out := h.run()
	if out.Status != domain.StatusFailed {
		t.Fatalf("status %s, want failed", out.Status)
	}
	if elapsed := h.env.Now().Sub(h.start); elapsed > time.Hour {
		t.Fatalf("failed after %s, want at once", elapsed)
	}
	h.world.mu.Lock()
	defer h.world.mu.Unlock()
	last := h.world.changes[len(h.world.changes)-1]
	if last.Action != domain.ActionFail || last.Reason != "550 5.1.1 mailbox unavailable" {
		t.Fatalf("last change %+v", last)
	}
	if h.world.failureNotices != 1 {
		t.Fatalf("%d failure notices to the inviter, want 1", h.world.failureNotices)
	}
}

func TestRefusedSendAlsoTellsTheInviter(t *testing.T) {
	h := newHarness(t)
	h.world.sendErrors = []error{temporal.NewNonRetryableApplicationError("mailgun 400: invalid address", workflows.ErrDeliveryRefused, nil)}
	if out := h.run(); out.Status != domain.StatusFailed {
		t.Fatalf("status %s", out.Status)
	}
	if h.world.failureNotices != 1 {
		t.Fatalf("%d failure notices, want 1", h.world.failureNotices)
	}
}

func TestDeliveredAndStaleBouncesChangeNothing(t *testing.T) {
	h := newHarness(t)
	h.signal(time.Minute, domain.OutcomeDelivered, "", h.world.lastKey)
	h.signal(2*time.Minute, domain.OutcomeDeferred, "421 try again later", h.world.lastKey)
	// A bounce of a link that a resend replaced says nothing about the new one.
	var resent updateOutcome
	h.update(time.Hour, workflows.UpdateResend, &resent)
	h.signal(2*time.Hour, domain.OutcomeFailed, "550 gone", func() string { return "an-older-key" })
	var accepted updateOutcome
	h.accept(3*time.Hour, &accepted, h.world.lastKey)
	out := h.run()
	if out.Status != domain.StatusAccepted || resent.err != nil {
		t.Fatalf("status %s, resend %v, accept %+v", out.Status, resent.err, accepted)
	}
	if h.world.failureNotices != 0 {
		t.Fatalf("%d failure notices", h.world.failureNotices)
	}
}

func TestBounceAfterAcceptIsIgnored(t *testing.T) {
	h := newHarness(t)
	var accepted updateOutcome
	h.accept(time.Hour, &accepted, h.world.lastKey)
	h.signal(time.Hour+time.Second, domain.OutcomeFailed, "550", h.world.lastKey)
	if out := h.run(); out.Status != domain.StatusAccepted {
		t.Fatalf("status %s", out.Status)
	}
}

func TestReminderBeforeExpiry(t *testing.T) {
	h := newHarness(t)
	h.world.settings = workflows.InvitationSettings{Reminders: []time.Duration{48 * time.Hour}}
	var accepted, oldLink updateOutcome
	h.accept(6*day, &oldLink, h.world.lastKey) // the first link was replaced by the reminder's
	h.accept(6*day+time.Minute, &accepted, h.world.currentKey)
	out := h.run()
	if got := h.reminderOffsets(h.start.Add(week)); len(got) != 1 || got[0] != 48*time.Hour {
		t.Fatalf("reminders went out %v before the expiry, want [48h]", got)
	}
	if oldLink.code() != domain.CodeInvalidToken || accepted.err != nil || out.Status != domain.StatusAccepted {
		t.Fatalf("old link: %+v; new link: %+v; status %s", oldLink, accepted, out.Status)
	}
	if got := h.world.actions(); len(got) < 2 || got[1] != domain.ActionRemind {
		t.Fatalf("audit trail %v, want send then remind", got)
	}
	h.world.mu.Lock()
	defer h.world.mu.Unlock()
	if c := h.world.changes[1]; c.DeliveryKey == "" || c.To != domain.StatusPending {
		t.Fatalf("the reminder was recorded as %+v", c)
	}
}

func TestSeveralReminders(t *testing.T) {
	h := newHarness(t)
	h.world.settings = workflows.InvitationSettings{Reminders: []time.Duration{24 * time.Hour, 72 * time.Hour}}
	if out := h.run(); out.Status != domain.StatusExpired {
		t.Fatalf("status %s", out.Status)
	}
	if got := h.reminderOffsets(h.start.Add(week)); len(got) != 2 || got[0] != 72*time.Hour || got[1] != 24*time.Hour {
		t.Fatalf("reminders %v before the expiry, want [72h 24h]", got)
	}
}

func TestNoReminderWhenTheInvitationIsShorterThanTheOffset(t *testing.T) {
	h := newHarness(t)
	h.world.settings = workflows.InvitationSettings{Reminders: []time.Duration{48 * time.Hour}}
	out := h.runWith(workflows.InvitationInput{InvitationID: "inv-1", Status: domain.StatusPending, ExpiresIn: day, ExpiresAt: h.start.Add(day)})
	if out.Status != domain.StatusExpired {
		t.Fatalf("status %s", out.Status)
	}
	if len(h.world.reminders) != 0 {
		t.Fatalf("a 24h invitation got %d reminders 48h before its expiry", len(h.world.reminders))
	}
}

func TestRenewReArmsTheReminder(t *testing.T) {
	h := newHarness(t)
	h.world.settings = workflows.InvitationSettings{Reminders: []time.Duration{48 * time.Hour}}
	var first, second updateOutcome
	// Before the reminder: it moves with the expiry.
	h.update(day, workflows.UpdateRenew, &first, workflows.RenewRequest{ExpiresIn: week})
	// After the reminder (day 6): the new expiry gets a reminder of its own.
	h.update(6*day+time.Hour, workflows.UpdateRenew, &second, workflows.RenewRequest{ExpiresIn: 3 * day})
	out := h.run()
	if first.err != nil || second.err != nil || out.Status != domain.StatusExpired {
		t.Fatalf("renews %v, %v; status %s", first.err, second.err, out.Status)
	}
	h.world.mu.Lock()
	times := append([]time.Time(nil), h.world.reminderTimes...)
	h.world.mu.Unlock()
	want := []time.Duration{6 * day, 7*day + time.Hour} // 48h before day 8, 48h before day 9+1h
	if len(times) != len(want) {
		t.Fatalf("reminders at %v, want %v after the start", times, want)
	}
	for i, at := range times {
		if got := at.Sub(h.start).Round(time.Minute); got != want[i] {
			t.Fatalf("reminder %d at %s after the start, want %s", i, got, want[i])
		}
	}
}

func TestAcceptAndRevokeCancelTheReminder(t *testing.T) {
	for _, tc := range []struct {
		name string
		act  func(h *harness, o *updateOutcome)
		want domain.Status
	}{
		{"accept", func(h *harness, o *updateOutcome) { h.accept(day, o, h.world.lastKey) }, domain.StatusAccepted},
		{"revoke", func(h *harness, o *updateOutcome) { h.update(day, workflows.UpdateRevoke, o) }, domain.StatusRevoked},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.world.settings = workflows.InvitationSettings{Reminders: []time.Duration{48 * time.Hour}, NotifyInviterOnExpiry: true}
			var o updateOutcome
			tc.act(h, &o)
			if out := h.run(); out.Status != tc.want || o.err != nil {
				t.Fatalf("status %s, %s: %v", out.Status, tc.name, o.err)
			}
			if len(h.world.reminders) != 0 || h.world.expiryNotices != 0 {
				t.Fatalf("%d reminders, %d expiry notices after %s", len(h.world.reminders), h.world.expiryNotices, tc.name)
			}
		})
	}
}

func TestComplaintStopsReminders(t *testing.T) {
	h := newHarness(t)
	h.world.settings = workflows.InvitationSettings{Reminders: []time.Duration{48 * time.Hour}}
	h.signal(time.Hour, domain.OutcomeComplained, "", h.world.lastKey)
	if out := h.run(); out.Status != domain.StatusExpired {
		t.Fatalf("status %s", out.Status)
	}
	if len(h.world.reminders) != 0 {
		t.Fatalf("%d reminders after the invitee marked the invitation as spam", len(h.world.reminders))
	}
}

func TestInviterToldOnExpiry(t *testing.T) {
	for _, on := range []bool{true, false} {
		h := newHarness(t)
		h.world.settings = workflows.InvitationSettings{NotifyInviterOnExpiry: on}
		if out := h.run(); out.Status != domain.StatusExpired {
			t.Fatalf("status %s", out.Status)
		}
		want := 0
		if on {
			want = 1
		}
		if h.world.expiryNotices != want {
			t.Fatalf("setting %v: %d expiry notices, want %d", on, h.world.expiryNotices, want)
		}
	}
}
