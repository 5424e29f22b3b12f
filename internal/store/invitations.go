package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/usherhq/usher/internal/domain"
)

// Invitation is one row of the invitations table.
type Invitation struct {
	ID                 string                `db:"id"`
	OrganizationID     string                `db:"organization_id"`
	Email              string                `db:"email"`
	Name               string                `db:"name"`
	Role               string                `db:"role"`
	InviterID          *string               `db:"inviter_id"`
	UserID             *string               `db:"user_id"`
	Status             domain.Status         `db:"status"`
	Locale             string                `db:"locale"`
	RedirectURL        *string               `db:"redirect_url"`
	Metadata           *string               `db:"metadata"`
	ExpiresInSeconds   int64                 `db:"expires_in_seconds"`
	ExpiresAt          *time.Time            `db:"expires_at"`
	ExistingUser       bool                  `db:"existing_user"`
	CurrentDeliveryKey *string               `db:"current_delivery_key"`
	DeliveryStatus     domain.DeliveryStatus `db:"delivery_status"`
	DeliveryAttempts   int                   `db:"delivery_attempts"`
	DeliveryLastError  *string               `db:"delivery_last_error"`
	FailureReason      *string               `db:"failure_reason"`
	WorkflowStartedAt  *time.Time            `db:"workflow_started_at"`
	CreatedAt          time.Time             `db:"created_at"`
	UpdatedAt          time.Time             `db:"updated_at"`
	AcceptedAt         *time.Time            `db:"accepted_at"`
	RevokedAt          *time.Time            `db:"revoked_at"`
	Channel            string                `db:"channel"`
	Phone              *string               `db:"phone"`
	BatchID            *string               `db:"batch_id"`
}

// ExpiresIn is how long the invitation stays open once sent.
func (inv Invitation) ExpiresIn() time.Duration {
	return time.Duration(inv.ExpiresInSeconds) * time.Second
}

const invitationColumns = `id, organization_id, email, name, role, inviter_id, user_id, status, locale,
	redirect_url, metadata, expires_in_seconds, expires_at, existing_user, current_delivery_key,
	delivery_status, delivery_attempts, delivery_last_error, failure_reason, workflow_started_at,
	created_at, updated_at, accepted_at, revoked_at, channel, phone, batch_id`

// Invitation channels.
const (
	ChannelEmail = "email"
	ChannelSMS   = "sms"
)

// NewInvitation is what a client asks for.
type NewInvitation struct {
	OrganizationID string
	Email          string
	Name           string
	Role           string
	InviterID      *string
	Locale         string
	RedirectURL    *string
	Metadata       *string
	ExpiresIn      time.Duration
	Draft          bool
	// Channel is "email" (default) or "sms", which needs Phone.
	Channel string
	Phone   *string
	BatchID *string
}

// IdempotencyKey scopes a client's key to the API key that sent it.
type IdempotencyKey struct {
	APIKeyID string
	Key      string
	// Request identifies the request body, so reusing a key for a different request is refused.
	Request []byte
}

