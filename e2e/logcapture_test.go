package e2e

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"sync"
)

// The stack's loggers (API, worker, Temporal client) print errors to stderr and, while a
// test captures them (captureLogs), write everything to a buffer too, so that
// secrets_test.go can read what they said.

var logCapture struct {
	sync.Mutex
	level slog.LevelVar
	users int
	buf   bytes.Buffer
}

func init() { logCapture.level.Set(slog.LevelError + 100) } // off until captured

type captureWriter struct{}

func (captureWriter) Write(p []byte) (int, error) {
	logCapture.Lock()
	defer logCapture.Unlock()
	return logCapture.buf.Write(p)
}

// captureLogs starts capturing the stack's logs at debug level; the returned function stops
// and returns what was logged meanwhile.
func captureLogs() (stop func() string) {
	logCapture.Lock()
	start := logCapture.buf.Len()
	logCapture.users++
	logCapture.level.Set(slog.LevelDebug)
	logCapture.Unlock()
	return func() string {
		logCapture.Lock()
		defer logCapture.Unlock()
		out := logCapture.buf.String()[start:]
		if logCapture.users--; logCapture.users == 0 {
			logCapture.level.Set(slog.LevelError + 100)
			logCapture.buf.Reset()
		}
		return out
	}
}

// fanout sends each record to every handler that takes its level.
type fanout []slog.Handler

func (f fanout) Enabled(ctx context.Context, l slog.Level) bool {
	for _, h := range f {
		if h.Enabled(ctx, l) {
			return true
		}
	}
	return false
}

func (f fanout) Handle(ctx context.Context, r slog.Record) error {
	for _, h := range f {
		if h.Enabled(ctx, r.Level) {
			if err := h.Handle(ctx, r.Clone()); err != nil {
				return err
			}
		}
	}
	return nil
}

func (f fanout) WithAttrs(attrs []slog.Attr) slog.Handler {
	out := make(fanout, len(f))
	for i, h := range f {
		out[i] = h.WithAttrs(attrs)
	}
	return out
}

func (f fanout) WithGroup(name string) slog.Handler {
	out := make(fanout, len(f))
	for i, h := range f {
		out[i] = h.WithGroup(name)
	}
	return out
}

func quietLogger() *slog.Logger {
	return slog.New(fanout{
		slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}),
		slog.NewJSONHandler(captureWriter{}, &slog.HandlerOptions{Level: &logCapture.level}),
	})
}
