package devstack

import (
	"bytes"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
)

// TestServerQuietWhileStopping holds the server's warnings and errors at
// their levels while it runs, and at debug level once the stack is stopping:
// the connections its shutdown closes are no news to whoever stopped it.
func TestServerQuietWhileStopping(t *testing.T) {
	var out bytes.Buffer
	stopping := new(atomic.Bool)
	l := serverLogger{log: slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo})), stopping: stopping}

	l.Warn("running warning")
	l.Error("running error")
	stopping.Store(true)
	l.Warn("Failed to poll for task.")
	l.Error("service failures")

	got := out.String()
	if !strings.Contains(got, "level=WARN msg=\"running warning\"") {
		t.Errorf("a warning while running was not logged at WARN:\n%s", got)
	}
	if !strings.Contains(got, "level=ERROR msg=\"running error\"") {
		t.Errorf("an error while running was not logged at ERROR:\n%s", got)
	}
	if strings.Contains(got, "Failed to poll") || strings.Contains(got, "service failures") {
		t.Errorf("a line while stopping was logged above debug level:\n%s", got)
	}

	out.Reset()
	debug := serverLogger{log: slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug})), stopping: stopping}
	debug.Warn("Failed to poll for task.")
	if !strings.Contains(out.String(), "level=DEBUG") {
		t.Errorf("a warning while stopping is not kept at debug level: %q", out.String())
	}
}
