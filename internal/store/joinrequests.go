package store

import (
	"context"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/usherhq/usher/internal/domain"
)

// PublicProfile is what a member chooses to show visitors of the join page.
type PublicProfile struct {
	DisplayName    string
	OrganizationID string
	City           string
	Bio            string
}

// PublicMember is a member's published profile with the organization it names.
type PublicMember struct {
	MemberID         string  `db:"id"`
	Email            string  `db:"email"`
	DisplayName      string  `db:"profile_display_name"`
	City             string  `db:"profile_city"`
	Bio              string  `db:"profile_bio"`
	OrganizationID   string  `db:"organization_id"`
	OrganizationName string  `db:"organization_name"`
	LogoURL          *string `db:"logo_url"`
	LoginURL         *string `db:"login_url"`
	Name             string  `db:"name"`
	Locale           *string `db:"locale"`
}

const publicMemberQuery = `SELECT u.id, u.email, u.name, u.locale, COALESCE(u.profile_display_name, '') AS profile_display_name,
	COALESCE(u.profile_city, '') AS profile_city, COALESCE(u.profile_bio, '') AS profile_bio,
	o.id AS organization_id, o.name AS organization_name, o.logo_url, o.login_url
	FROM users u
	JOIN memberships m ON m.user_id = u.id AND m.organization_id = u.profile_organization_id
	JOIN organizations o ON o.id = m.organization_id
	WHERE u.profile_public`

// SetPublicProfile publishes (or, with nil, withdraws) a member's profile. The organization
// it names must be one the member belongs to.
func (s *Store) SetPublicProfile(ctx context.Context, userID string, p *PublicProfile) error {
	if p == nil {
		_, err := s.db.ExecContext(ctx, `UPDATE users SET profile_public = FALSE, updated_at = ? WHERE id = ?`, s.timestamp(), userID)
		return err
	}
	var member int
	if err := s.db.GetContext(ctx, &member, `SELECT COUNT(*) FROM memberships WHERE user_id = ? AND organization_id = ?`, userID, p.OrganizationID); err != nil {
		return err
	}
	if member == 0 {
		return domain.Errorf(domain.CodeInvalidRequest, "public_profile.organization_id: the user is not a member of that organization").
			WithDetail("field", "public_profile.organization_id")
	}
	_, err := s.db.ExecContext(ctx, `UPDATE users SET profile_public = TRUE, profile_display_name = ?, profile_organization_id = ?,
		profile_city = ?, profile_bio = ?, updated_at = ? WHERE id = ?`, p.DisplayName, p.OrganizationID, p.City, p.Bio, s.timestamp(), userID)
	return err
}

// FindPublicMemberByEmail finds the member with a public profile at email. A private account
// and no account at all look the same: member_not_found.
func (s *Store) FindPublicMemberByEmail(ctx context.Context, email string) (PublicMember, error) {
	return s.publicMember(ctx, "u.email = ?", email)
}

// GetPublicMember returns member id's public profile, or member_not_found.
func (s *Store) GetPublicMember(ctx context.Context, id string) (PublicMember, error) {
	return s.publicMember(ctx, "u.id = ?", id)
}

func (s *Store) publicMember(ctx context.Context, cond string, arg any) (PublicMember, error) {
	var m PublicMember
	err := s.db.GetContext(ctx, &m, publicMemberQuery+" AND "+cond, arg)
	if isNotFound(err) {
		return m, domain.Errorf(domain.CodeMemberNotFound, "no member with a public profile has that address")
	}
	return m, err
}

// IsMember reports whether the account at email belongs to organization.
func (s *Store) IsMember(ctx context.Context, email, organizationID string) (bool, error) {
	var n int
	err := s.db.GetContext(ctx, &n, `SELECT COUNT(*) FROM memberships m JOIN users u ON u.id = m.user_id
		WHERE u.email = ? AND m.organization_id = ?`, email, organizationID)
	return n > 0, err
}