// CreateInvitation stores a new invitation, or, for a repeated idempotency key, returns the
// one first created with it (created=false).
func (s *Store) CreateInvitation(ctx context.Context, in NewInvitation, idem *IdempotencyKey) (inv Invitation, created bool, err error) {
	now := s.timestamp()
	inv = Invitation{
		ID: NewID(), OrganizationID: in.OrganizationID, Email: in.Email, Name: in.Name, Role: in.Role,
		InviterID: in.InviterID, Status: domain.StatusPending, Locale: in.Locale, RedirectURL: in.RedirectURL,
		Metadata: in.Metadata, ExpiresInSeconds: int64(in.ExpiresIn / time.Second),
		DeliveryStatus: domain.DeliveryQueued, CreatedAt: now, UpdatedAt: now,
		Channel: in.Channel, Phone: in.Phone, BatchID: in.BatchID,
	}
	if inv.Channel == "" {
		inv.Channel = ChannelEmail
	}
	if in.Draft {
		inv.Status = domain.StatusDraft
		inv.DeliveryStatus = domain.DeliveryNone
	} else {
		expires := now.Add(in.ExpiresIn)
		inv.ExpiresAt = &expires
	}

	var requestHash []byte
	if idem != nil {
		sum := sha256.Sum256(idem.Request)
		requestHash = sum[:]
	}
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		if idem != nil {
			_, err := tx.ExecContext(ctx, `INSERT INTO idempotency_keys (api_key_id, idempotency_key, request_hash, invitation_id, created_at)
				VALUES (?, ?, ?, ?, ?)`, idem.APIKeyID, idem.Key, requestHash, inv.ID, now)
			if isDuplicate(err) {
				return errIdempotentReplay
			}
			if err != nil {
				return err
			}
		}
		if _, err := s.getOrganizationForUpdate(ctx, tx, in.OrganizationID); err != nil {
			return err
		}
		if in.InviterID != nil {
			var n int
			if err := tx.GetContext(ctx, &n, `SELECT COUNT(*) FROM users WHERE id = ?`, *in.InviterID); err != nil {
				return err
			}
			if n == 0 {
				return domain.Errorf(domain.CodeInviterNotFound, "no user with id %q to be the inviter", *in.InviterID)
			}
		}
		var members int
		if err := tx.GetContext(ctx, &members, `SELECT COUNT(*) FROM memberships m JOIN users u ON u.id = m.user_id
			WHERE u.email = ? AND m.organization_id = ?`, in.Email, in.OrganizationID); err != nil {
			return err
		}
		if members > 0 {
			return domain.Errorf(domain.CodeAlreadyMember, "that person is already a member of the organization")
		}
		_, err := tx.NamedExecContext(ctx, `INSERT INTO invitations (id, organization_id, email, name, role, inviter_id,
			status, locale, redirect_url, metadata, expires_in_seconds, expires_at, delivery_status, created_at, updated_at,
			channel, phone, batch_id)
			VALUES (:id, :organization_id, :email, :name, :role, :inviter_id, :status, :locale, :redirect_url, :metadata,
			:expires_in_seconds, :expires_at, :delivery_status, :created_at, :updated_at, :channel, :phone, :batch_id)`, inv)
		if isDuplicate(err) {
			return s.openInvitationConflict(ctx, tx, in.OrganizationID, in.Email)
		}
		if err != nil {
			return err
		}
		if err := appendEvent(ctx, tx, "create/"+inv.ID, inv.ID, "create", nil, inv.Status, nil, now); err != nil {
			return err
		}
		return recordEvent(ctx, tx, "create/"+inv.ID, invitationCreatedEvent(inv))
	})
	if errors.Is(err, errIdempotentReplay) {
		return s.replayIdempotencyKey(ctx, idem, requestHash)
	}
	if err != nil {
		return Invitation{}, false, err
	}
	return inv, true, nil
}

var errIdempotentReplay = errors.New("idempotency key already used")

func (s *Store) replayIdempotencyKey(ctx context.Context, idem *IdempotencyKey, requestHash []byte) (Invitation, bool, error) {
	var first struct {
		RequestHash  []byte `db:"request_hash"`
		InvitationID string `db:"invitation_id"`
	}
	err := s.db.GetContext(ctx, &first, `SELECT request_hash, invitation_id FROM idempotency_keys
		WHERE api_key_id = ? AND idempotency_key = ?`, idem.APIKeyID, idem.Key)
	if err != nil {
		return Invitation{}, false, err
	}
	if string(first.RequestHash) != string(requestHash) {
		return Invitation{}, false, domain.Errorf(domain.CodeIdempotencyKeyReused,
			"this Idempotency-Key was already used with a different request")
	}
	inv, err := s.GetInvitation(ctx, first.InvitationID)
	return inv, false, err
}

