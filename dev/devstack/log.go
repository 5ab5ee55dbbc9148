package devstack

import (
	"context"
	"log/slog"
	"sync/atomic"

	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
)

// serverLogger adapts slog to the server's logger. The server is chatty at
// info level, so only warnings and errors pass. Once the stack is stopping
// (stopping set), its warnings and errors go at debug level: its own system
// workers and clients warn about every connection the shutdown closes under
// them, and a workflow task a timer adds in the last instant fails as
// Unavailable (a demo stopped with Ctrl-C printed 13–14 such warnings,
// and at times that error). None of them is news to whoever stopped it;
// -log-level debug still shows them.
type serverLogger struct {
	log      *slog.Logger
	stopping *atomic.Bool
}

var _ log.Logger = serverLogger{}

func (s serverLogger) Debug(string, ...tag.Tag)          {}
func (s serverLogger) Info(string, ...tag.Tag)           {}
func (s serverLogger) Warn(msg string, tags ...tag.Tag)  { s.emit(s.level(slog.LevelWarn), msg, tags) }
func (s serverLogger) Error(msg string, tags ...tag.Tag) { s.emit(s.level(slog.LevelError), msg, tags) }
func (s serverLogger) DPanic(msg string, tags ...tag.Tag) {
	s.emit(s.level(slog.LevelError), msg, tags)
}
func (s serverLogger) Panic(msg string, tags ...tag.Tag) { s.emit(s.level(slog.LevelError), msg, tags) }
func (s serverLogger) Fatal(msg string, tags ...tag.Tag) { s.emit(s.level(slog.LevelError), msg, tags) }
func (s serverLogger) SLog() *slog.Logger                { return s.log }

func (s serverLogger) emit(level slog.Level, msg string, tags []tag.Tag) {
	attrs := make([]slog.Attr, 0, len(tags)+1)
	attrs = append(attrs, slog.String("component", "temporal-server"))
	for _, t := range tags {
		attrs = append(attrs, slog.Any(t.Key(), t.Value()))
	}
	s.log.LogAttrs(context.Background(), level, msg, attrs...)
}

// level is the level a line of the server's at level l goes at.
func (s serverLogger) level(l slog.Level) slog.Level {
	if s.stopping != nil && s.stopping.Load() {
		return slog.LevelDebug
	}
	return l
}
