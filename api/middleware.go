package api

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/usherhq/usher/internal/domain"
)

const apiKeyIDKey = "usher.api_key_id"

// authenticate admits requests bearing a live API key.
func (s *Server) authenticate(c *gin.Context) {
	scheme, key, ok := strings.Cut(c.GetHeader("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(key) == "" {
		c.Header("WWW-Authenticate", `Bearer realm="usher"`)
		writeError(c, domain.Errorf(domain.CodeUnauthorized, "send an API key as Authorization: Bearer <key>"))
		return
	}
	id, err := s.Store.AuthenticateAPIKey(c, domain.HashToken(strings.TrimSpace(key)))
	if err != nil {
		if domain.ErrorCode(err) == domain.CodeUnauthorized {
			c.Header("WWW-Authenticate", `Bearer realm="usher"`)
		}
		writeError(c, err)
		return
	}
	c.Set(apiKeyIDKey, id)
	c.Next()
}

type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usher_http_requests_total", Help: "HTTP requests by route pattern, method and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "usher_http_request_duration_seconds", Help: "HTTP request latency by route pattern and method.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}, []string{"route", "method"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// observe logs and measures every request by its route pattern, never its raw path: paths
// of hosted pages carry tokens.
func (s *Server) observe(c *gin.Context) {
	start := time.Now()
	requestID := c.GetHeader("X-Request-ID")
	if requestID == "" || len(requestID) > 64 {
		buf := make([]byte, 8)
		_, _ = rand.Read(buf)
		requestID = hex.EncodeToString(buf)
	}
	c.Header("X-Request-ID", requestID)
	c.Next()

	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	method := c.Request.Method
	switch method {
	case "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS":
	default:
		method = "other"
	}
	status := c.Writer.Status()
	elapsed := time.Since(start)
	s.metrics.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	s.metrics.duration.WithLabelValues(route, method).Observe(elapsed.Seconds())

	level := slog.LevelInfo
	attrs := []any{"request_id", requestID, "method", method, "route", route, "status", status, "duration_ms", elapsed.Milliseconds()}
	if len(c.Errors) > 0 {
		level = slog.LevelError
		attrs = append(attrs, "error", c.Errors.Last().Error())
	}
	s.Logger.Log(c, level, "http request", attrs...)
}
