package store

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/usherhq/usher/internal/domain"
)

// MailgunEvent is one event Mailgun reported, by webhook, about a message it accepted.
type MailgunEvent struct {
	// Token is the signed request's token; a token seen before is a replay.
	Token string
	// EventID is Mailgun's ID of the event; an event seen and handled before changes nothing.
	EventID string
	// Event is Mailgun's name of the event (delivered, failed, complained, …), for the record.
	Event string
	// DeliveryKey is the usher_delivery_id user variable of the message; "" if it had none.
	DeliveryKey string
	// Outcome is what the event means for the delivery; "" when nothing (opened, clicked…).
	Outcome domain.DeliveryOutcome
	// Reason is the provider's explanation of a failure, without addresses.
	Reason string
	// At is when the event happened, by Mailgun's clock.
	At time.Time
}

// MailgunEventResult says what RecordMailgunEvent found.
type MailgunEventResult struct {
	// Duplicate: the event was handled before and nothing was changed.
	Duplicate bool
	// Found: Usher sent the message the event is about; Delivery is it.
	Found    bool
	Delivery Delivery
}

// InvitationLink reports whether the delivery carried an invitation's link (the invitation
// itself or a reminder): the ones its workflow cares about.
func (d Delivery) InvitationLink() bool {
	return d.InvitationID != nil && (d.Kind == DeliveryKindInvitation || d.Kind == DeliveryKindInvitationReminder)
}

// Kinds of email_deliveries rows that carry an invitation's link.
const (
	DeliveryKindInvitation         = "invitation"
	DeliveryKindInvitationReminder = "invitation_reminder"
)

// errReplayedSignature refuses a webhook request whose token was already used.
var errReplayedSignature = domain.Errorf(domain.CodeWebhookSignatureReplayed, "this webhook request was already received")

// RecordMailgunEvent records, in one transaction, the request's token (refusing a replayed
// one with replayed_signature), the event (a duplicate of a handled one changes nothing),
// and what it means for the delivery and its invitation: "delivered" makes the invitation's
// delivery status delivered, a permanent failure makes it failed (the invitation itself is
// failed by its workflow). An outcome never overwrites a complaint, and a temporary failure
// never overwrites a final outcome. Call MarkMailgunEventHandled once the event was acted
// on, or ForgetMailgunToken if acting on it failed and the sender should try again.
func (s *Store) RecordMailgunEvent(ctx context.Context, e MailgunEvent) (MailgunEventResult, error) {
	now := s.timestamp()
	var out MailgunEventResult
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		out = MailgunEventResult{}
		if e.Token != "" {
			_, err := tx.ExecContext(ctx, `INSERT INTO mailgun_webhook_tokens (token, received_at) VALUES (?, ?)`, e.Token, now)
			if isDuplicate(err) {
				return errReplayedSignature
			}
			if err != nil {
				return err
			}
		}
		var key *string
		if e.DeliveryKey != "" {
			key = &e.DeliveryKey
		}
		res, err := tx.ExecContext(ctx, `INSERT IGNORE INTO mailgun_events (event_id, event, delivery_key, received_at) VALUES (?, ?, ?, ?)`,
			e.EventID, truncate(e.Event, 32), key, now)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			var handledAt *time.Time
			if err := tx.GetContext(ctx, &handledAt, `SELECT handled_at FROM mailgun_events WHERE event_id = ? FOR UPDATE`, e.EventID); err != nil {
				return err
			}
			if handledAt != nil {
				out.Duplicate = true
				return nil
			}
		}
		if e.DeliveryKey == "" {
			return nil
		}
		err = tx.GetContext(ctx, &out.Delivery, `SELECT delivery_key, kind, invitation_id, user_id, status, attempts, provider_id, last_error, created_at
			FROM email_deliveries WHERE delivery_key = ? FOR UPDATE`, e.DeliveryKey)
		if isNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		out.Found = true
		if e.Outcome == "" {
			return nil
		}
		var reason *string
		if e.Reason != "" {
			r := truncate(e.Reason, 500)
			reason = &r
		}
		at := e.At.UTC()
		if at.IsZero() {
			at = now
		}
		if _, err := tx.ExecContext(ctx, `UPDATE email_deliveries SET outcome = ?, outcome_reason = ?, outcome_at = ?, updated_at = ?
			WHERE delivery_key = ? AND (outcome IS NULL OR outcome = ? OR ? = ?)`,
			e.Outcome, reason, at, now, e.DeliveryKey, domain.OutcomeDeferred, e.Outcome, domain.OutcomeComplained); err != nil {
			return err
		}
		if !out.Delivery.InvitationLink() {
			return nil
		}
		switch e.Outcome {
		case domain.OutcomeDelivered:
			if _, err := tx.ExecContext(ctx, `UPDATE invitations SET delivery_status = ?, delivery_last_error = NULL, updated_at = ?
				WHERE id = ? AND current_delivery_key = ? AND delivery_status IN (?, ?, ?)`,
				domain.DeliveryDelivered, now, *out.Delivery.InvitationID, e.DeliveryKey,
				domain.DeliveryQueued, domain.DeliverySending, domain.DeliverySent); err != nil {
				return err
			}
			err = recordDeliveredEvent(ctx, tx, out.Delivery, at)
		case domain.OutcomeFailed:
			_, err = tx.ExecContext(ctx, `UPDATE invitations SET delivery_status = ?, delivery_last_error = ?, updated_at = ?
				WHERE id = ? AND current_delivery_key = ? AND status = ?`,
				domain.DeliveryFailed, reason, now, *out.Delivery.InvitationID, e.DeliveryKey, domain.StatusPending)
		}
		return err
	})
	return out, err
}

