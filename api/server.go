// Package api is Usher's HTTP API: Gin handlers that validate input, call the store or
// Temporal, and answer in one JSON shape, errors included.
package api

import (
	"context"
	_ "embed"
	"log/slog"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"go.temporal.io/sdk/client"

	"github.com/usherhq/usher/internal/domain"
	"github.com/usherhq/usher/internal/metrics"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/webhooks"
)

//go:embed openapi.yaml
var OpenAPIDocument []byte

// Server holds the API's dependencies.
type Server struct {
	Store    *store.Store
	Temporal client.Client
	Logger   *slog.Logger
	// Extra mounts further handlers (the development mailbox) at these exact paths.
	Extra map[string]http.Handler

	// ---- hosted pages (api/pages*.go) ----
	// PageSecret keys the pages' CSRF tokens and signed cookies. If empty, Handler makes a
	// random one, which is fine for one process; several instances behind one address
	// must share it (USHER_SECRET_KEY), or a form from one is refused by another.
	PageSecret []byte
	// TemplatesDir, if set, holds pages/<name>.html.tmpl files that replace the embedded
	// page templates (api/web/templates). Validate reports a broken one; Handler panics.
	TemplatesDir string
	// ---- end hosted pages ----
	// Join configures the join-request journey.
	Join JoinSettings
	// TrustedProxies are the addresses whose X-Forwarded-For is believed.
	TrustedProxies []string
	// TokenGuessesPerMinute limits failed uses of link tokens (unknown or malformed) per
	// client address and per token prefix (api/ratelimit.go); 0 means
	// DefaultTokenGuessesPerMinute.
	TokenGuessesPerMinute int
	// SMSEnabled says whether invitations may go by SMS (an SMS provider is configured).
	SMSEnabled bool
	// MailgunWebhookSigningKey verifies Mailgun's event webhooks at /v1/webhooks/mailgun;
	// "" turns the endpoint off (404 mailgun_webhooks_not_configured).
	MailgunWebhookSigningKey string
	// Metrics is the process's registry, served at /metrics; the API adds its HTTP metrics
	// and counts Mailgun webhooks. nil: a registry of the server's own.
	Metrics *metrics.Metrics
	// WebhookSealer encrypts the signing secrets of webhook endpoints (a key derived from
	// USHER_SECRET_KEY, shared with the worker); nil means endpoints cannot be registered.
	WebhookSealer *webhooks.Sealer

	metrics *httpMetrics
	limiter *ipLimiter
	tokens  *tokenGuard
	// mailgunWebhooks counts Mailgun webhooks, to prune their records now and then.
	mailgunWebhooks atomic.Uint64
}

// maxBodyBytes bounds every request body; invitations are small.
const maxBodyBytes = 64 << 10

