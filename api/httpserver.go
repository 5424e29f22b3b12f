package api

import (
	"log/slog"
	"net/http"
	"time"
)

// Timeouts and sizes of the HTTP server (NewHTTPServer). A client that sends its headers or
// its body too slowly (slowloris) is cut off; bodies are bounded by the handlers (64 KiB,
// larger for the bulk endpoints).
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 15 * time.Second
	WriteTimeout      = 45 * time.Second
	IdleTimeout       = 2 * time.Minute
	MaxHeaderBytes    = 32 << 10
)

// NewHTTPServer is the http.Server the API is served with; logger receives the server's
// own complaints (bad TLS handshakes, cut-off clients) at warning level.
func NewHTTPServer(handler http.Handler, logger *slog.Logger) *http.Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}