// MarkMailgunEventHandled records that the event was acted on: seen again, it changes nothing.
func (s *Store) MarkMailgunEventHandled(ctx context.Context, eventID string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE mailgun_events SET handled_at = ? WHERE event_id = ? AND handled_at IS NULL`, s.timestamp(), eventID)
	return err
}

// ForgetMailgunToken un-records a request's token, so that the sender may retry the same
// signed request after Usher failed to act on it.
func (s *Store) ForgetMailgunToken(ctx context.Context, token string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM mailgun_webhook_tokens WHERE token = ?`, token)
	return err
}

// PruneMailgunRecords deletes, a bounded number at a time, tokens received before
// tokensBefore and events received before eventsBefore.
func (s *Store) PruneMailgunRecords(ctx context.Context, tokensBefore, eventsBefore time.Time) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM mailgun_webhook_tokens WHERE received_at < ? LIMIT 1000`, tokensBefore.UTC()); err != nil {
		return err
	}
	_, err := s.db.ExecContext(ctx, `DELETE FROM mailgun_events WHERE received_at < ? LIMIT 1000`, eventsBefore.UTC())
	return err
}

// DeliveryOutcome returns what the provider reported about the delivery with key, if anything.
func (s *Store) DeliveryOutcome(ctx context.Context, key string) (outcome domain.DeliveryOutcome, reason string, err error) {
	var row struct {
		Outcome *string `db:"outcome"`
		Reason  *string `db:"outcome_reason"`
	}
	err = s.db.GetContext(ctx, &row, `SELECT outcome, outcome_reason FROM email_deliveries WHERE delivery_key = ?`, key)
	if isNotFound(err) {
		return "", "", nil
	}
	if err != nil {
		return "", "", err
	}
	if row.Outcome != nil {
		outcome = domain.DeliveryOutcome(*row.Outcome)
	}
	if row.Reason != nil {
		reason = *row.Reason
	}
	return outcome, reason, nil
}

// recordDeliveredEvent records invitation.delivered (events.go) for a message carrying an
// invitation's link, once per message.
func recordDeliveredEvent(ctx context.Context, tx *sqlx.Tx, d Delivery, at time.Time) error {
	var organizationID string
	if err := tx.GetContext(ctx, &organizationID, `SELECT organization_id FROM invitations WHERE id = ?`, *d.InvitationID); err != nil {
		return err
	}
	return recordEvent(ctx, tx, "delivered/"+d.Key, Event{
		Type: EventInvitationDelivered, OrganizationID: organizationID, SubjectID: *d.InvitationID, OccurredAt: at,
		Data: eventData(map[string]any{"invitation_id": *d.InvitationID, "delivery_key": d.Key, "delivered_at": at,
			"reminder": d.Kind != DeliveryKindInvitation}),
	})
}
