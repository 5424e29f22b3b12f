// Package workflows holds Usher's Temporal workflows. Everything here is deterministic:
// time comes from workflow.Now, waiting from timers and conditions, and all I/O from
// activities.
package workflows

import "strings"

// TaskQueue is where Usher's workflows and activities run.
const TaskQueue = "usher"

// DeliveryTaskQueue is where the activities that call mail and SMS providers run, so that
// one rate limit (sends per second, set on its workers) holds across every workflow.
const DeliveryTaskQueue = "usher-delivery"

// Updates an invitation workflow accepts.
const (
	UpdateSend   = "send"
	UpdateResend = "resend"
	UpdateRenew  = "renew"
	UpdateRevoke = "revoke"
	UpdateAccept = "accept"
)

// Activity names, stable across refactors because histories record them.
const (
	ActivityRecordWorkflowStarted = "RecordWorkflowStarted"
	ActivityRecordStatus          = "RecordStatus"
	ActivitySendInvitation        = "SendInvitationEmail"
	ActivityAcceptInvitation      = "AcceptInvitation"
	ActivitySendSetPassword       = "SendSetPasswordEmail"
	ActivityNotifyInviter         = "NotifyInviterOfAcceptance"
)

// Delivery tracking and reminders (workflows/reminders.go).
const (
	// SignalDeliveryEvent carries what the mail provider reported about an invitation's
	// e-mail (a DeliveryEvent), forwarded by the API from the provider's webhook.
	SignalDeliveryEvent = "delivery-event"

	ActivityInvitationSettings     = "InvitationSettings"
	ActivitySendInvitationReminder = "SendInvitationReminder"
	ActivityNotifyInviterOfFailure = "NotifyInviterOfFailure"
	ActivityNotifyInviterOfExpiry  = "NotifyInviterOfExpiry"
)

// Application error types that cross from activities to workflows and on to the API.
const (
	// ErrDeliveryRefused: the provider refused the e-mail for good.
	ErrDeliveryRefused = "DeliveryRefused"
	// ErrDeliverySuperseded: a later decision made the e-mail unwanted.
	ErrDeliverySuperseded = "DeliverySuperseded"
	// ErrRateLimited: the provider asked us to slow down.
	ErrRateLimited = "RateLimited"
)

const invitationWorkflowIDPrefix = "invitation/"

// InvitationWorkflowID is the workflow ID of an invitation. It carries the invitation's ID
// and nothing personal, since workflow IDs are shown in the Temporal UI.
func InvitationWorkflowID(invitationID string) string {
	return invitationWorkflowIDPrefix + invitationID
}

// InvitationIDFromWorkflowID is the inverse of InvitationWorkflowID.
func InvitationIDFromWorkflowID(workflowID string) (string, bool) {
	return strings.CutPrefix(workflowID, invitationWorkflowIDPrefix)
}