func (s *Store) getOrganizationForUpdate(ctx context.Context, tx *sqlx.Tx, id string) (Organization, error) {
	var org Organization
	err := tx.GetContext(ctx, &org, `SELECT `+organizationColumns+` FROM organizations WHERE id = ? LOCK IN SHARE MODE`, id)
	if isNotFound(err) {
		return org, domain.Errorf(domain.CodeOrganizationNotFound, "no organization with id %q", id)
	}
	return org, err
}

func (s *Store) openInvitationConflict(ctx context.Context, q sqlx.QueryerContext, organizationID, email string) error {
	var id string
	err := sqlx.GetContext(ctx, q, &id, `SELECT id FROM invitations WHERE organization_id = ? AND open_email = ?`, organizationID, email)
	if err != nil && !isNotFound(err) {
		return err
	}
	return domain.Errorf(domain.CodeInvitationPending, "an open invitation for that e-mail address already exists in the organization").
		WithDetail("invitation_id", id)
}

func (s *Store) GetInvitation(ctx context.Context, id string) (Invitation, error) {
	var inv Invitation
	err := s.db.GetContext(ctx, &inv, `SELECT `+invitationColumns+` FROM invitations WHERE id = ?`, id)
	if isNotFound(err) {
		return inv, domain.Errorf(domain.CodeInvitationNotFound, "no invitation with id %q", id)
	}
	return inv, err
}

// InvitationFilter narrows a listing. AfterID is the keyset cursor: the listing continues
// with invitations older than it.
type InvitationFilter struct {
	Status         domain.Status
	Email          string
	OrganizationID string
	AfterID        string
	Limit          int
}

// ListInvitations returns invitations newest first. IDs are time-ordered, so "newest first"
// is "highest ID first" and the cursor is simply the last ID seen.
func (s *Store) ListInvitations(ctx context.Context, f InvitationFilter) ([]Invitation, error) {
	var where []string
	var args []any
	if f.Status != "" {
		where, args = append(where, "status = ?"), append(args, f.Status)
	}
	if f.Email != "" {
		where, args = append(where, "email = ?"), append(args, f.Email)
	}
	if f.OrganizationID != "" {
		where, args = append(where, "organization_id = ?"), append(args, f.OrganizationID)
	}
	if f.AfterID != "" {
		where, args = append(where, "id < ?"), append(args, f.AfterID)
	}
	from := ` FROM invitations`
	if f.OrganizationID != "" && f.Status != "" {
		// MariaDB otherwise intersects invitations_status with invitations_organization and
		// sorts every match: 2.4 s a page for an organization with 500,000 pending
		// invitations, against 3 ms reading this index backwards from the cursor
		// (usher-bench -suite, benchmark 3).
		from = ` FROM invitations FORCE INDEX (invitations_organization_status)`
	}
	query := `SELECT ` + invitationColumns + from
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY id DESC LIMIT ?"
	args = append(args, f.Limit)
	invitations := []Invitation{}
	err := s.db.SelectContext(ctx, &invitations, query, args...)
	return invitations, err
}

