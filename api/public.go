package api

import (
	"context"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"golang.org/x/crypto/bcrypt"

	"github.com/usherhq/usher/internal/domain"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/workflows"
)

// The operations behind the token links, shared by the JSON endpoints here and the hosted
// pages, so both refuse and succeed alike.

// resolveToken finds the invitation a link's token belongs to. A token of the wrong shape
// never reaches the database.
func (s *Server) resolveToken(ctx context.Context, token string) (store.TokenMatch, error) {
	try, err := s.tryToken(ctx, token)
	if err != nil {
		return store.TokenMatch{}, err
	}
	if !domain.ValidTokenFormat(token) {
		return store.TokenMatch{}, domain.Errorf(domain.CodeInvalidToken, "this link is not valid")
	}
	match, err := s.Store.FindInvitationByToken(ctx, domain.HashToken(token))
	try.settle(err)
	if err != nil {
		return match, err
	}
	if match.Replaced {
		return match, domain.Errorf(domain.CodeInvalidToken, "this link was replaced by a newer one; use the latest e-mail").
			WithDetail("reason", "replaced")
	}
	return match, nil
}

// effectiveStatus is the invitation's status as of now: a pending invitation whose expiry
// has passed is expired even if its workflow has not said so yet.
func effectiveStatus(inv store.Invitation, now time.Time) domain.Status {
	if inv.Status == domain.StatusPending && inv.ExpiresAt != nil && !now.Before(*inv.ExpiresAt) {
		return domain.StatusExpired
	}
	return inv.Status
}

// InvitationView is what an invitee may see of an invitation through its link.
type InvitationView struct {
	Invitation   store.Invitation
	Context      store.InvitationContext
	Status       domain.Status
	ExistingUser bool
}

// viewInvitation resolves a token to what its invitee may see. Any status is shown, so the
// page can say "expired" or "already accepted"; only unknown and replaced links are errors.
func (s *Server) viewInvitation(ctx context.Context, token string) (InvitationView, error) {
	match, err := s.resolveToken(ctx, token)
	if err != nil {
		return InvitationView{}, err
	}
	ic, err := s.Store.GetInvitationContext(ctx, match.Invitation.ID)
	if err != nil {
		return InvitationView{}, err
	}
	existing, err := s.Store.UserExistsWithEmail(ctx, ic.Invitation.Email)
	if err != nil {
		return InvitationView{}, err
	}
	return InvitationView{Invitation: ic.Invitation, Context: ic, Status: effectiveStatus(ic.Invitation, time.Now()), ExistingUser: existing}, nil
}

// Acceptance is the outcome of accepting an invitation through its link.
type Acceptance struct {
	UserID       string
	ExistingUser bool
	PasswordSet  bool
	// RedirectURL is where to send the invitee next: the invitation's redirect_url, or for
	// an existing account the organization's login page; nil if neither is set.
	RedirectURL *string
}

// acceptByToken accepts the invitation of token. A password, if given, is checked, hashed,
// and staged in MySQL for the accept to use; it never travels through the workflow.
func (s *Server) acceptByToken(ctx context.Context, token, name string, password string) (Acceptance, error) {
	name, err := validName(strings.TrimSpace(name))
	if err != nil {
		return Acceptance{}, err
	}
	match, err := s.resolveToken(ctx, token)
	if err != nil {
		return Acceptance{}, err
	}
	inv := match.Invitation
	if err := domain.CheckAction(effectiveStatus(inv, time.Now()), domain.ActionAccept); err != nil {
		return Acceptance{}, err
	}

	attemptID := store.NewID()
	if password != "" {
		hash, err := hashPassword(password, inv.Email)
		if err != nil {
			return Acceptance{}, err
		}
		if err := s.Store.StageCredentials(ctx, attemptID, inv.ID, hash); err != nil {
			return Acceptance{}, err
		}
	}

	var result workflows.AcceptResult
	accept := workflows.AcceptRequest{DeliveryKey: match.DeliveryKey, AttemptID: attemptID, Name: name}
	if err := s.updateInvitation(ctx, inv.ID, workflows.UpdateAccept, nil, &result, accept); err != nil {
		_ = s.Store.DiscardCredentials(ctx, attemptID)
		return Acceptance{}, s.explainUpdateFailure(ctx, inv.ID, domain.ActionAccept, err)
	}

	out := Acceptance{UserID: result.UserID, ExistingUser: result.ExistingUser, PasswordSet: result.PasswordSet, RedirectURL: inv.RedirectURL}
	if out.RedirectURL == nil && result.ExistingUser {
		if org, err := s.Store.GetOrganization(ctx, inv.OrganizationID); err == nil {
			out.RedirectURL = org.LoginURL
		}
	}
	return out, nil
}

