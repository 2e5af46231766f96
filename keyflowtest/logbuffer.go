package keyflowtest

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
)

// LogBuffer is an io.Writer that keeps what is written to it, for tests that
// read a log: that an outage is logged once, or that no API key, master
// secret or variable value reaches the log. Its methods are safe for
// concurrent use, so a server's goroutines may log into it while the test
// reads it. The zero value is an empty buffer ready to use.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p; it never fails.
func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Lines returns everything written so far, split into lines, without the
// trailing newline; a single "" when nothing was written.
func (b *LogBuffer) Lines() []string {
	return strings.Split(strings.TrimSpace(b.String()), "\n")
}

// NewLogger returns a debug-level logger writing slog's text format to a
// new LogBuffer, and the buffer.
func NewLogger() (*slog.Logger, *LogBuffer) {
	buf := &LogBuffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}
