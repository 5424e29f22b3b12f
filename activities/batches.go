package activities

import (
	"context"
	"errors"
	"time"

	"github.com/usherhq/usher/internal/domain"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/workflows"
)

const alreadyMember = "already a member of the organization"

// FinishBatch marks a batch as through with everyone.
func (a *Activities) FinishBatch(ctx context.Context, batchID string) error {
	return a.Store.FinishBatch(ctx, batchID)
}

// InviteBatchItems invites the people From..To-1 of a batch: a new invitation for someone
// with no open one, a resend for someone already invited. Each person is recorded as done
// as soon as their invitation stands; a retry skips them. Creating is idempotent per batch
// item and a resend carries a key the invitation's workflow remembers, so a crash between
// acting and recording sends nothing twice.
func (a *Activities) InviteBatchItems(ctx context.Context, r workflows.InviteBatchItemsRequest) error {
	batch, err := a.Store.GetBatch(ctx, r.BatchID)
	if err != nil {
		return forWorkflow(err)
	}
	items, err := a.Store.BatchItems(ctx, r.BatchID, r.From, r.To)
	if err != nil {
		return err
	}
	for _, item := range items {
		if item.State != store.ItemPending {
			continue
		}
		invitationID, reason, err := a.inviteOne(ctx, batch, item)
		if err != nil {
			return err
		}
		if err := a.Store.FinishBatchItem(ctx, r.BatchID, item.Seq, invitationID, reason); err != nil {
			return err
		}
		if reason == alreadyMember {
			// Not a failure of theirs: the file keeps showing them as they are.
			continue
		}
		if err := a.Store.RecordInvitationAttempt(ctx, item.OrganizationID, item.UserID, invitationID, reason); err != nil {
			return err
		}
	}
	return nil
}

// inviteOne returns the invitation that now stands for the item, or why there is none.
// An error means "try again later".
func (a *Activities) inviteOne(ctx context.Context, batch store.Batch, item store.BatchItem) (*string, string, error) {
	person, err := a.Store.GetPerson(ctx, item.OrganizationID, item.UserID)
	if err != nil {
		return nil, "", err
	}
	if batch.Channel == store.ChannelSMS && person.Phone == nil {
		return nil, "no phone number on file", nil
	}
	locale := domain.DefaultLocale
	if person.Locale != nil {
		locale = *person.Locale
	}
	batchID := batch.ID
	in := store.NewInvitation{
		OrganizationID: item.OrganizationID, Email: person.Email, Name: person.Name, Role: person.Role, Locale: locale,
		ExpiresIn: time.Duration(batch.ExpiresInSeconds) * time.Second, Channel: batch.Channel, Phone: person.Phone, BatchID: &batchID,
	}
	// Scoped to the batch, like an API key scopes a client's keys.
	key := &store.IdempotencyKey{APIKeyID: batch.ID, Key: item.UserID + "/" + item.OrganizationID, Request: []byte(batch.ID)}
	inv, _, err := a.Store.CreateInvitation(ctx, in, key)
	var de *domain.Error
	switch {
	case err == nil:
		if err := workflows.StartInvitation(ctx, a.Temporal, workflows.InvitationInputOf(inv)); err != nil {
			return nil, "", err
		}
		return &inv.ID, "", nil
	case errors.As(err, &de) && de.Code == domain.CodeInvitationPending:
		open, _ := de.Details["invitation_id"].(string)
		return a.resendOpen(ctx, open, batch.ID+"/"+item.UserID, batch.Channel, person.Phone)
	case errors.As(err, &de) && de.Code == domain.CodeAlreadyMember:
		return nil, alreadyMember, nil
	case errors.As(err, &de):
		return nil, de.Message, nil
	default:
		return nil, "", err
	}
}

// resendOpen sends a fresh link for an invitation already open, on the batch's channel: a
// resend, or the first send of a draft.
func (a *Activities) resendOpen(ctx context.Context, invitationID, key, channel string, phone *string) (*string, string, error) {
	inv, err := a.Store.GetInvitation(ctx, invitationID)
	if err != nil {
		return nil, "", err
	}
	if inv.Channel != channel {
		if err := a.Store.SetInvitationChannel(ctx, invitationID, channel, phone); err != nil {
			return nil, "", err
		}
	}
	update, args := workflows.UpdateResend, []any{workflows.ResendRequest{Key: key}}
	if inv.Status == domain.StatusDraft {
		update, args = workflows.UpdateSend, nil
	}
	err = a.updateWorkflow(ctx, workflows.InvitationWorkflowID(invitationID), update, args...)
	if de, ok := workflows.DomainError(err); ok {
		return nil, de.Message, nil
	}
	if err != nil {
		return nil, "", err
	}
	return &invitationID, "", nil
}