// JoinRequest is one row of join_requests.
type JoinRequest struct {
	ID                string            `db:"id"`
	MemberID          string            `db:"member_id"`
	OrganizationID    string            `db:"organization_id"`
	VisitorEmail      string            `db:"visitor_email"`
	VisitorName       string            `db:"visitor_name"`
	Message           string            `db:"message"`
	Locale            string            `db:"locale"`
	Status            domain.JoinStatus `db:"status"`
	StatusReason      *string           `db:"status_reason"`
	Role              *string           `db:"role"`
	UserID            *string           `db:"user_id"`
	ExistingUser      bool              `db:"existing_user"`
	ConfirmExpiresAt  time.Time         `db:"confirm_expires_at"`
	DecideBy          *time.Time        `db:"decide_by"`
	WorkflowStartedAt *time.Time        `db:"workflow_started_at"`
	CreatedAt         time.Time         `db:"created_at"`
	UpdatedAt         time.Time         `db:"updated_at"`
	ConfirmedAt       *time.Time        `db:"confirmed_at"`
	DecidedAt         *time.Time        `db:"decided_at"`
}

const joinRequestColumns = `id, member_id, organization_id, visitor_email, visitor_name, message, locale, status, status_reason,
	role, user_id, existing_user, confirm_expires_at, decide_by, workflow_started_at, created_at, updated_at, confirmed_at, decided_at`

// NewJoinRequest is what a visitor asks for.
type NewJoinRequest struct {
	MemberID       string
	OrganizationID string
	VisitorEmail   string
	VisitorName    string
	Message        string
	Locale         string
	ConfirmWindow  time.Duration
}

// CreateJoinRequest stores a new request, or returns the open one for the same member and
// visitor address (created=false).
func (s *Store) CreateJoinRequest(ctx context.Context, in NewJoinRequest) (jr JoinRequest, created bool, err error) {
	now := s.timestamp()
	jr = JoinRequest{
		ID: NewID(), MemberID: in.MemberID, OrganizationID: in.OrganizationID, VisitorEmail: in.VisitorEmail,
		VisitorName: in.VisitorName, Message: in.Message, Locale: in.Locale, Status: domain.JoinUnconfirmed,
		ConfirmExpiresAt: now.Add(in.ConfirmWindow), CreatedAt: now, UpdatedAt: now,
	}
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		_, err := tx.NamedExecContext(ctx, `INSERT INTO join_requests (id, member_id, organization_id, visitor_email, visitor_name,
			message, locale, status, confirm_expires_at, created_at, updated_at) VALUES (:id, :member_id, :organization_id,
			:visitor_email, :visitor_name, :message, :locale, :status, :confirm_expires_at, :created_at, :updated_at)`, jr)
		if err != nil {
			return err
		}
		if err := appendJoinEvent(ctx, tx, "create/"+jr.ID, jr.ID, "create", nil, jr.Status, nil, now); err != nil {
			return err
		}
		return recordEvent(ctx, tx, "create/"+jr.ID, joinRequestCreatedEvent(jr))
	})
	if isDuplicate(err) {
		var open JoinRequest
		err = s.db.GetContext(ctx, &open, `SELECT `+joinRequestColumns+` FROM join_requests WHERE member_id = ? AND open_email = ?`,
			in.MemberID, in.VisitorEmail)
		return open, false, err
	}
	return jr, err == nil, err
}

func (s *Store) GetJoinRequest(ctx context.Context, id string) (JoinRequest, error) {
	var jr JoinRequest
	err := s.db.GetContext(ctx, &jr, `SELECT `+joinRequestColumns+` FROM join_requests WHERE id = ?`, id)
	if isNotFound(err) {
		return jr, domain.Errorf(domain.CodeJoinRequestNotFound, "no join request with id %q", id)
	}
	return jr, err
}

// JoinRequestFilter narrows a listing; AfterID is the keyset cursor.
type JoinRequestFilter struct {
	Status   domain.JoinStatus
	MemberID string
	AfterID  string
	Limit    int
}

// ListJoinRequests returns requests newest first.
func (s *Store) ListJoinRequests(ctx context.Context, f JoinRequestFilter) ([]JoinRequest, error) {
	var where []string
	var args []any
	if f.Status != "" {
		where, args = append(where, "status = ?"), append(args, f.Status)
	}
	if f.MemberID != "" {
		where, args = append(where, "member_id = ?"), append(args, f.MemberID)
	}
	if f.AfterID != "" {
		where, args = append(where, "id < ?"), append(args, f.AfterID)
	}
	query := `SELECT ` + joinRequestColumns + ` FROM join_requests`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY id DESC LIMIT ?"
	out := []JoinRequest{}
	err := s.db.SelectContext(ctx, &out, query, append(args, f.Limit)...)
	return out, err
}

