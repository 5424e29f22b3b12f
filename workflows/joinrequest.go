package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/usherhq/usher/internal/domain"
)

// Updates a join request workflow accepts.
const (
	UpdateConfirm = "confirm"
	UpdateApprove = "approve"
	UpdateReject  = "reject"
	UpdateCancel  = "cancel"
)

// Activities of join requests.
const (
	ActivityRecordJoinStarted     = "RecordJoinRequestStarted"
	ActivityRecordJoinStatus      = "RecordJoinRequestStatus"
	ActivityCheckVisitorMember    = "CheckVisitorMembership"
	ActivitySendJoinEmail         = "SendJoinRequestEmail"
	ActivityApproveJoinRequest    = "ApproveJoinRequest"
	ActivitySendJoinApprovedEmail = "SendJoinApprovedEmail"
)

// E-mails of a join request, as SendJoinRequestEmail knows them.
const (
	JoinEmailConfirm       = "join_confirm"        // to the visitor: confirm it was you
	JoinEmailToMember      = "join_request"        // to the member: approve or reject?
	JoinEmailReminder      = "join_reminder"       // to the member, halfway through the window
	JoinEmailRejected      = "join_rejected"       // to the visitor, if the deployment tells
	JoinEmailAlreadyMember = "join_already_member" // to the visitor: just log in
)

const joinRequestWorkflowIDPrefix = "join-request/"

// JoinRequestWorkflowID is the workflow ID of a join request: its ID, nothing personal.
func JoinRequestWorkflowID(id string) string { return joinRequestWorkflowIDPrefix + id }

// JoinRequestIDFromWorkflowID is the inverse of JoinRequestWorkflowID.
func JoinRequestIDFromWorkflowID(workflowID string) (string, bool) {
	return strings.CutPrefix(workflowID, joinRequestWorkflowIDPrefix)
}

// JoinRequestInput starts a join request workflow: IDs, times and settings only.
type JoinRequestInput struct {
	JoinRequestID string
	// ConfirmBy is when an unconfirmed request expires (a day after it was made).
	ConfirmBy time.Time
	// DecisionWindow is how long the member has to decide once the visitor confirmed; one
	// reminder goes out halfway.
	DecisionWindow time.Duration
	// TellVisitorOnReject says whether a rejected visitor gets a polite e-mail.
	TellVisitorOnReject bool

	// For the Temporal UI (empty in runs started before they were added).
	OrganizationID string `json:",omitempty"`
	MemberID       string `json:",omitempty"`
}

// JoinSettings are a deployment's choices for join requests.
type JoinSettings struct {
	// DecisionWindow is how long a member has to decide (default 14 days).
	DecisionWindow time.Duration
	// TellVisitorOnReject sends a rejected visitor a polite e-mail.
	TellVisitorOnReject bool
}

// Input is the workflow input of a join request made through memberID to organizationID,
// which must be confirmed by confirmBy.
func (s JoinSettings) Input(id, organizationID, memberID string, confirmBy time.Time) JoinRequestInput {
	window := s.DecisionWindow
	if window <= 0 {
		window = time.Duration(domain.DefaultDecisionWindow) * time.Second
	}
	return JoinRequestInput{
		JoinRequestID: id, ConfirmBy: confirmBy, DecisionWindow: window, TellVisitorOnReject: s.TellVisitorOnReject,
		OrganizationID: organizationID, MemberID: memberID,
	}
}

// JoinRequestOutcome is how a join request ended.
type JoinRequestOutcome struct {
	Status domain.JoinStatus
	UserID string `json:",omitempty"`
}

// ApproveRequest is the argument of the approve update.
type ApproveRequest struct {
	Role string
}

// JoinApproval is the answer to an approve.
type JoinApproval struct {
	UserID       string
	ExistingUser bool
}

// Activity arguments of join requests.
type (
	JoinStatusChange struct {
		EventKey      string
		JoinRequestID string
		Action        domain.JoinAction
		From, To      domain.JoinStatus
		Reason        string
		DecideBy      *time.Time
	}
	JoinEmailArgs struct {
		JoinRequestID string
		DeliveryKey   string
		Email         string
	}
	ApproveActivityRequest struct {
		JoinRequestID string
		Role          string
		EventKey      string
	}
	JoinApprovedEmailRequest struct {
		JoinRequestID string
		UserID        string
		DeliveryKey   string
	}
)

