package store

import (
	"context"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/usherhq/usher/internal/domain"
)

// NewPerson is someone an organization puts on file, to invite now or later.
type NewPerson struct {
	Email          string
	Name           string
	Phone          *string
	Locale         *string
	OrganizationID string
	Role           string
}

// PutOnFile stores people, creating accounts by e-mail where none exist and putting each
// on the organization's file with a role. People already there are left as they are, so
// importing the same list again changes nothing. It returns the user ID of every person, in
// order, and how many accounts it created.
func (s *Store) PutOnFile(ctx context.Context, people []NewPerson) (userIDs []string, created int, err error) {
	if len(people) == 0 {
		return nil, 0, nil
	}
	now := s.timestamp()
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		emails := make([]string, len(people))
		for i, p := range people {
			emails[i] = p.Email
		}
		existing, err := userIDsByEmail(ctx, tx, emails)
		if err != nil {
			return err
		}
		var rows []map[string]any
		for _, p := range people {
			if _, ok := existing[p.Email]; ok {
				continue
			}
			id := NewID()
			existing[p.Email] = id
			rows = append(rows, map[string]any{"id": id, "email": p.Email, "name": p.Name, "phone": p.Phone, "locale": p.Locale, "now": now})
		}
		if len(rows) > 0 {
			res, err := tx.NamedExecContext(ctx, `INSERT IGNORE INTO users (id, email, name, phone, locale, created_at, updated_at)
				VALUES (:id, :email, :name, :phone, :locale, :now, :now)`, rows)
			if err != nil {
				return err
			}
			n, _ := res.RowsAffected()
			created = int(n)
			// A concurrent import may have won some addresses; read the IDs that stand.
			if existing, err = userIDsByEmail(ctx, tx, emails); err != nil {
				return err
			}
			if err := recordOnFileUsersCreated(ctx, tx, people, rows, existing, now); err != nil {
				return err
			}
		}
		entries := make([]map[string]any, 0, len(people))
		userIDs = make([]string, len(people))
		for i, p := range people {
			userIDs[i] = existing[p.Email]
			entries = append(entries, map[string]any{"org": p.OrganizationID, "user": userIDs[i], "role": p.Role, "now": now})
		}
		_, err = tx.NamedExecContext(ctx, `INSERT IGNORE INTO directory_entries (organization_id, user_id, role, created_at, updated_at)
			VALUES (:org, :user, :role, :now, :now)`, entries)
		return err
	})
	return userIDs, created, err
}

func userIDsByEmail(ctx context.Context, q sqlx.QueryerContext, emails []string) (map[string]string, error) {
	query, args, err := sqlx.In(`SELECT email, id FROM users WHERE email IN (?)`, emails)
	if err != nil {
		return nil, err
	}
	rows, err := q.QueryxContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[string]string, len(emails))
	for rows.Next() {
		var email, id string
		if err := rows.Scan(&email, &id); err != nil {
			return nil, err
		}
		out[email] = id
	}
	return out, rows.Err()
}

// Person is someone on an organization's file with where their invitation stands.
type Person struct {
	UserID           string     `db:"user_id"`
	Email            string     `db:"email"`
	Name             string     `db:"name"`
	Phone            *string    `db:"phone"`
	Locale           *string    `db:"locale"`
	OrganizationID   string     `db:"organization_id"`
	Role             string     `db:"role"`
	InvitationStatus string     `db:"invitation_status"`
	InvitationID     *string    `db:"invitation_id"`
	InvitationError  *string    `db:"invitation_error"`
	CreatedAt        time.Time  `db:"created_at"`
	InvitedAt        *time.Time `db:"invited_at"`
}

// Invitation statuses of people on file.
const (
	PersonNotInvited = "not_invited"
	PersonQueued     = "queued"
	PersonInvited    = "invited"
	PersonAccepted   = "accepted"
	PersonExpired    = "expired"
	PersonError      = "error"
)

// PersonStatuses lists them, for validating filters.
var PersonStatuses = []string{PersonNotInvited, PersonQueued, PersonInvited, PersonAccepted, PersonExpired, PersonError}

