package workflows

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/usherhq/usher/internal/domain"
	"github.com/usherhq/usher/internal/store"
)

// StartInvitation starts the workflow of a newly stored invitation. Starting one that is
// already running or has already run is a no-op, so the API and the reconciler can both
// call it without coordinating.
func StartInvitation(ctx context.Context, c client.Client, in InvitationInput) error {
	opts := invitationStartOptions(in)
	opts.WorkflowIDReusePolicy = enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE
	_, err := c.ExecuteWorkflow(ctx, opts, InvitationWorkflow, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return nil
	}
	return err
}

// InvitationInputOf is the input that starts the workflow of a stored invitation.
func InvitationInputOf(inv store.Invitation) InvitationInput {
	in := InvitationInput{
		InvitationID: inv.ID, Status: inv.Status, ExpiresIn: inv.ExpiresIn(),
		OrganizationID: inv.OrganizationID, Role: inv.Role, Channel: inv.Channel,
	}
	if inv.ExpiresAt != nil {
		in.ExpiresAt = *inv.ExpiresAt
	}
	if inv.InviterID != nil {
		in.InviterID = *inv.InviterID
	}
	if inv.BatchID != nil {
		in.BatchID = *inv.BatchID
	}
	return in
}

// ReopenOptions starts a new run of an expired invitation (in.Status expired), for an
// update-with-start whose update (renew) reopens it. A run still going is used as it is.
func ReopenOptions(in InvitationInput) client.StartWorkflowOptions {
	opts := invitationStartOptions(in)
	opts.WorkflowIDReusePolicy = enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE
	return opts
}

// invitationStartOptions describe an invitation's workflow to whoever looks at it in the
// Temporal UI: what it is, for which organization, who sent it and when it expires, by ID.
func invitationStartOptions(in InvitationInput) client.StartWorkflowOptions {
	memo := map[string]any{"organization_id": in.OrganizationID, "role": in.Role, "channel": in.Channel}
	if in.InviterID != "" {
		memo["inviter_id"] = in.InviterID
	}
	if in.BatchID != "" {
		memo["batch_id"] = in.BatchID
	}
	summary := fmt.Sprintf("Invitation to organization %s as %s, by %s", in.OrganizationID, in.Role, in.Channel)
	return client.StartWorkflowOptions{
		ID:                       InvitationWorkflowID(in.InvitationID),
		TaskQueue:                TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		TypedSearchAttributes:    searchAttributes(KindInvitation, string(in.Status), in.OrganizationID, in.ExpiresAt),
		Memo:                     memo,
		StaticSummary:            summary,
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
		TypedSearchAttributes:    searchAttributes(KindJoinRequest, string(domain.JoinUnconfirmed), in.OrganizationID, in.ConfirmBy),
		Memo:                     map[string]any{"organization_id": in.OrganizationID, "member_id": in.MemberID},
		StaticSummary:            fmt.Sprintf("Join request to organization %s through member %s", in.OrganizationID, in.MemberID),
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
		StaticSummary:         "Ask the inviter of invitation " + invitationID + " for a new one",
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
		TypedSearchAttributes:    searchAttributes(KindBatch, BatchRunning, "", time.Time{}),
		Memo:                     map[string]any{"total": total},
		StaticSummary:            fmt.Sprintf("Bulk invitation of %d people", total),
	}, BatchWorkflow, BatchInput{BatchID: batchID, Total: total})
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return nil
	}
	return err
}
