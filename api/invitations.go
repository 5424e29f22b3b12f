package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"go.temporal.io/sdk/client"

	"github.com/usherhq/usher/internal/domain"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/workflows"
)

// invitationJSON is the public shape of an invitation. It never carries a token.
type invitationJSON struct {
	ID             string          `json:"id"`
	Status         domain.Status   `json:"status"`
	Email          string          `json:"email"`
	Name           string          `json:"name"`
	OrganizationID string          `json:"organization_id"`
	Role           string          `json:"role"`
	InviterID      *string         `json:"inviter_id"`
	UserID         *string         `json:"user_id"`
	Locale         string          `json:"locale"`
	RedirectURL    *string         `json:"redirect_url"`
	Metadata       json.RawMessage `json:"metadata"`
	ExpiresIn      string          `json:"expires_in"`
	ExpiresAt      *time.Time      `json:"expires_at"`
	CreatedAt      time.Time       `json:"created_at"`
	UpdatedAt      time.Time       `json:"updated_at"`
	AcceptedAt     *time.Time      `json:"accepted_at"`
	RevokedAt      *time.Time      `json:"revoked_at"`
	FailureReason  *string         `json:"failure_reason"`
	Channel        string          `json:"channel"`
	BatchID        *string         `json:"batch_id"`
	Delivery       deliveryJSON    `json:"delivery"`
}

type deliveryJSON struct {
	Status    domain.DeliveryStatus `json:"status"`
	Attempts  int                   `json:"attempts"`
	LastError *string               `json:"last_error"`
}

func toInvitationJSON(inv store.Invitation) invitationJSON {
	metadata := json.RawMessage("{}")
	if inv.Metadata != nil {
		metadata = json.RawMessage(*inv.Metadata)
	}
	return invitationJSON{
		ID: inv.ID, Status: inv.Status, Email: inv.Email, Name: inv.Name, OrganizationID: inv.OrganizationID,
		Role: inv.Role, InviterID: inv.InviterID, UserID: inv.UserID, Locale: inv.Locale, RedirectURL: inv.RedirectURL,
		Metadata: metadata, ExpiresIn: inv.ExpiresIn().String(), ExpiresAt: inv.ExpiresAt, CreatedAt: inv.CreatedAt,
		UpdatedAt: inv.UpdatedAt, AcceptedAt: inv.AcceptedAt, RevokedAt: inv.RevokedAt, FailureReason: inv.FailureReason,
		Channel: inv.Channel, BatchID: inv.BatchID,
		Delivery: deliveryJSON{Status: inv.DeliveryStatus, Attempts: inv.DeliveryAttempts, LastError: inv.DeliveryLastError},
	}
}

type createInvitationRequest struct {
	Email          *string         `json:"email"`
	Name           string          `json:"name"`
	OrganizationID *string         `json:"organization_id"`
	Role           string          `json:"role"`
	InviterID      *string         `json:"inviter_id"`
	ExpiresIn      string          `json:"expires_in"`
	Locale         string          `json:"locale"`
	RedirectURL    *string         `json:"redirect_url"`
	Metadata       json.RawMessage `json:"metadata"`
	Send           *bool           `json:"send"`
}

const (
	maxNameLength     = 200
	maxMetadataBytes  = 8 << 10
	maxIdempotencyKey = 255
)

