package api

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"

	"github.com/usherhq/usher/internal/domain"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/workflows"
)

// JoinSettings configure the join-request journey.
type JoinSettings struct {
	workflows.JoinSettings
	// SearchesPerMinute limits member searches and join requests per client address.
	SearchesPerMinute int
}

// joinService implements the join-request operations for the endpoints and pages.
type joinService struct{ s *Server }

func (s *Server) joins() joinService { return joinService{s} }

const maxMessageLength = 1000

func (j joinService) limit(clientIP string) error {
	if !j.s.limiter.allow(clientIP) {
		return domain.Errorf(domain.CodeRateLimited, "too many requests from your address; wait a minute and try again")
	}
	return nil
}

func (j joinService) searchMember(ctx context.Context, clientIP, email string) (MemberProfile, error) {
	if err := j.limit(clientIP); err != nil {
		return MemberProfile{}, err
	}
	normalized, err := domain.NormalizeEmail(email)
	if err != nil {
		return MemberProfile{}, err
	}
	m, err := j.s.Store.FindPublicMemberByEmail(ctx, normalized)
	if err != nil {
		return MemberProfile{}, err
	}
	return toMemberProfile(m), nil
}

func toMemberProfile(m store.PublicMember) MemberProfile {
	return MemberProfile{MemberID: m.MemberID, DisplayName: m.DisplayName, OrganizationName: m.OrganizationName,
		City: m.City, Bio: m.Bio, LogoURL: m.LogoURL}
}

func (j joinService) memberProfile(ctx context.Context, memberID string) (MemberProfile, error) {
	if !store.ValidID(memberID) {
		return MemberProfile{}, domain.Errorf(domain.CodeMemberNotFound, "no member with a public profile has that ID")
	}
	m, err := j.s.Store.GetPublicMember(ctx, memberID)
	if err != nil {
		return MemberProfile{}, err
	}
	return toMemberProfile(m), nil
}

func (j joinService) request(ctx context.Context, clientIP string, in JoinRequestInput) (JoinRequestView, error) {
	if err := j.limit(clientIP); err != nil {
		return JoinRequestView{}, err
	}
	name := strings.TrimSpace(in.Name)
	if name == "" {
		return JoinRequestView{}, invalidField("name", "is required")
	}
	if _, err := validName(name); err != nil {
		return JoinRequestView{}, err
	}
	email, err := domain.NormalizeEmail(in.Email)
	if err != nil {
		return JoinRequestView{}, err
	}
	message := strings.TrimSpace(in.Message)
	if utf8.RuneCountInString(message) > maxMessageLength || !utf8.ValidString(message) {
		return JoinRequestView{}, invalidField("message", "must be text of at most %d characters", maxMessageLength)
	}
	locale := in.Locale
	if locale == "" {
		locale = domain.DefaultLocale
	}
	if !domain.ValidLocale(locale) {
		return JoinRequestView{}, invalidField("locale", "must be a language tag such as \"en\"")
	}
	if !store.ValidID(in.MemberID) {
		return JoinRequestView{}, domain.Errorf(domain.CodeMemberNotFound, "no member with a public profile has that ID")
	}
	pm, err := j.s.Store.GetPublicMember(ctx, in.MemberID)
	if err != nil {
		return JoinRequestView{}, err
	}
	jr, created, err := j.s.Store.CreateJoinRequest(ctx, store.NewJoinRequest{
		MemberID: pm.MemberID, OrganizationID: pm.OrganizationID, VisitorEmail: email, VisitorName: name,
		Message: message, Locale: locale, ConfirmWindow: time.Duration(domain.DefaultConfirmWindow) * time.Second,
	})
	if err != nil {
		return JoinRequestView{}, err
	}
	if created || jr.WorkflowStartedAt == nil {
		if err := workflows.StartJoinRequest(ctx, j.s.Temporal, j.s.Join.Input(jr.ID, jr.OrganizationID, jr.MemberID, jr.ConfirmExpiresAt)); err != nil {
			return JoinRequestView{}, domain.Errorf(domain.CodeTemporarilyUnavailable,
				"the request was stored but could not be started yet; it will be shortly").WithDetail("join_request_id", jr.ID)
		}
	}
	return j.s.joinView(ctx, jr.ID)
}