// personStatusSQL derives a person's invitation status from their latest invitation.
const personStatusSQL = `CASE
	WHEN d.invitation_error IS NOT NULL THEN 'error'
	WHEN d.invitation_id IS NULL THEN 'not_invited'
	WHEN i.status = 'accepted' THEN 'accepted'
	WHEN i.status = 'failed' OR i.delivery_status = 'failed' THEN 'error'
	WHEN i.status IN ('expired', 'revoked') THEN 'expired'
	WHEN i.delivery_status IN ('sent', 'delivered') THEN 'invited'
	ELSE 'queued' END`

const personSelect = `SELECT u.id AS user_id, u.email, u.name, u.phone, u.locale, d.organization_id, d.role,
	` + personStatusSQL + ` AS invitation_status, d.invitation_id,
	COALESCE(d.invitation_error, i.failure_reason, i.delivery_last_error) AS invitation_error, d.created_at, i.created_at AS invited_at
	FROM directory_entries d JOIN users u ON u.id = d.user_id LEFT JOIN invitations i ON i.id = d.invitation_id`

// PeopleFilter narrows a listing of people on file; AfterUserID is the keyset cursor.
type PeopleFilter struct {
	OrganizationID   string
	InvitationStatus string
	// Query matches the start of the name or e-mail, or any word of the name.
	Query       string
	UserIDs     []string
	AfterUserID string
	Limit       int
}

func (f PeopleFilter) where() (string, []any) {
	var where []string
	var args []any
	if f.OrganizationID != "" {
		where, args = append(where, "d.organization_id = ?"), append(args, f.OrganizationID)
	}
	if f.InvitationStatus != "" {
		where, args = append(where, personStatusSQL+" = ?"), append(args, f.InvitationStatus)
	}
	if q := strings.TrimSpace(f.Query); q != "" {
		like := "%" + escapeLike(q) + "%"
		where, args = append(where, "(u.name LIKE ? OR u.email LIKE ?)"), append(args, like, like)
	}
	if len(f.UserIDs) > 0 {
		marks := strings.TrimSuffix(strings.Repeat("?,", len(f.UserIDs)), ",")
		where = append(where, "d.user_id IN ("+marks+")")
		for _, id := range f.UserIDs {
			args = append(args, id)
		}
	}
	if f.AfterUserID != "" {
		where, args = append(where, "d.user_id < ?"), append(args, f.AfterUserID)
	}
	if len(where) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(where, " AND "), args
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// ListPeople returns people on file, newest account first.
func (s *Store) ListPeople(ctx context.Context, f PeopleFilter) ([]Person, error) {
	where, args := f.where()
	out := []Person{}
	err := s.db.SelectContext(ctx, &out, personSelect+where+" ORDER BY d.user_id DESC LIMIT ?", append(args, f.Limit)...)
	return out, err
}

// GetPerson returns one person on an organization's file.
func (s *Store) GetPerson(ctx context.Context, organizationID, userID string) (Person, error) {
	var p Person
	err := s.db.GetContext(ctx, &p, personSelect+" WHERE d.organization_id = ? AND d.user_id = ?", organizationID, userID)
	if isNotFound(err) {
		return p, domain.Errorf(domain.CodeUserNotFound, "no user %q on the file of organization %q", userID, organizationID)
	}
	return p, err
}

// RecordInvitationAttempt points a person's file entry at their latest invitation, or notes
// why none could be made.
func (s *Store) RecordInvitationAttempt(ctx context.Context, organizationID, userID string, invitationID *string, errReason string) error {
	var reason *string
	if errReason != "" {
		r := truncate(errReason, 200)
		reason = &r
	}
	_, err := s.db.ExecContext(ctx, `UPDATE directory_entries SET invitation_id = COALESCE(?, invitation_id), invitation_error = ?, updated_at = ?
		WHERE organization_id = ? AND user_id = ?`, invitationID, reason, s.timestamp(), organizationID, userID)
	return err
}
