package store

import (
	"context"
	"errors"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/usherhq/usher/internal/domain"
)

// Delivery is one logical e-mail, keyed by the workflow that asked for it.
type Delivery struct {
	Key          string                `db:"delivery_key"`
	Kind         string                `db:"kind"`
	InvitationID *string               `db:"invitation_id"`
	UserID       *string               `db:"user_id"`
	Status       domain.DeliveryStatus `db:"status"`
	Attempts     int                   `db:"attempts"`
	ProviderID   *string               `db:"provider_id"`
	LastError    *string               `db:"last_error"`
	CreatedAt    time.Time             `db:"created_at"`
}

// ErrSuperseded means the delivery is no longer wanted: a later resend, a revoke or an
// accept overtook it.
var ErrSuperseded = errors.New("delivery superseded")

// GetDelivery returns the delivery with key, or found=false.
func (s *Store) GetDelivery(ctx context.Context, key string) (d Delivery, found bool, err error) {
	err = s.db.GetContext(ctx, &d, `SELECT delivery_key, kind, invitation_id, user_id, status, attempts, provider_id, last_error, created_at
		FROM email_deliveries WHERE delivery_key = ?`, key)
	if isNotFound(err) {
		return d, false, nil
	}
	return d, err == nil, err
}

func beginDelivery(ctx context.Context, tx *sqlx.Tx, key, kind string, invitationID, userID *string, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO email_deliveries (delivery_key, kind, invitation_id, user_id, status, attempts, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, 1, ?, ?)
		ON DUPLICATE KEY UPDATE status = VALUES(status), attempts = attempts + 1, updated_at = VALUES(updated_at)`,
		key, kind, invitationID, userID, domain.DeliverySending, now, now)
	return err
}

// BeginInvitationDelivery records, before the provider is called, that the invitation
// e-mail with key is being sent with a link whose token hashes to tokenHash. Only the newest
// token of an invitation works. It returns what the e-mail must say.
func (s *Store) BeginInvitationDelivery(ctx context.Context, key, invitationID string, tokenHash []byte) (InvitationContext, error) {
	return s.BeginInvitationLinkDelivery(ctx, key, DeliveryKindInvitation, invitationID, tokenHash)
}

// BeginInvitationLinkDelivery is BeginInvitationDelivery for a message of another kind
// that carries the invitation's link (a reminder).
func (s *Store) BeginInvitationLinkDelivery(ctx context.Context, key, kind, invitationID string, tokenHash []byte) (InvitationContext, error) {
	now := s.timestamp()
	var ic InvitationContext
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		ic, err = s.invitationContext(ctx, tx, invitationID, true)
		if err != nil {
			return err
		}
		inv := ic.Invitation
		if inv.Status != domain.StatusPending || inv.CurrentDeliveryKey == nil || *inv.CurrentDeliveryKey != key {
			return ErrSuperseded
		}
		if _, err := tx.ExecContext(ctx, `UPDATE invitation_tokens SET invalidated_at = ? WHERE invitation_id = ? AND invalidated_at IS NULL`,
			now, invitationID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO invitation_tokens (token_hash, invitation_id, delivery_key, created_at) VALUES (?, ?, ?, ?)`,
			tokenHash, invitationID, key, now); err != nil {
			return err
		}
		if err := beginDelivery(ctx, tx, key, kind, &invitationID, nil, now); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE invitations SET delivery_status = ?, delivery_attempts = delivery_attempts + 1, updated_at = ? WHERE id = ?`,
			domain.DeliverySending, now, invitationID)
		return err
	})
	return ic, err
}

// BeginPasswordDelivery records the set-password e-mail with key for user, and its token.
func (s *Store) BeginPasswordDelivery(ctx context.Context, key, userID string, invitationID *string, tokenHash []byte) (User, error) {
	now := s.timestamp()
	var user User
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		if err := tx.GetContext(ctx, &user, `SELECT id, email, name, password_hash, created_at, updated_at FROM users WHERE id = ?`, userID); err != nil {
			return err
		}
		// Only the newest link of this e-mail works.
		if _, err := tx.ExecContext(ctx, `UPDATE password_tokens SET expires_at = ? WHERE delivery_key = ? AND used_at IS NULL AND expires_at > ?`,
			now, key, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO password_tokens (token_hash, user_id, delivery_key, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
			tokenHash, userID, key, now, now.Add(PasswordExpiry)); err != nil {
			return err
		}
		return beginDelivery(ctx, tx, key, "set_password", invitationID, &userID, now)
	})
	return user, err
}

// BeginPlainDelivery records an e-mail without a link.
func (s *Store) BeginPlainDelivery(ctx context.Context, key, kind string, invitationID, userID *string) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		return beginDelivery(ctx, tx, key, kind, invitationID, userID, s.timestamp())
	})
}

// FinishDelivery records the provider's acceptance of the e-mail.
func (s *Store) FinishDelivery(ctx context.Context, key, providerID string) error {
	now := s.timestamp()
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE email_deliveries SET status = ?, provider_id = ?, last_error = NULL, updated_at = ? WHERE delivery_key = ?`,
			domain.DeliverySent, providerID, now, key); err != nil {
			return err
		}
		// Found by primary key through the delivery: a match on current_delivery_key alone
		// would scan (and lock) the whole table. A "delivered" webhook may have come first.
		_, err := tx.ExecContext(ctx, `UPDATE invitations i JOIN email_deliveries d ON d.invitation_id = i.id
			SET i.delivery_status = IF(d.outcome <=> ?, ?, ?), i.delivery_last_error = NULL, i.updated_at = ?
			WHERE d.delivery_key = ? AND i.current_delivery_key = d.delivery_key AND i.status = ? AND i.delivery_status <> ?`,
			domain.OutcomeDelivered, domain.DeliveryDelivered, domain.DeliverySent, now, key, domain.StatusPending, domain.DeliveryFailed)
		if err != nil {
			return err
		}
		return recordSentEvent(ctx, tx, key, now)
	})
}

