package store

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/usherhq/usher/internal/domain"
)

// StageCredentials keeps the password hash chosen on the accept form until the accept
// attempt it belongs to is carried out.
func (s *Store) StageCredentials(ctx context.Context, attemptID, invitationID string, passwordHash []byte) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO acceptance_credentials (attempt_id, invitation_id, password_hash, created_at)
		VALUES (?, ?, ?, ?)`, attemptID, invitationID, passwordHash, s.timestamp())
	return err
}

// DiscardCredentials forgets a staged password whose accept attempt was refused.
func (s *Store) DiscardCredentials(ctx context.Context, attemptID string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM acceptance_credentials WHERE attempt_id = ?`, attemptID)
	return err
}

// Acceptance is the outcome of accepting an invitation.
type Acceptance struct {
	UserID       string
	ExistingUser bool
	// PasswordSet is true when the account got the password staged with the attempt.
	PasswordSet bool
	// NeedsPassword is true for an account that existed without a password (a person put on
	// file before being invited) and still has none: it needs a set-password link.
	NeedsPassword bool
}

// AcceptRequest identifies one accept attempt.
type AcceptRequest struct {
	InvitationID string
	AttemptID    string
	Name         string
	EventKey     string
}

// AcceptInvitation makes the invitee a member in one transaction: it finds or creates the
// account by e-mail, adds the membership, marks the invitation accepted and retires its
// links. Run again after a crash, it returns the first outcome and changes nothing: the
// invitation row is locked first, and the unique keys on users.email and memberships stop
// a second account or membership even if that lock were bypassed.
func (s *Store) AcceptInvitation(ctx context.Context, r AcceptRequest) (Acceptance, error) {
	now := s.timestamp()
	var out Acceptance
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var inv Invitation
		if err := tx.GetContext(ctx, &inv, `SELECT `+invitationColumns+` FROM invitations WHERE id = ? FOR UPDATE`, r.InvitationID); err != nil {
			if isNotFound(err) {
				return domain.Errorf(domain.CodeInvitationNotFound, "no invitation with id %q", r.InvitationID)
			}
			return err
		}
		if inv.Status == domain.StatusAccepted && inv.UserID != nil {
			out = Acceptance{UserID: *inv.UserID, ExistingUser: inv.ExistingUser}
			var staged, needs int
			if err := tx.GetContext(ctx, &staged, `SELECT COUNT(*) FROM invitation_events WHERE event_key = ?`, r.EventKey+"/password"); err != nil {
				return err
			}
			err := tx.GetContext(ctx, &needs, `SELECT COUNT(*) FROM invitation_events WHERE event_key = ?`, r.EventKey+"/needs-password")
			out.PasswordSet, out.NeedsPassword = staged > 0, needs > 0
			return err
		}
		if err := domain.CheckAction(inv.Status, domain.ActionAccept); err != nil {
			return err
		}

		var passwordHash []byte
		err := tx.GetContext(ctx, &passwordHash, `SELECT password_hash FROM acceptance_credentials WHERE attempt_id = ? AND invitation_id = ?`,
			r.AttemptID, r.InvitationID)
		if err != nil && !isNotFound(err) {
			return err
		}

		var user User
		err = tx.GetContext(ctx, &user, `SELECT id, email, name, password_hash, created_at, updated_at FROM users WHERE email = ? FOR UPDATE`, inv.Email)
		switch {
		case err == nil:
			out.ExistingUser = true
			if len(user.PasswordHash) == 0 {
				// On file but never active: accepting activates the account.
				if len(passwordHash) > 0 {
					if _, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?`, passwordHash, now, user.ID); err != nil {
						return err
					}
					out.PasswordSet = true
				} else {
					out.NeedsPassword = true
				}
			}
		case isNotFound(err):
			name := r.Name
			if name == "" {
				name = inv.Name
			}
			locale := inv.Locale
			user = User{ID: NewID(), Email: inv.Email, Name: name, PasswordHash: passwordHash, CreatedAt: now, UpdatedAt: now, Locale: &locale}
			if _, err := tx.NamedExecContext(ctx, `INSERT INTO users (id, email, name, password_hash, locale, created_at, updated_at)
				VALUES (:id, :email, :name, :password_hash, :locale, :created_at, :updated_at)`, user); err != nil {
				// A concurrent transaction created the account first; retrying the whole
				// activity finds it and joins it instead.
				return err
			}
			out.PasswordSet = len(passwordHash) > 0
		default:
			return err
		}
		out.UserID = user.ID

		if err := addMembership(ctx, tx, user.ID, inv.OrganizationID, inv.Role, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE invitations SET status = ?, user_id = ?, existing_user = ?, accepted_at = ?, updated_at = ?
			WHERE id = ?`, domain.StatusAccepted, user.ID, out.ExistingUser, now, now, inv.ID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE invitation_tokens SET invalidated_at = ? WHERE invitation_id = ? AND invalidated_at IS NULL`, now, inv.ID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM acceptance_credentials WHERE invitation_id = ?`, inv.ID); err != nil {
			return err
		}
		from := inv.Status
		if err := appendEvent(ctx, tx, r.EventKey, inv.ID, "accept", &from, domain.StatusAccepted, nil, now); err != nil {
			return err
		}
		if err := recordAcceptedEvents(ctx, tx, r.EventKey, inv, out, now); err != nil {
			return err
		}
		// Remembered so that a replay of this accept reports the same outcome.
		if out.PasswordSet {
			return appendEvent(ctx, tx, r.EventKey+"/password", inv.ID, "password_set", nil, domain.StatusAccepted, nil, now)
		}
		if out.NeedsPassword {
			return appendEvent(ctx, tx, r.EventKey+"/needs-password", inv.ID, "needs_password", nil, domain.StatusAccepted, nil, now)
		}
		return nil
	})
	if isDuplicate(err) {
		return Acceptance{}, errRetryAccept
	}
	return out, err
}

// errRetryAccept is a lost race on a unique key; the caller's retry will see the winner's row.
var errRetryAccept = retryableError("accept raced with another writer; retry")

type retryableError string

func (e retryableError) Error() string { return string(e) }

// PasswordExpiry is how long a set-password link works.
const PasswordExpiry = 72 * time.Hour