// JoinRequestWorkflow is the life of a join request: the visitor confirms their address,
// the member approves or rejects, and time runs out for whoever does not act.
func JoinRequestWorkflow(ctx workflow.Context, in JoinRequestInput) (JoinRequestOutcome, error) {
	jr := &joinRequest{id: in.JoinRequestID, status: domain.JoinUnconfirmed, window: in.DecisionWindow}
	if err := jr.handleUpdates(ctx); err != nil {
		return JoinRequestOutcome{}, err
	}
	if err := workflow.ExecuteLocalActivity(withRecordOptions(ctx), ActivityRecordJoinStarted, jr.id).Get(ctx, nil); err != nil {
		return JoinRequestOutcome{}, err
	}

	var alreadyMember bool
	if err := workflow.ExecuteLocalActivity(withRecordOptions(ctx), ActivityCheckVisitorMember, jr.id).Get(ctx, &alreadyMember); err != nil {
		return JoinRequestOutcome{}, err
	}
	if alreadyMember {
		jr.email(ctx, JoinEmailAlreadyMember)
		_ = jr.changeStatus(ctx, domain.JoinActionCancel, domain.JoinCancelled, "already_member", nil)
		return jr.finish(ctx)
	}

	// Nothing reaches the member until the visitor proves the address is theirs.
	jr.emailInBackground(ctx, JoinEmailConfirm)
	if !jr.awaitUntil(ctx, in.ConfirmBy, domain.JoinUnconfirmed) {
		jr.expire(ctx)
		return jr.finish(ctx)
	}
	if jr.status != domain.JoinPending {
		return jr.finish(ctx)
	}

	jr.emailInBackground(ctx, JoinEmailToMember)
	if !jr.awaitUntil(ctx, jr.decideBy.Add(-jr.window/2), domain.JoinPending) {
		jr.emailInBackground(ctx, JoinEmailReminder)
		if !jr.awaitUntil(ctx, jr.decideBy, domain.JoinPending) {
			jr.expire(ctx)
			return jr.finish(ctx)
		}
	}

	switch jr.status {
	case domain.JoinApproved:
		jr.welcome(ctx)
	case domain.JoinRejected:
		if in.TellVisitorOnReject {
			jr.email(ctx, JoinEmailRejected)
		}
	}
	return jr.finish(ctx)
}

type joinRequest struct {
	id       string
	status   domain.JoinStatus
	window   time.Duration
	decideBy time.Time

	approving bool
	approval  JoinApproval
	sequence  int
	stopEmail []workflow.CancelFunc
}

// awaitUntil waits while the request stays in status until deadline, and reports whether
// it moved on in time. A decision under way at the deadline is allowed to finish.
func (jr *joinRequest) awaitUntil(ctx workflow.Context, deadline time.Time, status domain.JoinStatus) bool {
	moved := func() bool { return jr.status != status }
	if remaining := deadline.Sub(workflow.Now(ctx)); remaining > 0 {
		if ok, _ := workflow.AwaitWithTimeout(ctx, remaining, moved); ok {
			return true
		}
	}
	_ = workflow.Await(ctx, func() bool { return !jr.approving })
	return moved()
}

func (jr *joinRequest) expire(ctx workflow.Context) {
	_ = jr.changeStatus(ctx, domain.JoinActionExpire, domain.JoinExpired, "", nil)
}

// welcome tells an approved visitor: a new account gets a link to set its password, an
// existing one is told to log in.
func (jr *joinRequest) welcome(ctx workflow.Context) {
	if jr.approval.ExistingUser {
		jr.email(ctx, JoinEmailAlreadyMember)
		return
	}
	req := JoinApprovedEmailRequest{JoinRequestID: jr.id, UserID: jr.approval.UserID, DeliveryKey: jr.newKey(ctx, "approved")}
	_ = workflow.ExecuteActivity(withDeliveryOptions(ctx), ActivitySendJoinApprovedEmail, req).Get(ctx, nil)
}

func (jr *joinRequest) finish(ctx workflow.Context) (JoinRequestOutcome, error) {
	for _, stop := range jr.stopEmail {
		stop()
	}
	_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
	return JoinRequestOutcome{Status: jr.status, UserID: jr.approval.UserID}, nil
}

func (jr *joinRequest) handleUpdates(ctx workflow.Context) error {
	handlers := []struct {
		name      string
		handler   any
		validator any
	}{
		{UpdateConfirm, jr.confirm, func(ctx workflow.Context) error { return jr.allow(domain.JoinActionConfirm) }},
		{UpdateApprove, jr.approve, jr.validateApprove},
		{UpdateReject, jr.reject, func(ctx workflow.Context) error { return jr.allow(domain.JoinActionReject) }},
		{UpdateCancel, jr.cancel, func(ctx workflow.Context) error { return jr.allow(domain.JoinActionCancel) }},
	}
	for _, h := range handlers {
		if err := workflow.SetUpdateHandlerWithOptions(ctx, h.name, h.handler, workflow.UpdateHandlerOptions{Validator: h.validator}); err != nil {
			return err
		}
	}
	return nil
}

