package workflows

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/usherhq/usher/internal/domain"
)

// reopenGrace is how long a run started to reopen an expired invitation waits for the renew
// update that came with it before giving up.
const reopenGrace = time.Minute

// InvitationWorkflow is the life of one invitation: send the link, then wait for whichever
// comes first, an accept or the expiry, while admins may resend, renew or revoke. A run ends
// when the invitation is accepted, revoked, failed or expired; renewing an expired
// invitation starts a new run under the same workflow ID.
func InvitationWorkflow(ctx workflow.Context, in InvitationInput) (InvitationOutcome, error) {
	inv := &invitation{id: in.InvitationID, status: in.Status, expiresIn: in.ExpiresIn, expiresAt: in.ExpiresAt}
	if err := inv.handleUpdates(ctx); err != nil {
		return InvitationOutcome{}, err
	}
	if err := inv.followDeliveries(ctx); err != nil {
		return InvitationOutcome{}, err
	}

	switch in.Status {
	case domain.StatusExpired:
		// Started by a renew; without it there is nothing to do.
		if ok, err := workflow.AwaitWithTimeout(ctx, reopenGrace, func() bool { return inv.status != domain.StatusExpired }); err != nil || !ok {
			return inv.finish(ctx)
		}
	default:
		if err := inv.recordWorkflowStarted(ctx); err != nil {
			return InvitationOutcome{}, err
		}
		if in.Status == domain.StatusPending {
			if err := inv.sendFreshLink(ctx, domain.ActionSend, nil); err != nil {
				return InvitationOutcome{}, err
			}
		}
	}

	for {
		switch inv.status {
		case domain.StatusDraft:
			_ = workflow.Await(ctx, func() bool { return inv.status != domain.StatusDraft })
		case domain.StatusPending:
			inv.awaitAcceptOrExpiry(ctx)
		case domain.StatusAccepted:
			inv.welcome(ctx)
			return inv.finish(ctx)
		default: // expired, revoked, failed
			inv.tellInviter(ctx)
			if inv.status.Open() {
				continue // renewed while the inviter was being told
			}
			return inv.finish(ctx)
		}
	}
}

// invitation is the workflow's state. Update handlers change it; the main loop reacts.
type invitation struct {
	id        string
	status    domain.Status
	expiresIn time.Duration
	expiresAt time.Time

	// deliveryKey names the newest invitation e-mail; only its link may be accepted.
	deliveryKey    string
	stopDelivering workflow.CancelFunc

	accepting  bool
	acceptance AcceptResult
	sequence   int
	// resends are the keys of keyed resends already carried out.
	resends []string

	// Delivery tracking and reminders (reminders.go); zero in runs recorded before them.
	following   bool
	settings    InvitationSettings
	complained  bool
	followingUp bool // a reminder or a bounce is being recorded
}

// awaitAcceptOrExpiry waits until the status changes, the expiry moves, or the expiry
// passes. An accept already under way when the timer fires is allowed to finish.
func (inv *invitation) awaitAcceptOrExpiry(ctx workflow.Context) {
	deadline := inv.expiresAt
	changed := func() bool { return inv.status != domain.StatusPending || !inv.expiresAt.Equal(deadline) }
	if remaining := deadline.Sub(workflow.Now(ctx)); remaining > 0 {
		if changedInTime, _ := workflow.AwaitWithTimeout(ctx, remaining, changed); changedInTime {
			return
		}
	}
	_ = workflow.Await(ctx, func() bool { return !inv.accepting })
	if changed() {
		return
	}
	inv.stopDelivery()
	_ = inv.changeStatus(ctx, domain.ActionExpire, domain.StatusExpired, "", nil, "")
}

// welcome finishes an accept: a new account without a password gets a link to set one,
// and the inviter hears that the invitee joined.
func (inv *invitation) welcome(ctx workflow.Context) {
	if (!inv.acceptance.ExistingUser && !inv.acceptance.PasswordSet) || inv.acceptance.NeedsPassword {
		req := SetPasswordRequest{InvitationID: inv.id, UserID: inv.acceptance.UserID, DeliveryKey: inv.newKey(ctx, "password")}
		_ = workflow.ExecuteActivity(withDeliveryOptions(ctx), ActivitySendSetPassword, req).Get(ctx, nil)
	}
	req := DeliveryRequest{InvitationID: inv.id, DeliveryKey: inv.newKey(ctx, "accepted")}
	_ = workflow.ExecuteActivity(withDeliveryOptions(ctx), ActivityNotifyInviter, req).Get(ctx, nil)
}

func (inv *invitation) finish(ctx workflow.Context) (InvitationOutcome, error) {
	inv.stopDelivery()
	// Updates still running (a renew racing the expiry, say) get their answer first.
	_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
	return InvitationOutcome{Status: inv.status, UserID: inv.acceptance.UserID}, nil
}