func (r createInvitationRequest) validate() (store.NewInvitation, error) {
	var in store.NewInvitation
	if r.Email == nil {
		return in, invalidField("email", "is required")
	}
	email, err := domain.NormalizeEmail(*r.Email)
	if err != nil {
		return in, err
	}
	if r.OrganizationID == nil || *r.OrganizationID == "" {
		return in, invalidField("organization_id", "is required")
	}
	if !store.ValidID(*r.OrganizationID) {
		return in, domain.Errorf(domain.CodeOrganizationNotFound, "no organization with id %q", *r.OrganizationID)
	}
	name, err := validName(strings.TrimSpace(r.Name))
	if err != nil {
		return in, err
	}
	role := r.Role
	if role == "" {
		role = domain.DefaultRole
	}
	if !domain.ValidRole(role) {
		return in, invalidField("role", "must be one of %v", domain.Roles).WithDetail("allowed", domain.Roles)
	}
	expiresIn, err := domain.ParseExpiresIn(r.ExpiresIn)
	if err != nil {
		return in, err
	}
	locale := r.Locale
	if locale == "" {
		locale = domain.DefaultLocale
	}
	if !domain.ValidLocale(locale) {
		return in, invalidField("locale", "must be a language tag such as \"en\" or \"pt-BR\"")
	}
	if r.RedirectURL != nil {
		if err := validRedirectURL(*r.RedirectURL); err != nil {
			return in, err
		}
	}
	if r.InviterID != nil && *r.InviterID == "" {
		return in, invalidField("inviter_id", "must be a user ID, or left out")
	}
	if r.InviterID != nil && !store.ValidID(*r.InviterID) {
		return in, domain.Errorf(domain.CodeInviterNotFound, "no user with id %q to be the inviter", *r.InviterID)
	}
	var metadata *string
	if len(r.Metadata) > 0 && string(r.Metadata) != "null" {
		// Kept as the client wrote it (compacted), so numbers keep their precision and keys
		// their order.
		var compact bytes.Buffer
		if r.Metadata[0] != '{' || json.Compact(&compact, r.Metadata) != nil {
			return in, invalidField("metadata", "must be a JSON object")
		}
		if compact.Len() > maxMetadataBytes {
			return in, invalidField("metadata", "must be at most %d bytes", maxMetadataBytes)
		}
		m := compact.String()
		metadata = &m
	}
	return store.NewInvitation{
		OrganizationID: *r.OrganizationID, Email: email, Name: name, Role: role, InviterID: r.InviterID,
		Locale: locale, RedirectURL: r.RedirectURL, Metadata: metadata, ExpiresIn: expiresIn,
		Draft: r.Send != nil && !*r.Send,
	}, nil
}

func validName(name string) (string, error) {
	if len(name) > maxNameLength {
		return "", invalidField("name", "must be at most %d bytes", maxNameLength)
	}
	if !utf8.ValidString(name) {
		return "", invalidField("name", "must be valid UTF-8 text")
	}
	return name, nil
}

func validRedirectURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || len(raw) > 2048 {
		return invalidField("redirect_url", "must be an absolute http(s) URL")
	}
	return nil
}

func (s *Server) createInvitation(c *gin.Context) {
	var req createInvitationRequest
	if err := decodeJSON(c, &req); err != nil {
		writeError(c, err)
		return
	}
	in, err := req.validate()
	if err != nil {
		writeError(c, err)
		return
	}
	var idem *store.IdempotencyKey
	if key := c.GetHeader("Idempotency-Key"); key != "" {
		if len(key) > maxIdempotencyKey {
			writeError(c, invalidField("Idempotency-Key", "must be at most %d characters", maxIdempotencyKey))
			return
		}
		canonical, _ := json.Marshal(in)
		idem = &store.IdempotencyKey{APIKeyID: c.GetString(apiKeyIDKey), Key: key, Request: canonical}
	}
	inv, created, err := s.Store.CreateInvitation(c, in, idem)
	if err != nil {
		writeError(c, err)
		return
	}
	if inv.WorkflowStartedAt == nil {
		if err := workflows.StartInvitation(c, s.Temporal, workflows.InvitationInputOf(inv)); err != nil {
			// The row is stored; the reconciler starts its workflow once Temporal is back.
			c.Error(err) //nolint:errcheck
			writeError(c, domain.Errorf(domain.CodeTemporarilyUnavailable,
				"the invitation was stored but could not be started yet; it will be sent shortly").WithDetail("invitation_id", inv.ID))
			return
		}
	}
	if !created {
		c.Header("Idempotent-Replayed", "true")
	}
	c.JSON(http.StatusCreated, toInvitationJSON(inv))
}

func (s *Server) getInvitation(c *gin.Context) {
	inv, err := s.loadInvitation(c)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, toInvitationJSON(inv))
}

func (s *Server) loadInvitation(c *gin.Context) (store.Invitation, error) {
	id := c.Param("id")
	if !store.ValidID(id) {
		return store.Invitation{}, domain.Errorf(domain.CodeInvitationNotFound, "no invitation with id %q", id)
	}
	return s.Store.GetInvitation(c, id)
}