func (s *Server) joinView(ctx context.Context, id string) (JoinRequestView, error) {
	c, err := s.Store.GetJoinRequestContext(ctx, id)
	if err != nil {
		return JoinRequestView{}, err
	}
	return toJoinView(c), nil
}

func toJoinView(c store.JoinRequestContext) JoinRequestView {
	jr, m := c.Request, c.Member
	memberName := m.DisplayName
	if memberName == "" {
		memberName = m.Name
	}
	return JoinRequestView{
		ID: jr.ID, Status: string(jr.Status), VisitorName: jr.VisitorName, VisitorEmail: jr.VisitorEmail,
		Message: jr.Message, MemberName: memberName, OrganizationName: m.OrganizationName, LogoURL: m.LogoURL,
		Locale: jr.Locale, CreatedAt: jr.CreatedAt, DecideBy: jr.DecideBy,
	}
}

func (j joinService) view(ctx context.Context, token, purpose string) (JoinRequestView, error) {
	try, err := j.s.tryToken(ctx, token)
	if err != nil {
		return JoinRequestView{}, err
	}
	if !domain.ValidTokenFormat(token) {
		return JoinRequestView{}, domain.Errorf(domain.CodeInvalidToken, "this link is not valid")
	}
	c, err := j.s.Store.FindJoinRequestByToken(ctx, domain.HashToken(token), purpose)
	try.settle(err)
	if err != nil {
		return JoinRequestView{}, err
	}
	return toJoinView(c), nil
}

func (j joinService) confirm(ctx context.Context, token string) (JoinRequestView, error) {
	v, err := j.view(ctx, token, store.PurposeConfirm)
	if err != nil {
		return v, err
	}
	if err := j.s.updateJoinRequest(ctx, v.ID, domain.JoinActionConfirm, nil); err != nil {
		return v, err
	}
	return j.s.joinView(ctx, v.ID)
}

func (j joinService) decide(ctx context.Context, token, decision, role string) (JoinRequestView, error) {
	var action domain.JoinAction
	switch decision {
	case "approve":
		action = domain.JoinActionApprove
	case "reject":
		action = domain.JoinActionReject
	default:
		return JoinRequestView{}, invalidField("decision", `must be "approve" or "reject"`)
	}
	v, err := j.view(ctx, token, store.PurposeDecide)
	if err != nil {
		return v, err
	}
	if action == domain.JoinActionApprove && role != "" && !slices.Contains(JoinRoles, role) {
		return JoinRequestView{}, invalidField("role", "must be one of %v", JoinRoles)
	}
	var arg any
	if action == domain.JoinActionApprove {
		arg = workflows.ApproveRequest{Role: role}
	}
	if err := j.s.updateJoinRequest(ctx, v.ID, action, arg); err != nil {
		return v, err
	}
	return j.s.joinView(ctx, v.ID)
}

// updateJoinRequest asks the join request's workflow to act; the status in MySQL is
// checked first only to spare Temporal requests that cannot succeed.
func (s *Server) updateJoinRequest(ctx context.Context, id string, action domain.JoinAction, arg any) error {
	jr, err := s.Store.GetJoinRequest(ctx, id)
	if err != nil {
		return err
	}
	if err := domain.CheckJoinAction(jr.Status, action); err != nil {
		return err
	}
	var args []any
	if arg != nil {
		args = []any{arg}
	}
	err = s.runUpdate(ctx, workflows.JoinRequestWorkflowID(id), string(action), nil, nil, args...)
	if err != nil {
		return explainWorkflowFailure(err, func() error {
			if jr, getErr := s.Store.GetJoinRequest(ctx, id); getErr == nil {
				return domain.CheckJoinAction(jr.Status, action)
			}
			return nil
		})
	}
	return nil
}