func (inv *invitation) handleUpdates(ctx workflow.Context) error {
	handlers := []struct {
		name      string
		handler   any
		validator any
	}{
		{UpdateSend, inv.send, func(ctx workflow.Context) error { return inv.allow(domain.ActionSend) }},
		{UpdateResend, inv.resend, func(ctx workflow.Context, req ResendRequest) error {
			if req.Key != "" && slices.Contains(inv.resends, req.Key) {
				return nil
			}
			return inv.allow(domain.ActionResend)
		}},
		{UpdateRenew, inv.renew, inv.validateRenew},
		{UpdateRevoke, inv.revoke, func(ctx workflow.Context) error { return inv.allow(domain.ActionRevoke) }},
		{UpdateAccept, inv.accept, inv.validateAccept},
	}
	for _, h := range handlers {
		if err := workflow.SetUpdateHandlerWithOptions(ctx, h.name, h.handler, workflow.UpdateHandlerOptions{Validator: h.validator}); err != nil {
			return err
		}
	}
	return nil
}

// allow refuses an action the current status forbids. While an accept is under way the
// invitation is as good as accepted.
func (inv *invitation) allow(action domain.Action) error {
	status := inv.status
	if inv.accepting {
		status = domain.StatusAccepted
	}
	if err := domain.CheckAction(status, action); err != nil {
		var de *domain.Error
		if errors.As(err, &de) {
			return ClientError(de)
		}
		return err
	}
	return nil
}

func (inv *invitation) send(ctx workflow.Context) error {
	if err := inv.allow(domain.ActionSend); err != nil {
		return err
	}
	expiresAt := workflow.Now(ctx).Add(inv.expiresIn)
	return inv.sendFreshLink(ctx, domain.ActionSend, &expiresAt)
}

func (inv *invitation) resend(ctx workflow.Context, req ResendRequest) error {
	if req.Key != "" && slices.Contains(inv.resends, req.Key) {
		return nil
	}
	if err := inv.allow(domain.ActionResend); err != nil {
		return err
	}
	if err := inv.sendFreshLink(ctx, domain.ActionResend, nil); err != nil {
		return err
	}
	if req.Key != "" {
		inv.resends = append(inv.resends, req.Key)
	}
	return nil
}

func (inv *invitation) validateRenew(ctx workflow.Context, req RenewRequest) error {
	if req.ExpiresIn < domain.MinExpiresIn || req.ExpiresIn > domain.MaxExpiresIn {
		return ClientError(domain.Errorf(domain.CodeInvalidExpiry, "expires_in must be between %s and %s", domain.MinExpiresIn, domain.MaxExpiresIn))
	}
	return inv.allow(domain.ActionRenew)
}

// renew moves the expiry. An expired invitation is reopened with a fresh link, since its
// old one stopped working when it expired.
func (inv *invitation) renew(ctx workflow.Context, req RenewRequest) error {
	if err := inv.validateRenew(ctx, req); err != nil {
		return err
	}
	expiresAt := workflow.Now(ctx).Add(req.ExpiresIn)
	if inv.status == domain.StatusPending {
		return inv.changeStatus(ctx, domain.ActionRenew, domain.StatusPending, "", &expiresAt, "")
	}
	return inv.sendFreshLink(ctx, domain.ActionRenew, &expiresAt)
}

func (inv *invitation) revoke(ctx workflow.Context) error {
	if err := inv.allow(domain.ActionRevoke); err != nil {
		return err
	}
	inv.stopDelivery()
	return inv.changeStatus(ctx, domain.ActionRevoke, domain.StatusRevoked, "", nil, "")
}

func (inv *invitation) validateAccept(ctx workflow.Context, req AcceptRequest) error {
	if err := inv.allow(domain.ActionAccept); err != nil {
		return err
	}
	if !workflow.Now(ctx).Before(inv.expiresAt) {
		return ClientError(domain.Errorf(domain.CodeInvitationExpired, "the invitation has expired; ask the inviter for a new one"))
	}
	if req.DeliveryKey != inv.deliveryKey {
		return ClientError(domain.Errorf(domain.CodeInvalidToken, "this link was replaced by a newer one").WithDetail("reason", "replaced"))
	}
	return nil
}

// accept creates the account or adds the membership. The first accept wins; any other
// that slipped past the validator in the same moment is refused here.
func (inv *invitation) accept(ctx workflow.Context, req AcceptRequest) (AcceptResult, error) {
	if err := inv.validateAccept(ctx, req); err != nil {
		return AcceptResult{}, err
	}
	inv.accepting = true
	defer func() { inv.accepting = false }()

	var result AcceptResult
	args := AcceptActivityRequest{InvitationID: inv.id, AttemptID: req.AttemptID, Name: req.Name, EventKey: inv.newKey(ctx, "accept")}
	if err := acceptActivity(ctx, args).Get(ctx, &result); err != nil {
		return AcceptResult{}, err
	}
	inv.stopDelivery()
	inv.acceptance = result
	inv.status = domain.StatusAccepted
	showStatus(ctx, KindInvitation, string(inv.status), time.Time{})
	return result, nil
}

