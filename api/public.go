package api

import (
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

type tokenRequest struct {
	Token string `json:"token"`
}

// resolveToken finds the invitation a link's token belongs to. A token of the wrong shape
// never reaches the database.
func (s *Server) resolveToken(c *gin.Context, token string) (store.TokenMatch, error) {
	if !domain.ValidTokenFormat(token) {
		return store.TokenMatch{}, domain.Errorf(domain.CodeInvalidToken, "this link is not valid")
	}
	match, err := s.Store.FindInvitationByToken(c, domain.HashToken(token))
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

func (s *Server) lookupInvitation(c *gin.Context) {
	var req tokenRequest
	if err := decodeJSON(c, &req); err != nil {
		writeError(c, err)
		return
	}
	match, err := s.resolveToken(c, req.Token)
	if err != nil {
		writeError(c, err)
		return
	}
	ic, err := s.Store.GetInvitationContext(c, match.Invitation.ID)
	if err != nil {
		writeError(c, err)
		return
	}
	existing, err := s.Store.UserExistsWithEmail(c, ic.Invitation.Email)
	if err != nil {
		writeError(c, err)
		return
	}
	inv := ic.Invitation
	var inviter any
	if ic.InviterName != "" || inv.InviterID != nil {
		inviter = gin.H{"name": ic.InviterName}
	}
	c.JSON(http.StatusOK, gin.H{
		"status":          effectiveStatus(inv, time.Now()),
		"name":            inv.Name,
		"email_hint":      domain.EmailHint(inv.Email),
		"organization":    gin.H{"name": ic.OrganizationName},
		"inviter":         inviter,
		"role":            inv.Role,
		"expires_at":      inv.ExpiresAt,
		"existing_user":   existing,
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
	name, err := validName(strings.TrimSpace(req.Name))
	if err != nil {
		writeError(c, err)
		return
	}
	match, err := s.resolveToken(c, req.Token)
	if err != nil {
		writeError(c, err)
		return
	}
	inv := match.Invitation
	if err := domain.CheckAction(effectiveStatus(inv, time.Now()), domain.ActionAccept); err != nil {
		writeError(c, err)
		return
	}

	attemptID := store.NewID()
	if req.Password != nil && *req.Password != "" {
		hash, err := hashPassword(*req.Password, inv.Email)
		if err != nil {
			writeError(c, err)
			return
		}
		if err := s.Store.StageCredentials(c, attemptID, inv.ID, hash); err != nil {
			writeError(c, err)
			return
		}
	}

	var result workflows.AcceptResult
	accept := workflows.AcceptRequest{DeliveryKey: match.DeliveryKey, AttemptID: attemptID, Name: name}
	if err := s.updateInvitation(c, inv.ID, workflows.UpdateAccept, false, &result, accept); err != nil {
		_ = s.Store.DiscardCredentials(c, attemptID)
		writeError(c, s.explainUpdateFailure(c, inv.ID, domain.ActionAccept, err))
		return
	}

	redirect := inv.RedirectURL
	if redirect == nil && result.ExistingUser {
		if org, err := s.Store.GetOrganization(c, inv.OrganizationID); err == nil {
			redirect = org.LoginURL
		}
	}
	c.JSON(http.StatusOK, gin.H{
		"status":        domain.StatusAccepted,
		"user_id":       result.UserID,
		"existing_user": result.ExistingUser,
		"password_set":  result.PasswordSet,
		"redirect_url":  redirect,
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
	if !domain.ValidTokenFormat(req.Token) {
		writeError(c, domain.Errorf(domain.CodeInvalidToken, "this link is not valid"))
		return
	}
	hash, err := hashPassword(req.Password, "")
	if err != nil {
		writeError(c, err)
		return
	}
	userID, err := s.Store.SetPasswordWithToken(c, domain.HashToken(req.Token), hash)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "password_set", "user_id": userID})
}

// Password rules, shown on the set-password page too.
const (
	minPasswordLength = 10
	maxPasswordBytes  = 72 // bcrypt ignores anything longer
)

// hashPassword checks the password against the rules and hashes it with bcrypt.
func hashPassword(password, email string) ([]byte, error) {
	weak := func(why string) error {
		return domain.Errorf(domain.CodeWeakPassword, "the password %s", why).
			WithDetail("min_length", minPasswordLength).WithDetail("max_bytes", maxPasswordBytes)
	}
	switch {
	case utf8.RuneCountInString(password) < minPasswordLength:
		return nil, weak("must be at least 10 characters long")
	case len(password) > maxPasswordBytes:
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