// allow refuses an action the status forbids. While an approve is under way the request is
// as good as approved.
func (jr *joinRequest) allow(action domain.JoinAction) error {
	status := jr.status
	if jr.approving {
		status = domain.JoinApproved
	}
	if err := domain.CheckJoinAction(status, action); err != nil {
		var de *domain.Error
		if errors.As(err, &de) {
			return ClientError(de)
		}
		return err
	}
	return nil
}

func (jr *joinRequest) confirm(ctx workflow.Context) error {
	if err := jr.allow(domain.JoinActionConfirm); err != nil {
		return err
	}
	decideBy := workflow.Now(ctx).Add(jr.window)
	if err := jr.changeStatus(ctx, domain.JoinActionConfirm, domain.JoinPending, "", &decideBy); err != nil {
		return err
	}
	jr.decideBy = decideBy
	return nil
}

func (jr *joinRequest) validateApprove(ctx workflow.Context, req ApproveRequest) error {
	if req.Role != "" && !slices.Contains(domain.JoinRoles, req.Role) {
		return ClientError(domain.Errorf(domain.CodeInvalidRequest, "role must be one of %v", domain.JoinRoles).WithDetail("field", "role"))
	}
	return jr.allow(domain.JoinActionApprove)
}

func (jr *joinRequest) approve(ctx workflow.Context, req ApproveRequest) (JoinApproval, error) {
	if err := jr.validateApprove(ctx, req); err != nil {
		return JoinApproval{}, err
	}
	role := req.Role
	if role == "" {
		role = domain.DefaultRole
	}
	jr.approving = true
	defer func() { jr.approving = false }()
	var out JoinApproval
	args := ApproveActivityRequest{JoinRequestID: jr.id, Role: role, EventKey: jr.newKey(ctx, "approve")}
	if err := workflow.ExecuteActivity(withAcceptOptions(ctx), ActivityApproveJoinRequest, args).Get(ctx, &out); err != nil {
		return JoinApproval{}, err
	}
	jr.approval = out
	jr.status = domain.JoinApproved
	showStatus(ctx, KindJoinRequest, string(jr.status), time.Time{})
	return out, nil
}

func (jr *joinRequest) reject(ctx workflow.Context) error {
	if err := jr.allow(domain.JoinActionReject); err != nil {
		return err
	}
	return jr.changeStatus(ctx, domain.JoinActionReject, domain.JoinRejected, "", nil)
}

func (jr *joinRequest) cancel(ctx workflow.Context) error {
	if err := jr.allow(domain.JoinActionCancel); err != nil {
		return err
	}
	return jr.changeStatus(ctx, domain.JoinActionCancel, domain.JoinCancelled, "", nil)
}

// email sends one of the request's e-mails and waits for it.
func (jr *joinRequest) email(ctx workflow.Context, which string) {
	req := JoinEmailArgs{JoinRequestID: jr.id, DeliveryKey: jr.newKey(ctx, which), Email: which}
	_ = workflow.ExecuteActivity(withDeliveryOptions(ctx), ActivitySendJoinEmail, req).Get(ctx, nil)
}

// emailInBackground sends an e-mail while the workflow goes on waiting; the request closing
// cancels it.
func (jr *joinRequest) emailInBackground(ctx workflow.Context, which string) {
	emailCtx, cancel := workflow.WithCancel(ctx)
	jr.stopEmail = append(jr.stopEmail, cancel)
	key := jr.newKey(ctx, which)
	workflow.Go(emailCtx, func(ctx workflow.Context) {
		req := JoinEmailArgs{JoinRequestID: jr.id, DeliveryKey: key, Email: which}
		_ = workflow.ExecuteActivity(withDeliveryOptions(ctx), ActivitySendJoinEmail, req).Get(ctx, nil)
	})
}

func (jr *joinRequest) changeStatus(ctx workflow.Context, action domain.JoinAction, to domain.JoinStatus, reason string, decideBy *time.Time) error {
	change := JoinStatusChange{
		EventKey: jr.newKey(ctx, string(action)), JoinRequestID: jr.id, Action: action,
		From: jr.status, To: to, Reason: reason, DecideBy: decideBy,
	}
	if err := workflow.ExecuteLocalActivity(withRecordOptions(ctx), ActivityRecordJoinStatus, change).Get(ctx, nil); err != nil {
		return err
	}
	jr.status = to
	var expiresAt time.Time
	if decideBy != nil {
		expiresAt = *decideBy
	}
	showStatus(ctx, KindJoinRequest, string(to), expiresAt)
	return nil
}

func (jr *joinRequest) newKey(ctx workflow.Context, what string) string {
	jr.sequence++
	return fmt.Sprintf("%s/%d/%s", workflow.GetInfo(ctx).WorkflowExecution.RunID, jr.sequence, what)
}