func (s *Store) MarkJoinWorkflowStarted(ctx context.Context, id string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE join_requests SET workflow_started_at = ? WHERE id = ? AND workflow_started_at IS NULL`, s.timestamp(), id)
	return err
}

// UnstartedJoinRequests lists requests older than olderThan whose workflow never reported in.
func (s *Store) UnstartedJoinRequests(ctx context.Context, olderThan time.Time, limit int) ([]JoinRequest, error) {
	out := []JoinRequest{}
	err := s.db.SelectContext(ctx, &out, `SELECT `+joinRequestColumns+` FROM join_requests
		WHERE workflow_started_at IS NULL AND created_at < ? ORDER BY created_at LIMIT ?`, olderThan.UTC(), limit)
	return out, err
}

// JoinStatusChange is one step of a join request as its workflow decided it.
type JoinStatusChange struct {
	EventKey      string
	JoinRequestID string
	Action        string
	From, To      domain.JoinStatus
	Reason        string
	DecideBy      *time.Time
}

// ApplyJoinStatusChange writes the change and its audit event in one transaction; links stop
// working when the request closes.
func (s *Store) ApplyJoinStatusChange(ctx context.Context, c JoinStatusChange) error {
	now := s.timestamp()
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		var applied int
		if err := tx.GetContext(ctx, &applied, `SELECT COUNT(*) FROM join_request_events WHERE event_key = ?`, c.EventKey); err != nil {
			return err
		}
		if applied > 0 {
			return nil
		}
		set := []string{"status = ?", "updated_at = ?"}
		args := []any{c.To, now}
		if c.DecideBy != nil {
			set, args = append(set, "decide_by = ?"), append(args, c.DecideBy.UTC())
		}
		if c.To == domain.JoinPending && c.From == domain.JoinUnconfirmed {
			set, args = append(set, "confirmed_at = ?"), append(args, now)
		}
		if c.To == domain.JoinRejected {
			set, args = append(set, "decided_at = ?"), append(args, now)
		}
		if c.Reason != "" {
			set, args = append(set, "status_reason = ?"), append(args, truncate(c.Reason, 200))
		}
		if _, err := tx.ExecContext(ctx, `UPDATE join_requests SET `+strings.Join(set, ", ")+` WHERE id = ?`, append(args, c.JoinRequestID)...); err != nil {
			return err
		}
		if !c.To.Open() {
			if _, err := tx.ExecContext(ctx, `UPDATE join_request_tokens SET invalidated_at = ? WHERE join_request_id = ? AND invalidated_at IS NULL`,
				now, c.JoinRequestID); err != nil {
				return err
			}
		}
		from := c.From
		var reason *string
		if c.Reason != "" {
			reason = &c.Reason
		}
		if err := appendJoinEvent(ctx, tx, c.EventKey, c.JoinRequestID, c.Action, &from, c.To, reason, now); err != nil {
			return err
		}
		return recordJoinStatusChangeEvent(ctx, tx, c, now)
	})
}

func appendJoinEvent(ctx context.Context, tx *sqlx.Tx, key, id, action string, from *domain.JoinStatus, to domain.JoinStatus, reason *string, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO join_request_events (event_key, join_request_id, action, from_status, to_status, reason, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, key, id, action, from, to, reason, now)
	return err
}

// JoinRequestContext is everything an e-mail or page about a join request needs.
type JoinRequestContext struct {
	Request JoinRequest
	Member  PublicMember
}

func (s *Store) GetJoinRequestContext(ctx context.Context, id string) (JoinRequestContext, error) {
	var c JoinRequestContext
	var err error
	if c.Request, err = s.GetJoinRequest(ctx, id); err != nil {
		return c, err
	}
	err = s.db.GetContext(ctx, &c.Member, `SELECT u.id, u.email, u.name, u.locale, COALESCE(u.profile_display_name, '') AS profile_display_name,
		COALESCE(u.profile_city, '') AS profile_city, COALESCE(u.profile_bio, '') AS profile_bio,
		o.id AS organization_id, o.name AS organization_name, o.logo_url, o.login_url
		FROM users u JOIN organizations o ON o.id = ? WHERE u.id = ?`, c.Request.OrganizationID, c.Request.MemberID)
	return c, err
}

// Join link purposes.
const (
	PurposeConfirm = "confirm"
	PurposeDecide  = "decide"
)

// BeginJoinDelivery records, before the provider is called, an e-mail about a join request;
// with a token hash, its link too. Earlier links of the same purpose keep working: a member
// may decide from the first e-mail or the reminder.
func (s *Store) BeginJoinDelivery(ctx context.Context, key, kind, joinRequestID, purpose string, tokenHash []byte) (JoinRequestContext, error) {
	now := s.timestamp()
	c, err := s.GetJoinRequestContext(ctx, joinRequestID)
	if err != nil {
		return c, err
	}
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		if tokenHash != nil {
			if _, err := tx.ExecContext(ctx, `INSERT INTO join_request_tokens (token_hash, join_request_id, purpose, delivery_key, created_at)
				VALUES (?, ?, ?, ?, ?)`, tokenHash, joinRequestID, purpose, key, now); err != nil {
				return err
			}
		}
		if err := beginDelivery(ctx, tx, key, kind, nil, nil, now); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE email_deliveries SET join_request_id = ? WHERE delivery_key = ?`, joinRequestID, key)
		return err
	})
	return c, err
}