func (s *Server) listInvitations(c *gin.Context) {
	var f store.InvitationFilter
	if raw := c.Query("status"); raw != "" {
		if !domain.Status(raw).Valid() {
			writeError(c, invalidField("status", "must be one of %v", domain.Statuses))
			return
		}
		f.Status = domain.Status(raw)
	}
	if raw := c.Query("email"); raw != "" {
		email, err := domain.NormalizeEmail(raw)
		if err != nil {
			writeError(c, err)
			return
		}
		f.Email = email
	}
	if raw := c.Query("organization_id"); raw != "" {
		if !store.ValidID(raw) {
			writeError(c, invalidField("organization_id", "is not an organization ID"))
			return
		}
		f.OrganizationID = raw
	}
	pg, err := pageRequest(c)
	if err != nil {
		writeError(c, err)
		return
	}
	f.Limit, f.AfterID = pg.Limit+1, pg.After
	rows, err := s.Store.ListInvitations(c, f)
	if err != nil {
		writeError(c, err)
		return
	}
	writePage(c, pg, rows, func(inv store.Invitation) string { return inv.ID }, toInvitationJSON)
}

func (s *Server) sendInvitation(c *gin.Context) {
	s.changeInvitation(c, domain.ActionSend, nil)
}

func (s *Server) resendInvitation(c *gin.Context) {
	s.changeInvitation(c, domain.ActionResend, nil)
}

func (s *Server) revokeInvitation(c *gin.Context) {
	s.changeInvitation(c, domain.ActionRevoke, nil)
}

type renewRequest struct {
	ExpiresIn string `json:"expires_in"`
}

// renewInvitation moves the expiry to expires_in from now; without a body, by the
// invitation's own expires_in.
func (s *Server) renewInvitation(c *gin.Context) {
	var req renewRequest
	if err := decodeJSON(c, &req); err != nil && !isEmptyBody(err) {
		writeError(c, err)
		return
	}
	var expiresIn time.Duration
	if req.ExpiresIn != "" {
		var err error
		if expiresIn, err = domain.ParseExpiresIn(req.ExpiresIn); err != nil {
			writeError(c, err)
			return
		}
	}
	s.changeInvitation(c, domain.ActionRenew, workflows.RenewRequest{ExpiresIn: expiresIn})
}

// changeInvitation asks the invitation's workflow to act and answers with the invitation as
// it stands afterwards. The workflow's validators have the last word; the check against
// MySQL first only spares Temporal requests that cannot succeed.
func (s *Server) changeInvitation(c *gin.Context, action domain.Action, arg any) {
	inv, err := s.loadInvitation(c)
	if err != nil {
		writeError(c, err)
		return
	}
	if err := domain.CheckAction(inv.Status, action); err != nil {
		writeError(c, err)
		return
	}
	if renew, ok := arg.(workflows.RenewRequest); ok && renew.ExpiresIn == 0 {
		arg = workflows.RenewRequest{ExpiresIn: inv.ExpiresIn()}
	}
	var args []any
	if arg != nil {
		args = []any{arg}
	}
	var reopen *workflows.InvitationInput
	if action == domain.ActionRenew && inv.Status == domain.StatusExpired {
		in := workflows.InvitationInputOf(inv)
		reopen = &in
	}
	if err := s.updateInvitation(c, inv.ID, string(action), reopen, nil, args...); err != nil {
		writeError(c, s.explainUpdateFailure(c, inv.ID, action, err))
		return
	}
	inv, err = s.Store.GetInvitation(c, inv.ID)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, toInvitationJSON(inv))
}

// updateInvitation runs an update on the invitation's workflow and waits for its outcome.
// A reopen input starts a new run first if the last one has ended (renewing an expired
// invitation).
func (s *Server) updateInvitation(ctx context.Context, invitationID, name string, reopen *workflows.InvitationInput, result any, args ...any) error {
	var start client.WithStartWorkflowOperation
	if reopen != nil {
		start = s.Temporal.NewWithStartWorkflowOperation(workflows.ReopenOptions(*reopen), workflows.InvitationWorkflow, *reopen)
	}
	return s.runUpdate(ctx, workflows.InvitationWorkflowID(invitationID), name, start, result, args...)
}

// explainUpdateFailure turns what Temporal said about an invitation into what the client
// should hear.
func (s *Server) explainUpdateFailure(ctx context.Context, invitationID string, action domain.Action, err error) error {
	return explainWorkflowFailure(err, func() error {
		inv, getErr := s.Store.GetInvitation(ctx, invitationID)
		if getErr != nil {
			return nil
		}
		return domain.CheckAction(inv.Status, action)
	})
}