// Handler builds the HTTP handler.
func (s *Server) Handler() http.Handler {
	gin.SetMode(gin.ReleaseMode)
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.Metrics == nil {
		s.Metrics = metrics.New()
	}
	s.metrics = newHTTPMetrics(s.Metrics.Registry)
	s.limiter = newIPLimiter(s.Join.SearchesPerMinute)
	s.tokens = newTokenGuard(s.TokenGuessesPerMinute)

	r := gin.New()
	// Client addresses (for rate limits) come from the connection unless trusted proxies
	// are configured: a forwarded-for header from anyone would let clients pick their own.
	_ = r.SetTrustedProxies(s.TrustedProxies)
	r.HandleMethodNotAllowed = true
	r.ContextWithFallback = true
	r.Use(s.observe, gin.CustomRecovery(func(c *gin.Context, recovered any) {
		s.Logger.ErrorContext(c, "panic serving request", "route", c.FullPath(), "panic", recovered)
		writeError(c, domain.Errorf(domain.CodeInternal, "internal error"))
	}), limitBody)
	r.NoRoute(func(c *gin.Context) { writeError(c, domain.Errorf(domain.CodeNotFound, "no such endpoint")) })
	r.NoMethod(func(c *gin.Context) {
		writeError(c, domain.Errorf(domain.CodeMethodNotAllowed, "method %s is not allowed here", c.Request.Method))
	})

	healthy := func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) }
	r.GET("/healthz", healthy)
	r.HEAD("/healthz", healthy)
	r.GET("/readyz", s.ready)
	r.HEAD("/readyz", s.ready)
	r.GET("/metrics", gin.WrapH(s.Metrics.Handler()))
	r.GET("/openapi.yaml", func(c *gin.Context) { c.Data(http.StatusOK, "application/yaml", OpenAPIDocument) })
	// The short link of SMS invitations leads to the same hosted page.
	shortLink := func(c *gin.Context) {
		c.Header("Referrer-Policy", "no-referrer")
		c.Header("Cache-Control", "no-store")
		c.Redirect(http.StatusFound, "/invite/"+url.PathEscape(c.Param("token")))
	}
	r.GET("/i/:token", shortLink)
	r.HEAD("/i/:token", shortLink)
	for path, h := range s.Extra {
		r.Any(path, gin.WrapH(h))
	}

	// Authenticated by Mailgun's signature, not by an API key (webhooks_mailgun.go).
	r.POST("/v1/webhooks/mailgun", s.mailgunWebhook)

	public := r.Group("/v1/public")
	public.POST("/invitations/lookup", s.lookupInvitation)
	public.POST("/invitations/accept", s.acceptInvitation)
	public.POST("/password", s.setPassword)

	s.registerPages(r) // hosted pages for the e-mail links (api/pages*.go)
	public.POST("/members/search", s.searchMemberJSON)
	public.POST("/join-requests", s.createJoinRequestJSON)
	public.POST("/join-requests/confirm", s.confirmJoinRequestJSON)
	public.POST("/join-requests/decide", s.decideJoinRequestJSON)

	v1 := r.Group("/v1", s.authenticate)
	v1.POST("/organizations", s.createOrganization)
	v1.GET("/organizations/:id", s.getOrganization)
	v1.GET("/users/:id", s.getUser)
	v1.PATCH("/users/:id", s.updateUser)
	v1.POST("/users", s.createPerson)
	v1.GET("/users", s.listPeople)
	v1.POST("/users/import", s.importPeople)
	v1.POST("/users/invite", s.invitePeople)
	v1.POST("/invitations/bulk", s.bulkInvitations)
	v1.GET("/batches/:id", s.getBatch)
	v1.POST("/invitations", s.createInvitation)
	v1.GET("/invitations", s.listInvitations)
	v1.GET("/invitations/:id", s.getInvitation)
	v1.POST("/invitations/:id/send", s.sendInvitation)
	v1.POST("/invitations/:id/resend", s.resendInvitation)
	v1.POST("/invitations/:id/renew", s.renewInvitation)
	v1.POST("/invitations/:id/revoke", s.revokeInvitation)
	v1.GET("/join-requests", s.listJoinRequests)
	v1.GET("/join-requests/:id", s.getJoinRequest)
	v1.POST("/join-requests/:id/approve", s.actOnJoinRequest(domain.JoinActionApprove))
	v1.POST("/join-requests/:id/reject", s.actOnJoinRequest(domain.JoinActionReject))
	v1.POST("/join-requests/:id/cancel", s.actOnJoinRequest(domain.JoinActionCancel))
	v1.POST("/webhook-endpoints", s.createWebhookEndpoint)
	v1.GET("/webhook-endpoints", s.listWebhookEndpoints)
	v1.GET("/webhook-endpoints/:id", s.getWebhookEndpoint)
	v1.DELETE("/webhook-endpoints/:id", s.disableWebhookEndpoint)
	v1.GET("/webhook-endpoints/:id/deliveries", s.listWebhookDeliveries)
	v1.GET("/webhook-endpoints/:id/deliveries/:delivery_id", s.getWebhookDelivery)
	return r
}

func (s *Server) ready(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c, 3*time.Second)
	defer cancel()
	checks := map[string]any{"mysql": "ok", "temporal": "ok"}
	healthy := true
	if err := s.Store.Ping(ctx); err != nil {
		checks["mysql"], healthy = "unreachable", false
	}
	if _, err := s.Temporal.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		checks["temporal"], healthy = "unreachable", false
	}
	if !healthy {
		writeError(c, &domain.Error{Code: domain.CodeTemporarilyUnavailable, Message: "a dependency is unreachable", Details: checks})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ok", "checks": checks})
}

// largeBodies are the routes that set a larger limit of their own.
var largeBodies = map[string]bool{"/v1/users/import": true, "/v1/invitations/bulk": true, "/v1/users/invite": true}

func limitBody(c *gin.Context) {
	if c.Request.Body != nil && !largeBodies[c.FullPath()] {
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxBodyBytes)
	}
	c.Next()
}