// ipLimiter is a token bucket per client address, forgotten after a quiet while.
type ipLimiter struct {
	mu      sync.Mutex
	perMin  int
	buckets map[string]*rate.Limiter
	seen    map[string]time.Time
	swept   time.Time
}

func newIPLimiter(perMinute int) *ipLimiter {
	if perMinute <= 0 {
		perMinute = 20
	}
	return &ipLimiter{perMin: perMinute, buckets: map[string]*rate.Limiter{}, seen: map[string]time.Time{}}
}

func (l *ipLimiter) allow(ip string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if now.Sub(l.swept) > 10*time.Minute {
		for k, t := range l.seen {
			if now.Sub(t) > 10*time.Minute {
				delete(l.seen, k)
				delete(l.buckets, k)
			}
		}
		l.swept = now
	}
	b, ok := l.buckets[ip]
	if !ok {
		b = rate.NewLimiter(rate.Every(time.Minute/time.Duration(l.perMin)), l.perMin/2+1)
		l.buckets[ip] = b
	}
	l.seen[ip] = now
	return b.AllowN(now, 1)
}

// JSON endpoints.

type memberSearchRequest struct {
	Email string `json:"email"`
}

func (s *Server) searchMemberJSON(c *gin.Context) {
	var req memberSearchRequest
	if err := decodeJSON(c, &req); err != nil {
		writeError(c, err)
		return
	}
	p, err := s.searchMember(c, c.ClientIP(), req.Email)
	if err != nil {
		if domain.ErrorCode(err) == domain.CodeRateLimited {
			c.Header("Retry-After", "60")
		}
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, memberProfileJSON(p))
}

func memberProfileJSON(p MemberProfile) gin.H {
	return gin.H{"member_id": p.MemberID, "display_name": p.DisplayName, "city": p.City, "bio": p.Bio,
		"organization": gin.H{"name": p.OrganizationName, "logo_url": p.LogoURL}}
}

type createJoinRequestRequest struct {
	MemberID string `json:"member_id"`
	Name     string `json:"name"`
	Email    string `json:"email"`
	Message  string `json:"message"`
	Locale   string `json:"locale"`
}

func (s *Server) createJoinRequestJSON(c *gin.Context) {
	var req createJoinRequestRequest
	if err := decodeJSON(c, &req); err != nil {
		writeError(c, err)
		return
	}
	v, err := s.requestToJoin(c, c.ClientIP(), JoinRequestInput(req))
	if err != nil {
		if domain.ErrorCode(err) == domain.CodeRateLimited {
			c.Header("Retry-After", "60")
		}
		writeError(c, err)
		return
	}
	c.JSON(http.StatusAccepted, gin.H{"id": v.ID, "status": v.Status})
}

func (s *Server) confirmJoinRequestJSON(c *gin.Context) {
	var req tokenRequest
	if err := decodeJSON(c, &req); err != nil {
		writeError(c, err)
		return
	}
	v, err := s.confirmJoinRequest(c, req.Token)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"id": v.ID, "status": v.Status})
}

type decideRequest struct {
	Token    string `json:"token"`
	Decision string `json:"decision"`
	Role     string `json:"role"`
}

func (s *Server) decideJoinRequestJSON(c *gin.Context) {
	var req decideRequest
	if err := decodeJSON(c, &req); err != nil {
		writeError(c, err)
		return
	}
	v, err := s.decideJoinRequest(c, req.Token, req.Decision, req.Role)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"id": v.ID, "status": v.Status})
}