// FindJoinRequestByToken resolves a link of the given purpose. Unknown tokens, and tokens
// of the other purpose, are invalid_token. A link of a closed request still resolves, so
// its page can say what became of the request; every action on it is refused.
func (s *Store) FindJoinRequestByToken(ctx context.Context, tokenHash []byte, purpose string) (JoinRequestContext, error) {
	var id string
	err := s.db.GetContext(ctx, &id, `SELECT join_request_id FROM join_request_tokens WHERE token_hash = ? AND purpose = ?`, tokenHash, purpose)
	if isNotFound(err) {
		return JoinRequestContext{}, domain.Errorf(domain.CodeInvalidToken, "this link is not valid")
	}
	if err != nil {
		return JoinRequestContext{}, err
	}
	return s.GetJoinRequestContext(ctx, id)
}

// JoinApproval is the outcome of approving a join request.
type JoinApproval struct {
	UserID       string
	ExistingUser bool
}

// ApproveJoinRequest makes the visitor a member in one transaction, like AcceptInvitation:
// find or create the account by e-mail, add the membership, mark the request approved. Run
// again, it returns the first outcome.
func (s *Store) ApproveJoinRequest(ctx context.Context, id, role, eventKey string) (JoinApproval, error) {
	now := s.timestamp()
	var out JoinApproval
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var jr JoinRequest
		if err := tx.GetContext(ctx, &jr, `SELECT `+joinRequestColumns+` FROM join_requests WHERE id = ? FOR UPDATE`, id); err != nil {
			if isNotFound(err) {
				return domain.Errorf(domain.CodeJoinRequestNotFound, "no join request with id %q", id)
			}
			return err
		}
		if jr.Status == domain.JoinApproved && jr.UserID != nil {
			out = JoinApproval{UserID: *jr.UserID, ExistingUser: jr.ExistingUser}
			return nil
		}
		if err := domain.CheckJoinAction(jr.Status, domain.JoinActionApprove); err != nil {
			return err
		}
		var user User
		err := tx.GetContext(ctx, &user, `SELECT id, email, name, password_hash, created_at, updated_at FROM users WHERE email = ? FOR UPDATE`, jr.VisitorEmail)
		switch {
		case err == nil:
			out.ExistingUser = true
		case isNotFound(err):
			user = User{ID: NewID(), Email: jr.VisitorEmail, Name: jr.VisitorName, CreatedAt: now, UpdatedAt: now}
			if _, err := tx.ExecContext(ctx, `INSERT INTO users (id, email, name, locale, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)`,
				user.ID, user.Email, user.Name, jr.Locale, now, now); err != nil {
				return err
			}
		default:
			return err
		}
		out.UserID = user.ID
		if err := addMembership(ctx, tx, user.ID, jr.OrganizationID, role, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE join_requests SET status = ?, role = ?, user_id = ?, existing_user = ?, decided_at = ?, updated_at = ?
			WHERE id = ?`, domain.JoinApproved, role, user.ID, out.ExistingUser, now, now, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE join_request_tokens SET invalidated_at = ? WHERE join_request_id = ? AND invalidated_at IS NULL`, now, id); err != nil {
			return err
		}
		from := jr.Status
		if err := appendJoinEvent(ctx, tx, eventKey, id, "approve", &from, domain.JoinApproved, nil, now); err != nil {
			return err
		}
		return recordApprovedEvents(ctx, tx, eventKey, jr, role, out, now)
	})
	if isDuplicate(err) {
		return JoinApproval{}, errRetryAccept
	}
	return out, err
}