// MarkWorkflowStarted records that the invitation's workflow exists, so the reconciler
// leaves it alone.
func (s *Store) MarkWorkflowStarted(ctx context.Context, id string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE invitations SET workflow_started_at = ? WHERE id = ? AND workflow_started_at IS NULL`,
		s.timestamp(), id)
	return err
}

// UnstartedInvitations lists invitations created before olderThan whose workflow has not
// reported in: the API stopped between storing the row and starting the workflow.
func (s *Store) UnstartedInvitations(ctx context.Context, olderThan time.Time, limit int) ([]Invitation, error) {
	invitations := []Invitation{}
	err := s.db.SelectContext(ctx, &invitations, `SELECT `+invitationColumns+` FROM invitations
		WHERE workflow_started_at IS NULL AND created_at < ? ORDER BY created_at LIMIT ?`, olderThan.UTC(), limit)
	return invitations, err
}

// StatusChange is one step of an invitation's life as its workflow decided it.
type StatusChange struct {
	EventKey     string // unique per decision, so a retried write changes nothing
	InvitationID string
	Action       string
	From         domain.Status
	To           domain.Status
	Reason       string
	ExpiresAt    *time.Time // set when the step (re)arms the expiry
	DeliveryKey  string     // set when the step asks for a new e-mail; earlier links stop working
}

// ApplyStatusChange writes the change and its audit event in one transaction. Links stop
// working when the invitation leaves pending or when a new delivery replaces them.
func (s *Store) ApplyStatusChange(ctx context.Context, c StatusChange) error {
	now := s.timestamp()
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		var applied int
		if err := tx.GetContext(ctx, &applied, `SELECT COUNT(*) FROM invitation_events WHERE event_key = ?`, c.EventKey); err != nil {
			return err
		}
		if applied > 0 {
			return nil
		}
		set := []string{"status = ?", "updated_at = ?"}
		args := []any{c.To, now}
		if c.ExpiresAt != nil {
			set, args = append(set, "expires_at = ?"), append(args, c.ExpiresAt.UTC())
		}
		if c.DeliveryKey != "" {
			set = append(set, "current_delivery_key = ?", "delivery_status = ?", "delivery_last_error = NULL")
			args = append(args, c.DeliveryKey, domain.DeliveryQueued)
		}
		switch c.To {
		case domain.StatusRevoked:
			set, args = append(set, "revoked_at = ?"), append(args, now)
		case domain.StatusFailed:
			set, args = append(set, "failure_reason = ?", "delivery_status = ?"), append(args, truncate(c.Reason, 500), domain.DeliveryFailed)
		}
		args = append(args, c.InvitationID)
		res, err := tx.ExecContext(ctx, `UPDATE invitations SET `+strings.Join(set, ", ")+` WHERE id = ?`, args...)
		if isDuplicate(err) {
			var email, org string
			if err := tx.QueryRowxContext(ctx, `SELECT email, organization_id FROM invitations WHERE id = ?`, c.InvitationID).Scan(&email, &org); err != nil {
				return err
			}
			return s.openInvitationConflict(ctx, tx, org, email)
		}
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			var exists int
			if err := tx.GetContext(ctx, &exists, `SELECT COUNT(*) FROM invitations WHERE id = ?`, c.InvitationID); err != nil {
				return err
			}
			if exists == 0 {
				return domain.Errorf(domain.CodeInvitationNotFound, "no invitation with id %q", c.InvitationID)
			}
		}
		if c.To != domain.StatusPending || c.DeliveryKey != "" {
			if _, err := tx.ExecContext(ctx, `UPDATE invitation_tokens SET invalidated_at = ?
				WHERE invitation_id = ? AND invalidated_at IS NULL`, now, c.InvitationID); err != nil {
				return err
			}
		}
		from := c.From
		var reason *string
		if c.Reason != "" {
			r := truncate(c.Reason, 500)
			reason = &r
		}
		if err := appendEvent(ctx, tx, c.EventKey, c.InvitationID, c.Action, &from, c.To, reason, now); err != nil {
			return err
		}
		return recordStatusChangeEvent(ctx, tx, c, now)
	})
}

func appendEvent(ctx context.Context, tx *sqlx.Tx, key, invitationID, action string, from *domain.Status, to domain.Status, reason *string, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO invitation_events (event_key, invitation_id, action, from_status, to_status, reason, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, key, invitationID, action, from, to, reason, now)
	return err
}

// InvitationEvent is one line of the audit trail.
type InvitationEvent struct {
	Action     string         `db:"action"`
	FromStatus *domain.Status `db:"from_status"`
	ToStatus   domain.Status  `db:"to_status"`
	Reason     *string        `db:"reason"`
	CreatedAt  time.Time      `db:"created_at"`
}

func (s *Store) InvitationEvents(ctx context.Context, invitationID string) ([]InvitationEvent, error) {
	events := []InvitationEvent{}
	err := s.db.SelectContext(ctx, &events, `SELECT action, from_status, to_status, reason, created_at
		FROM invitation_events WHERE invitation_id = ? ORDER BY id`, invitationID)
	return events, err
}

// TokenMatch is what a link's token points at.
type TokenMatch struct {
	Invitation  Invitation
	DeliveryKey string
	// Replaced is true when a later e-mail (resend, renewal) made this link obsolete while the
	// invitation itself is still open.
	Replaced bool
}

// FindInvitationByToken resolves a token hash. A hash Usher never issued is invalid_token.
func (s *Store) FindInvitationByToken(ctx context.Context, tokenHash []byte) (TokenMatch, error) {
	var row struct {
		InvitationID  string     `db:"invitation_id"`
		DeliveryKey   string     `db:"delivery_key"`
		InvalidatedAt *time.Time `db:"invalidated_at"`
	}
	err := s.db.GetContext(ctx, &row, `SELECT invitation_id, delivery_key, invalidated_at FROM invitation_tokens WHERE token_hash = ?`, tokenHash)
	if isNotFound(err) {
		return TokenMatch{}, domain.Errorf(domain.CodeInvalidToken, "this link is not valid")
	}
	if err != nil {
		return TokenMatch{}, err
	}
	inv, err := s.GetInvitation(ctx, row.InvitationID)
	if err != nil {
		return TokenMatch{}, err
	}
	replaced := inv.Status == domain.StatusPending &&
		(row.InvalidatedAt != nil || inv.CurrentDeliveryKey == nil || *inv.CurrentDeliveryKey != row.DeliveryKey)
	return TokenMatch{Invitation: inv, DeliveryKey: row.DeliveryKey, Replaced: replaced}, nil
}

// InvitationContext is everything an e-mail about an invitation needs to say.
type InvitationContext struct {
	Invitation       Invitation
	OrganizationName string
	LoginURL         *string
	LogoURL          *string
	InviterName      string
	InviterEmail     string
}

func (s *Store) GetInvitationContext(ctx context.Context, id string) (InvitationContext, error) {
	return s.invitationContext(ctx, s.db, id, false)
}

func (s *Store) invitationContext(ctx context.Context, q sqlx.QueryerContext, id string, forUpdate bool) (InvitationContext, error) {
	query := `SELECT ` + invitationColumns + ` FROM invitations WHERE id = ?`
	if forUpdate {
		query += " FOR UPDATE"
	}
	var c InvitationContext
	err := sqlx.GetContext(ctx, q, &c.Invitation, query, id)
	if isNotFound(err) {
		return c, domain.Errorf(domain.CodeInvitationNotFound, "no invitation with id %q", id)
	}
	if err != nil {
		return c, err
	}
	var org Organization
	if err := sqlx.GetContext(ctx, q, &org, `SELECT `+organizationColumns+` FROM organizations WHERE id = ?`, c.Invitation.OrganizationID); err != nil {
		return c, fmt.Errorf("organization of invitation %s: %w", id, err)
	}
	c.OrganizationName, c.LoginURL, c.LogoURL = org.Name, org.LoginURL, org.LogoURL
	if c.Invitation.InviterID != nil {
		var inviter User
		err := sqlx.GetContext(ctx, q, &inviter, `SELECT id, email, name, password_hash, created_at, updated_at FROM users WHERE id = ?`, *c.Invitation.InviterID)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return c, err
		}
		c.InviterName, c.InviterEmail = inviter.Name, inviter.Email
	}
	return c, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// SetInvitationChannel changes how an open invitation's next link is sent.
func (s *Store) SetInvitationChannel(ctx context.Context, id, channel string, phone *string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE invitations SET channel = ?, phone = COALESCE(?, phone), updated_at = ?
		WHERE id = ? AND status IN ('draft', 'pending')`, channel, phone, s.timestamp(), id)
	return err
}