// joinRequestJSON is the apps' view of a join request.
type joinRequestJSON struct {
	ID               string            `json:"id"`
	Status           domain.JoinStatus `json:"status"`
	StatusReason     *string           `json:"status_reason"`
	MemberID         string            `json:"member_id"`
	OrganizationID   string            `json:"organization_id"`
	VisitorEmail     string            `json:"visitor_email"`
	VisitorName      string            `json:"visitor_name"`
	Message          string            `json:"message"`
	Locale           string            `json:"locale"`
	Role             *string           `json:"role"`
	UserID           *string           `json:"user_id"`
	ConfirmExpiresAt time.Time         `json:"confirm_expires_at"`
	DecideBy         *time.Time        `json:"decide_by"`
	CreatedAt        time.Time         `json:"created_at"`
	UpdatedAt        time.Time         `json:"updated_at"`
	ConfirmedAt      *time.Time        `json:"confirmed_at"`
	DecidedAt        *time.Time        `json:"decided_at"`
}

func toJoinRequestJSON(jr store.JoinRequest) joinRequestJSON {
	return joinRequestJSON{
		ID: jr.ID, Status: jr.Status, StatusReason: jr.StatusReason, MemberID: jr.MemberID, OrganizationID: jr.OrganizationID,
		VisitorEmail: jr.VisitorEmail, VisitorName: jr.VisitorName, Message: jr.Message, Locale: jr.Locale, Role: jr.Role,
		UserID: jr.UserID, ConfirmExpiresAt: jr.ConfirmExpiresAt, DecideBy: jr.DecideBy, CreatedAt: jr.CreatedAt,
		UpdatedAt: jr.UpdatedAt, ConfirmedAt: jr.ConfirmedAt, DecidedAt: jr.DecidedAt,
	}
}

func (s *Server) listJoinRequests(c *gin.Context) {
	var f store.JoinRequestFilter
	if raw := c.Query("status"); raw != "" {
		if !domain.JoinStatus(raw).Valid() {
			writeError(c, invalidField("status", "must be one of %v", domain.JoinStatuses))
			return
		}
		f.Status = domain.JoinStatus(raw)
	}
	if raw := c.Query("member_id"); raw != "" {
		if !store.ValidID(raw) {
			writeError(c, invalidField("member_id", "is not a user ID"))
			return
		}
		f.MemberID = raw
	}
	pg, err := pageRequest(c)
	if err != nil {
		writeError(c, err)
		return
	}
	f.Limit, f.AfterID = pg.Limit+1, pg.After
	rows, err := s.Store.ListJoinRequests(c, f)
	if err != nil {
		writeError(c, err)
		return
	}
	writePage(c, pg, rows, func(jr store.JoinRequest) string { return jr.ID }, toJoinRequestJSON)
}

func (s *Server) loadJoinRequest(c *gin.Context) (store.JoinRequest, error) {
	id := c.Param("id")
	if !store.ValidID(id) {
		return store.JoinRequest{}, domain.Errorf(domain.CodeJoinRequestNotFound, "no join request with id %q", id)
	}
	return s.Store.GetJoinRequest(c, id)
}

func (s *Server) getJoinRequest(c *gin.Context) {
	jr, err := s.loadJoinRequest(c)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, toJoinRequestJSON(jr))
}

type approveRequest struct {
	Role string `json:"role"`
}

func (s *Server) actOnJoinRequest(action domain.JoinAction) gin.HandlerFunc {
	return func(c *gin.Context) {
		jr, err := s.loadJoinRequest(c)
		if err != nil {
			writeError(c, err)
			return
		}
		var arg any
		if action == domain.JoinActionApprove {
			var req approveRequest
			if err := decodeJSON(c, &req); err != nil && !isEmptyBody(err) {
				writeError(c, err)
				return
			}
			if req.Role != "" && !slices.Contains(JoinRoles, req.Role) {
				writeError(c, invalidField("role", "must be one of %v", JoinRoles))
				return
			}
			arg = workflows.ApproveRequest{Role: req.Role}
		}
		if err := s.updateJoinRequest(c, jr.ID, action, arg); err != nil {
			writeError(c, err)
			return
		}
		if jr, err = s.Store.GetJoinRequest(c, jr.ID); err != nil {
			writeError(c, err)
			return
		}
		c.JSON(http.StatusOK, toJoinRequestJSON(jr))
	}
}
