package store

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/usherhq/usher/internal/domain"
)

type Organization struct {
	ID        string    `db:"id"`
	Name      string    `db:"name"`
	LoginURL  *string   `db:"login_url"`
	LogoURL   *string   `db:"logo_url"`
	CreatedAt time.Time `db:"created_at"`
	UpdatedAt time.Time `db:"updated_at"`
}

type User struct {
	ID           string    `db:"id"`
	Email        string    `db:"email"`
	Name         string    `db:"name"`
	PasswordHash []byte    `db:"password_hash"`
	CreatedAt    time.Time `db:"created_at"`
	UpdatedAt    time.Time `db:"updated_at"`

	// Read by GetUser only.
	Locale                *string `db:"locale"`
	ProfilePublic         bool    `db:"profile_public"`
	ProfileDisplayName    *string `db:"profile_display_name"`
	ProfileOrganizationID *string `db:"profile_organization_id"`
	ProfileCity           *string `db:"profile_city"`
	ProfileBio            *string `db:"profile_bio"`
}

type Membership struct {
	OrganizationID   string    `db:"organization_id"`
	OrganizationName string    `db:"organization_name"`
	Role             string    `db:"role"`
	CreatedAt        time.Time `db:"created_at"`
}

const organizationColumns = "id, name, login_url, logo_url, created_at, updated_at"

// CreateOrganization stores an organization; loginURL and logoURL may be nil.
func (s *Store) CreateOrganization(ctx context.Context, name string, loginURL, logoURL *string) (Organization, error) {
	now := s.timestamp()
	org := Organization{ID: NewID(), Name: name, LoginURL: loginURL, LogoURL: logoURL, CreatedAt: now, UpdatedAt: now}
	_, err := s.db.NamedExecContext(ctx, `INSERT INTO organizations (id, name, login_url, logo_url, created_at, updated_at)
		VALUES (:id, :name, :login_url, :logo_url, :created_at, :updated_at)`, org)
	return org, err
}

func (s *Store) GetOrganization(ctx context.Context, id string) (Organization, error) {
	var org Organization
	err := s.db.GetContext(ctx, &org, `SELECT `+organizationColumns+` FROM organizations WHERE id = ?`, id)
	if isNotFound(err) {
		return org, domain.Errorf(domain.CodeOrganizationNotFound, "no organization with id %q", id)
	}
	return org, err
}

func (s *Store) GetUser(ctx context.Context, id string) (User, []Membership, error) {
	var user User
	err := s.db.GetContext(ctx, &user, `SELECT id, email, name, password_hash, created_at, updated_at, locale, profile_public,
		profile_display_name, profile_organization_id, profile_city, profile_bio FROM users WHERE id = ?`, id)
	if isNotFound(err) {
		return user, nil, domain.Errorf(domain.CodeUserNotFound, "no user with id %q", id)
	}
	if err != nil {
		return user, nil, err
	}
	memberships := []Membership{}
	err = s.db.SelectContext(ctx, &memberships, `SELECT m.organization_id, o.name AS organization_name, m.role, m.created_at
		FROM memberships m JOIN organizations o ON o.id = m.organization_id
		WHERE m.user_id = ? ORDER BY m.created_at, m.organization_id`, id)
	return user, memberships, err
}

// CreateUser adds an account, for administrators and tests; invitations create theirs in
// AcceptInvitation.
func (s *Store) CreateUser(ctx context.Context, email, name string, passwordHash []byte) (User, error) {
	now := s.timestamp()
	user := User{ID: NewID(), Email: email, Name: name, PasswordHash: passwordHash, CreatedAt: now, UpdatedAt: now}
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.NamedExecContext(ctx, `INSERT INTO users (id, email, name, password_hash, created_at, updated_at)
			VALUES (:id, :email, :name, :password_hash, :created_at, :updated_at)`, user); err != nil {
			return err
		}
		return recordEvent(ctx, tx, userCreatedKey(user.ID), userCreatedEvent(user.ID, "", UserSourceAdmin, nil, len(passwordHash) > 0, now))
	})
	if isDuplicate(err) {
		return User{}, domain.Errorf(domain.CodeInvalidRequest, "an account with that e-mail address already exists")
	}
	return user, err
}

// AddMembership gives user a role in organization; an existing membership is left as it is.
func (s *Store) AddMembership(ctx context.Context, userID, organizationID, role string) error {
	return addMembership(ctx, s.db, userID, organizationID, role, s.timestamp())
}

func addMembership(ctx context.Context, exec sqlx.ExecerContext, userID, organizationID, role string, now time.Time) error {
	_, err := exec.ExecContext(ctx, `INSERT IGNORE INTO memberships (user_id, organization_id, role, created_at)
		VALUES (?, ?, ?, ?)`, userID, organizationID, role, now)
	return err
}

func (s *Store) userExistsWithEmail(ctx context.Context, q sqlx.QueryerContext, email string) (bool, error) {
	var n int
	err := sqlx.GetContext(ctx, q, &n, `SELECT COUNT(*) FROM users WHERE email = ?`, email)
	return n > 0, err
}

// UserExistsWithEmail reports whether an account uses email.
func (s *Store) UserExistsWithEmail(ctx context.Context, email string) (bool, error) {
	return s.userExistsWithEmail(ctx, s.db, email)
}

// UpdateUser changes a user's name and locale; nil leaves a field as it is.
func (s *Store) UpdateUser(ctx context.Context, id string, name, locale *string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE users SET name = COALESCE(?, name), locale = COALESCE(?, locale), updated_at = ? WHERE id = ?`,
		name, locale, s.timestamp(), id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, _, err := s.GetUser(ctx, id); err != nil {
			return err
		}
	}
	return nil
}
