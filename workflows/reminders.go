package workflows

import (
	"slices"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/usherhq/usher/internal/domain"
)

// After an invitation is sent, its run follows the e-mail: a bounce reported by the mail
// provider fails the invitation, reminders go out before the expiry, and the inviter hears
// when the invitation could not be delivered or expired unaccepted.

// deliveryTrackingVersion marks the workflow code that follows deliveries. Runs recorded
// before it replay without any of it: no settings, no reminders, no notices, and delivery
// events left unread.
const deliveryTrackingVersion = "delivery-tracking"

// InvitationSettings are the worker's settings an invitation run follows, read once when
// the run starts (a local activity, so the worker's configuration is the one source of
// truth and history records what the run was given).
type InvitationSettings struct {
	// Reminders are how long before the expiry the invitee is reminded.
	Reminders []time.Duration `json:",omitempty"`
	// NotifyInviterOnExpiry: e-mail the inviter when the invitation expires unaccepted.
	NotifyInviterOnExpiry bool `json:",omitempty"`
}

// DeliveryEvent is the argument of the delivery-event signal: what the mail provider
// reported about one of the invitation's e-mails. It names the e-mail by its delivery key
// and carries no address (Reason has them removed).
type DeliveryEvent struct {
	DeliveryKey string
	// Outcome is delivered, deferred (a temporary failure), failed (for good: a bounce)
	// or complained (marked as spam).
	Outcome domain.DeliveryOutcome
	Reason  string `json:",omitempty"`
}

// followDeliveries reads the settings and starts listening for delivery events and, when
// there is a schedule, reminding. It does nothing in runs recorded before it existed.
func (inv *invitation) followDeliveries(ctx workflow.Context) error {
	if workflow.GetVersion(ctx, deliveryTrackingVersion, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return nil
	}
	if err := workflow.ExecuteLocalActivity(withRecordOptions(ctx), ActivityInvitationSettings).Get(ctx, &inv.settings); err != nil {
		return err
	}
	inv.following = true
	events := workflow.GetSignalChannel(ctx, SignalDeliveryEvent)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var ev DeliveryEvent
			events.Receive(ctx, &ev)
			inv.onDeliveryEvent(ctx, ev)
		}
	})
	if len(inv.settings.Reminders) > 0 {
		workflow.Go(ctx, inv.remindBeforeExpiry)
	}
	return nil
}

// onDeliveryEvent acts on news about the newest link only: a bounce of the invitation
// (or of its reminder) fails a pending invitation; a complaint stops the reminders, since
// the invitee does not want our mail. Deliveries and temporary failures are recorded by
// the API and need nothing here.
func (inv *invitation) onDeliveryEvent(ctx workflow.Context, ev DeliveryEvent) {
	if ev.DeliveryKey == "" || ev.DeliveryKey != inv.deliveryKey {
		return
	}
	switch ev.Outcome {
	case domain.OutcomeComplained:
		inv.complained = true
	case domain.OutcomeFailed:
		inv.exclusively(ctx, func() {
			if inv.status != domain.StatusPending || ev.DeliveryKey != inv.deliveryKey {
				return
			}
			reason := ev.Reason
			if reason == "" {
				reason = "the e-mail bounced"
			}
			inv.stopDelivery()
			_ = inv.changeStatus(ctx, domain.ActionFail, domain.StatusFailed, reason, nil, "")
		})
	}
}

// exclusively runs fn once no update (an accept, a revoke…) and no other follow-up is
// under way, so that a status fn writes cannot cross one an update writes.
func (inv *invitation) exclusively(ctx workflow.Context, fn func()) {
	_ = workflow.Await(ctx, func() bool { return !inv.followingUp && !inv.accepting && workflow.AllHandlersFinished(ctx) })
	inv.followingUp = true
	defer func() { inv.followingUp = false }()
	fn()
}

// remindBeforeExpiry sends a reminder, with a fresh link, at each time of the schedule
// before the current expiry that was still ahead when the expiry was set. A renew moves
// the expiry and re-arms the schedule; leaving pending (accept, revoke, expiry, failure)
// stops it.
func (inv *invitation) remindBeforeExpiry(ctx workflow.Context) {
	for {
		_ = workflow.Await(ctx, func() bool { return inv.status == domain.StatusPending })
		deadline := inv.expiresAt
		moved := func() bool { return inv.status != domain.StatusPending || !inv.expiresAt.Equal(deadline) }
		for _, at := range reminderTimes(deadline, workflow.Now(ctx), inv.settings.Reminders) {
			if wait := at.Sub(workflow.Now(ctx)); wait > 0 {
				if movedFirst, _ := workflow.AwaitWithTimeout(ctx, wait, moved); movedFirst {
					break
				}
			}
			stop := false
			inv.exclusively(ctx, func() {
				if stop = moved() || inv.complained; !stop {
					_ = inv.sendReminder(ctx)
				}
			})
			if stop {
				break
			}
		}
		_ = workflow.Await(ctx, moved)
	}
}

// reminderTimes are the times, earliest first, that the schedule puts before deadline and
// that are still after now.
func reminderTimes(deadline, now time.Time, schedule []time.Duration) []time.Time {
	var out []time.Time
	for _, before := range schedule {
		if at := deadline.Add(-before); before > 0 && at.After(now) && !slices.ContainsFunc(out, at.Equal) {
			out = append(out, at)
		}
	}
	slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
	return out
}

// sendReminder e-mails (or texts) the invitee a reminder. Tokens are kept only hashed, so
// the reminder cannot repeat the link sent before: like a resend, it carries a fresh link
// and the older ones stop working. The audit trail records it as "remind".
func (inv *invitation) sendReminder(ctx workflow.Context) error {
	key := inv.newKey(ctx, "remind")
	if err := inv.changeStatus(ctx, domain.ActionRemind, domain.StatusPending, "", nil, key); err != nil {
		return err
	}
	inv.deliverLink(ctx, ActivitySendInvitationReminder, key)
	return nil
}

// tellInviter e-mails the inviter why the invitation ended: it could not be delivered, or
// (when the setting is on) it expired unaccepted.
func (inv *invitation) tellInviter(ctx workflow.Context) {
	if !inv.following {
		return
	}
	var activity string
	switch {
	case inv.status == domain.StatusFailed:
		activity = ActivityNotifyInviterOfFailure
	case inv.status == domain.StatusExpired && inv.settings.NotifyInviterOnExpiry:
		activity = ActivityNotifyInviterOfExpiry
	default:
		return
	}
	req := DeliveryRequest{InvitationID: inv.id, DeliveryKey: inv.newKey(ctx, string(inv.status))}
	_ = workflow.ExecuteActivity(withDeliveryOptions(ctx), activity, req).Get(ctx, nil)
}
