// Package api is Usher's HTTP API: Gin handlers that validate input, call the store or
// Temporal, and answer in one JSON shape, errors included.
package api

import (
	"context"
	_ "embed"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.temporal.io/sdk/client"

	"github.com/usherhq/usher/internal/domain"
	"github.com/usherhq/usher/internal/store"
)

//go:embed openapi.yaml
var OpenAPIDocument []byte

// Server holds the API's dependencies.
type Server struct {
	Store    *store.Store
	Temporal client.Client
	Logger   *slog.Logger
	// Registry receives the API's metrics and is served at /metrics.
	Registry *prometheus.Registry
	// Extra mounts further handlers (the development mailbox) at these exact paths.
	Extra map[string]http.Handler

	metrics *httpMetrics
}

// maxBodyBytes bounds every request body; invitations are small.
const maxBodyBytes = 64 << 10

// Handler builds the HTTP handler.
func (s *Server) Handler() http.Handler {
	gin.SetMode(gin.ReleaseMode)
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.Registry == nil {
		s.Registry = prometheus.NewRegistry()
	}
	s.metrics = newHTTPMetrics(s.Registry)

	r := gin.New()
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
	r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{Registry: s.Registry})))
	r.GET("/openapi.yaml", func(c *gin.Context) { c.Data(http.StatusOK, "application/yaml", OpenAPIDocument) })
	for path, h := range s.Extra {
		r.Any(path, gin.WrapH(h))
	}

	public := r.Group("/v1/public")
	public.POST("/invitations/lookup", s.lookupInvitation)
	public.POST("/invitations/accept", s.acceptInvitation)
	public.POST("/password", s.setPassword)

	v1 := r.Group("/v1", s.authenticate)
	v1.POST("/organizations", s.createOrganization)
	v1.GET("/organizations/:id", s.getOrganization)
	v1.GET("/users/:id", s.getUser)
	v1.POST("/invitations", s.createInvitation)
	v1.GET("/invitations", s.listInvitations)
	v1.GET("/invitations/:id", s.getInvitation)
	v1.POST("/invitations/:id/send", s.sendInvitation)
	v1.POST("/invitations/:id/resend", s.resendInvitation)
	v1.POST("/invitations/:id/renew", s.renewInvitation)
	v1.POST("/invitations/:id/revoke", s.revokeInvitation)
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

func limitBody(c *gin.Context) {
	if c.Request.Body != nil {
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxBodyBytes)
	}
	c.Next()
}