// viewPasswordToken tells whether a set-password link still works, and whose it is,
// without using it up.
func (s *Server) viewPasswordToken(ctx context.Context, token string) (store.User, error) {
	try, err := s.tryToken(ctx, token)
	if err != nil {
		return store.User{}, err
	}
	if !domain.ValidTokenFormat(token) {
		return store.User{}, domain.Errorf(domain.CodeInvalidToken, "this link is not valid")
	}
	user, err := s.Store.PasswordTokenUser(ctx, domain.HashToken(token))
	try.settle(err)
	return user, err
}

// setPasswordByToken consumes a set-password link.
func (s *Server) setPasswordByToken(ctx context.Context, token, password string) (userID string, err error) {
	try, err := s.tryToken(ctx, token)
	if err != nil {
		return "", err
	}
	if !domain.ValidTokenFormat(token) {
		return "", domain.Errorf(domain.CodeInvalidToken, "this link is not valid")
	}
	hash, err := hashPassword(password, "")
	if err != nil {
		try.settle(nil) // the token was not tried
		return "", err
	}
	userID, err = s.Store.SetPasswordWithToken(ctx, domain.HashToken(token), hash)
	try.settle(err)
	return userID, err
}

type tokenRequest struct {
	Token string `json:"token"`
}

func (s *Server) lookupInvitation(c *gin.Context) {
	var req tokenRequest
	if err := decodeJSON(c, &req); err != nil {
		writeError(c, err)
		return
	}
	view, err := s.viewInvitation(c, req.Token)
	if err != nil {
		writeError(c, err)
		return
	}
	inv, ic := view.Invitation, view.Context
	var inviter any
	if ic.InviterName != "" || inv.InviterID != nil {
		inviter = gin.H{"name": ic.InviterName}
	}
	c.JSON(http.StatusOK, gin.H{
		"status":          view.Status,
		"name":            inv.Name,
		"email_hint":      domain.EmailHint(inv.Email),
		"organization":    gin.H{"name": ic.OrganizationName},
		"inviter":         inviter,
		"role":            inv.Role,
		"expires_at":      inv.ExpiresAt,
		"existing_user":   view.ExistingUser,
		"redirect_url":    inv.RedirectURL,
		"invitation_id":   inv.ID,
		"organization_id": inv.OrganizationID,
	})
}

type acceptRequest struct {
	Token    string  `json:"token"`
	Name     string  `json:"name"`
	Password *string `json:"password"`
}

func (s *Server) acceptInvitation(c *gin.Context) {
	var req acceptRequest
	if err := decodeJSON(c, &req); err != nil {
		writeError(c, err)
		return
	}
	password := ""
	if req.Password != nil {
		password = *req.Password
	}
	out, err := s.acceptByToken(c, req.Token, req.Name, password)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{
		"status":        domain.StatusAccepted,
		"user_id":       out.UserID,
		"existing_user": out.ExistingUser,
		"password_set":  out.PasswordSet,
		"redirect_url":  out.RedirectURL,
	})
}

type setPasswordRequest struct {
	Token    string `json:"token"`
	Password string `json:"password"`
}

func (s *Server) setPassword(c *gin.Context) {
	var req setPasswordRequest
	if err := decodeJSON(c, &req); err != nil {
		writeError(c, err)
		return
	}
	userID, err := s.setPasswordByToken(c, req.Token, req.Password)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "password_set", "user_id": userID})
}

// Password rules, shown on the set-password page too.
const (
	MinPasswordLength = 10
	MaxPasswordBytes  = 72 // bcrypt ignores anything longer
)

// hashPassword checks the password against the rules and hashes it with bcrypt.
func hashPassword(password, email string) ([]byte, error) {
	weak := func(why string) error {
		return domain.Errorf(domain.CodeWeakPassword, "the password %s", why).
			WithDetail("min_length", MinPasswordLength).WithDetail("max_bytes", MaxPasswordBytes)
	}
	switch {
	case utf8.RuneCountInString(password) < MinPasswordLength:
		return nil, weak("must be at least 10 characters long")
	case len(password) > MaxPasswordBytes:
		return nil, weak("must be at most 72 bytes long")
	case !utf8.ValidString(password):
		return nil, weak("must be valid UTF-8 text")
	case strings.TrimSpace(password) == "":
		return nil, weak("must not be only spaces")
	case strings.Count(password, string([]rune(password)[:1])) == utf8.RuneCountInString(password):
		return nil, weak("must not be one character repeated")
	case email != "" && strings.EqualFold(password, email):
		return nil, weak("must not be your e-mail address")
	}
	return bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
}
