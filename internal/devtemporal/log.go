package devtemporal

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"

	tlog "go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
)

// fatalPanic is what the server logger panics with when the Temporal server
// calls Fatal/Panic while Start is still running (e.g. a gRPC listener could
// not bind its port). Start recovers it and turns it into an error instead of
// letting the process exit.
type fatalPanic struct{ msg string }

func (f fatalPanic) Error() string { return "temporal server: " + f.msg }

// serverLogger adapts a *slog.Logger to Temporal's log.Logger interface.
//
// Temporal's own zap logger calls os.Exit on Fatal. That is unacceptable for
// an in-process server (it would kill `usher dev` or a test binary), so:
//   - while Start is running (starting==true) Fatal/Panic log and then panic
//     with fatalPanic, which Start recovers (fx runs constructors and OnStart
//     hooks on the goroutine that calls Start);
//   - afterwards they are only logged at error level.
//
// Once the server is stopped the logger drops everything: in v1.32.1 a few
// internal SDK workers of the worker service (scanners) outlive Stop and keep
// retrying their polls against the closed frontend, which would otherwise log
// "Failed to poll"/"network dial error" warnings for the rest of the process.
type serverLogger struct {
	log   *slog.Logger // nil means discard
	state *loggerState
	tags  []tag.Tag
}

type loggerState struct {
	starting atomic.Bool // Start is running: Fatal/Panic panic
	stopped  atomic.Bool // Stop was called: drop everything
}

var (
	_ tlog.Logger     = (*serverLogger)(nil)
	_ tlog.WithLogger = (*serverLogger)(nil)
)

func (l *serverLogger) Debug(msg string, tags ...tag.Tag) { l.emit(slog.LevelDebug, msg, tags) }
func (l *serverLogger) Info(msg string, tags ...tag.Tag)  { l.emit(slog.LevelInfo, msg, tags) }
func (l *serverLogger) Warn(msg string, tags ...tag.Tag)  { l.emit(slog.LevelWarn, msg, tags) }
func (l *serverLogger) Error(msg string, tags ...tag.Tag) { l.emit(slog.LevelError, msg, tags) }
func (l *serverLogger) DPanic(msg string, tags ...tag.Tag) {
	l.emit(slog.LevelError, msg, tags)
}
func (l *serverLogger) Panic(msg string, tags ...tag.Tag) { l.fatal(msg, tags) }
func (l *serverLogger) Fatal(msg string, tags ...tag.Tag) { l.fatal(msg, tags) }

func (l *serverLogger) With(tags ...tag.Tag) tlog.Logger {
	all := make([]tag.Tag, 0, len(l.tags)+len(tags))
	all = append(all, l.tags...)
	all = append(all, tags...)
	return &serverLogger{log: l.log, state: l.state, tags: all}
}

func (l *serverLogger) fatal(msg string, tags []tag.Tag) {
	l.emit(slog.LevelError, msg, tags)
	if l.state.starting.Load() {
		detail := msg
		for _, t := range append(append([]tag.Tag{}, l.tags...), tags...) {
			if t.Key() == "error" || t.Key() == "address" || t.Key() == "service" {
				detail += fmt.Sprintf(" %s=%v", t.Key(), t.Value())
			}
		}
		panic(fatalPanic{msg: detail})
	}
}

func (l *serverLogger) emit(level slog.Level, msg string, tags []tag.Tag) {
	if l.log == nil || l.state.stopped.Load() {
		return
	}
	ctx := context.Background()
	if !l.log.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, 0, len(l.tags)+len(tags))
	for _, t := range l.tags {
		attrs = append(attrs, slog.Any(t.Key(), t.Value()))
	}
	for _, t := range tags {
		attrs = append(attrs, slog.Any(t.Key(), t.Value()))
	}
	l.log.LogAttrs(ctx, level, msg, attrs...)
}