// sendFreshLink records that a new invitation e-mail is wanted, which retires the links
// sent before, and sends it.
func (inv *invitation) sendFreshLink(ctx workflow.Context, action domain.Action, expiresAt *time.Time) error {
	key := inv.newKey(ctx, "invite")
	if err := inv.changeStatus(ctx, action, domain.StatusPending, "", expiresAt, key); err != nil {
		return err
	}
	inv.deliverInvitation(ctx, key)
	return nil
}

// deliverInvitation sends the invitation e-mail named key in the background, so that
// updates and the expiry timer keep working while the provider retries. A newer delivery
// cancels this one.
func (inv *invitation) deliverInvitation(ctx workflow.Context, key string) {
	inv.deliverLink(ctx, ActivitySendInvitation, key)
}

// deliverLink is deliverInvitation for any activity that sends the invitation's link (the
// invitation itself or a reminder).
func (inv *invitation) deliverLink(ctx workflow.Context, activity, key string) {
	inv.stopDelivery()
	deliveryCtx, cancel := workflow.WithCancel(ctx)
	inv.stopDelivering = cancel
	workflow.Go(deliveryCtx, func(ctx workflow.Context) {
		req := DeliveryRequest{InvitationID: inv.id, DeliveryKey: key}
		err := workflow.ExecuteActivity(withDeliveryOptions(ctx), activity, req).Get(ctx, nil)
		var appErr *temporal.ApplicationError
		if !errors.As(err, &appErr) || appErr.Type() != ErrDeliveryRefused {
			return
		}
		if inv.status == domain.StatusPending && inv.deliveryKey == key && !inv.accepting {
			_ = inv.changeStatus(ctx, domain.ActionFail, domain.StatusFailed, appErr.Message(), nil, "")
		}
	})
}

func (inv *invitation) stopDelivery() {
	if inv.stopDelivering != nil {
		inv.stopDelivering()
		inv.stopDelivering = nil
	}
}

// changeStatus records a decision in MySQL, then applies it to the workflow's state. It is
// recorded first so that the API, which reads MySQL, never shows a step the workflow may
// still refuse.
func (inv *invitation) changeStatus(ctx workflow.Context, action domain.Action, to domain.Status, reason string, expiresAt *time.Time, deliveryKey string) error {
	change := StatusChange{
		EventKey: inv.newKey(ctx, string(action)), InvitationID: inv.id, Action: action,
		From: inv.status, To: to, Reason: reason, ExpiresAt: expiresAt, DeliveryKey: deliveryKey,
	}
	if err := workflow.ExecuteLocalActivity(withRecordOptions(ctx), ActivityRecordStatus, change).Get(ctx, nil); err != nil {
		return err
	}
	inv.status = to
	if expiresAt != nil {
		inv.expiresAt = *expiresAt
	}
	if deliveryKey != "" {
		inv.deliveryKey = deliveryKey
	}
	showStatus(ctx, KindInvitation, string(to), inv.expiresAt)
	return nil
}

func (inv *invitation) recordWorkflowStarted(ctx workflow.Context) error {
	return workflow.ExecuteLocalActivity(withRecordOptions(ctx), ActivityRecordWorkflowStarted, inv.id).Get(ctx, nil)
}

// newKey names a new e-mail or audit event. The workflow's own counter keeps it
// deterministic; the run ID keeps a reopened invitation's keys apart from earlier runs'.
func (inv *invitation) newKey(ctx workflow.Context, what string) string {
	inv.sequence++
	return fmt.Sprintf("%s/%d/%s", workflow.GetInfo(ctx).WorkflowExecution.RunID, inv.sequence, what)
}

func withRecordOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 200 * time.Millisecond, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second,
			NonRetryableErrorTypes: []string{string(domain.CodeInvitationPending), string(domain.CodeInvitationNotFound)},
		},
	})
}

// withDeliveryOptions runs an activity that talks to a mail or SMS provider on the delivery
// task queue, whose workers cap the sends per second.
func withDeliveryOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           DeliveryTaskQueue,
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 5 * time.Minute,
			NonRetryableErrorTypes: []string{ErrDeliveryRefused, ErrDeliverySuperseded},
		},
	})
}

// localAcceptVersion marks the code that runs AcceptInvitation as a local activity: one
// MySQL transaction needs no trip through the task queue, and the accept answers a workflow
// task sooner (BENCHMARKS.md, benchmark 2). Runs recorded before it replay the activity.
const localAcceptVersion = "local-accept"

func acceptActivity(ctx workflow.Context, args AcceptActivityRequest) workflow.Future {
	if workflow.GetVersion(ctx, localAcceptVersion, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return workflow.ExecuteActivity(withAcceptOptions(ctx), ActivityAcceptInvitation, args)
	}
	return workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout:    15 * time.Second,
		ScheduleToCloseTimeout: 25 * time.Second, // within the API's wait for the update
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 100 * time.Millisecond, BackoffCoefficient: 2, MaximumInterval: 5 * time.Second,
		},
	}), ActivityAcceptInvitation, args)
}

func withAcceptOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 15 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 100 * time.Millisecond, BackoffCoefficient: 2, MaximumInterval: 5 * time.Second,
		},
	})
}
