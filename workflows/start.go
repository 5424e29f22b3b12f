package workflows

import (
	"context"
	"errors"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
)

// StartInvitation starts the workflow of a newly stored invitation. Starting one that is
// already running or has already run is a no-op, so the API and the reconciler can both
// call it without coordinating.
func StartInvitation(ctx context.Context, c client.Client, in InvitationInput) error {
	_, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       InvitationWorkflowID(in.InvitationID),
		TaskQueue:                TaskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
	}, InvitationWorkflow, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return nil
	}
	return err
}

// ReopenOptions starts a new run of an expired invitation, for an update-with-start whose
// update (renew) reopens it. A run still going is used as it is.
func ReopenOptions(invitationID string) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:                       InvitationWorkflowID(invitationID),
		TaskQueue:                TaskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
	}
}

// StartJoinRequest starts the workflow of a newly stored join request; starting one that
// already exists is a no-op.
func StartJoinRequest(ctx context.Context, c client.Client, in JoinRequestInput) error {
	_, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       JoinRequestWorkflowID(in.JoinRequestID),
		TaskQueue:                TaskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
	}, JoinRequestWorkflow, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return nil
	}
	return err
}

// StartRenewalRequest asks the inviter of an invitation for a new one, at most once a day.
func StartRenewalRequest(ctx context.Context, c client.Client, invitationID string, now time.Time) error {
	_, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                    RenewalRequestWorkflowID(invitationID, now),
		TaskQueue:             TaskQueue,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
	}, RenewalRequestWorkflow, invitationID)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return nil
	}
	return err
}

// StartBatch starts the workflow of a stored batch; starting one that exists is a no-op.
func StartBatch(ctx context.Context, c client.Client, batchID string, total int) error {
	_, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       BatchWorkflowID(batchID),
		TaskQueue:                TaskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
	}, BatchWorkflow, BatchInput{BatchID: batchID, Total: total})
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return nil
	}
	return err
}
