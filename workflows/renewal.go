package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"
)

// ActivityNotifyRenewalRequested tells an inviter their invitee asks for a new invitation.
const ActivityNotifyRenewalRequested = "NotifyInviterOfRenewalRequest"

// RenewalRequestWorkflowID allows one request for a new invitation per invitation and day,
// so that a button pressed again and again sends the inviter one e-mail.
func RenewalRequestWorkflowID(invitationID string, now time.Time) string {
	return "renewal-request/" + invitationID + "/" + now.UTC().Format(time.DateOnly)
}

// RenewalRequestWorkflow e-mails the inviter of an expired or revoked invitation that the
// invitee would like a new one.
func RenewalRequestWorkflow(ctx workflow.Context, invitationID string) error {
	req := DeliveryRequest{InvitationID: invitationID, DeliveryKey: workflow.GetInfo(ctx).WorkflowExecution.RunID + "/renewal"}
	return workflow.ExecuteActivity(withDeliveryOptions(ctx), ActivityNotifyRenewalRequested, req).Get(ctx, nil)
}