// RecordDeliveryError notes a failed attempt. permanent marks the delivery failed; otherwise
// it stays "sending", since the provider may have accepted the message after all.
func (s *Store) RecordDeliveryError(ctx context.Context, key, reason string, permanent bool) error {
	now := s.timestamp()
	reason = truncate(reason, 500)
	status := domain.DeliverySending
	if permanent {
		status = domain.DeliveryFailed
	}
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE email_deliveries SET status = ?, last_error = ?, updated_at = ? WHERE delivery_key = ?`,
			status, reason, now, key); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE invitations i JOIN email_deliveries d ON d.invitation_id = i.id
			SET i.delivery_status = ?, i.delivery_last_error = ?, i.updated_at = ?
			WHERE d.delivery_key = ? AND i.current_delivery_key = d.delivery_key`, status, reason, now, key)
		return err
	})
}

// SetPasswordWithToken consumes a set-password token. Unknown, used and expired tokens are
// all invalid_token: the page can only say "ask for a new link".
func (s *Store) SetPasswordWithToken(ctx context.Context, tokenHash, passwordHash []byte) (userID string, err error) {
	now := s.timestamp()
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		var tok struct {
			UserID    string     `db:"user_id"`
			ExpiresAt time.Time  `db:"expires_at"`
			UsedAt    *time.Time `db:"used_at"`
		}
		err := tx.GetContext(ctx, &tok, `SELECT user_id, expires_at, used_at FROM password_tokens WHERE token_hash = ? FOR UPDATE`, tokenHash)
		if isNotFound(err) || (err == nil && (tok.UsedAt != nil || !now.Before(tok.ExpiresAt))) {
			return domain.Errorf(domain.CodeInvalidToken, "this link is not valid any more; ask for a new one")
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE password_tokens SET used_at = ? WHERE token_hash = ?`, now, tokenHash); err != nil {
			return err
		}
		// Every other outstanding link of the account stops working too.
		if _, err := tx.ExecContext(ctx, `UPDATE password_tokens SET expires_at = ? WHERE user_id = ? AND used_at IS NULL AND expires_at > ?`,
			now, tok.UserID, now); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?`, passwordHash, now, tok.UserID)
		userID = tok.UserID
		return err
	})
	return userID, err
}

// PasswordTokenUser returns the account a set-password token is for, if the token is still
// usable; it changes nothing.
func (s *Store) PasswordTokenUser(ctx context.Context, tokenHash []byte) (User, error) {
	var user User
	err := s.db.GetContext(ctx, &user, `SELECT u.id, u.email, u.name, u.password_hash, u.created_at, u.updated_at, u.locale
		FROM password_tokens t JOIN users u ON u.id = t.user_id
		WHERE t.token_hash = ? AND t.used_at IS NULL AND t.expires_at > ?`, tokenHash, s.timestamp())
	if isNotFound(err) {
		return user, domain.Errorf(domain.CodeInvalidToken, "this link is not valid any more; ask for a new one")
	}
	return user, err
}
