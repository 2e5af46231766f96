// Package faillog keeps a run of failures from flooding a log. While a
// database is down, every request that needs it fails; logging each one (a
// thousand lines a second per instance) buries the first cause and costs
// disk and CPU when they are scarcest. A Log writes instead:
//
//   - the first failure of a run at once, at Error level, with its cause;
//   - then at most one Error line per interval, counting the failures since
//     the last line and giving the latest cause (which may differ);
//   - and, once a whole interval has passed without a failure, one Info
//     line closing the run with its total and how long it lasted.
//
// keyflow's middleware and HTTP handlers log their 503s through it.
package faillog

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// DefaultInterval is the interval of New when given 0.
const DefaultInterval = 10 * time.Second

// Log aggregates the failures of one kind (one message). It is safe for
// concurrent use. Make one with New.
type Log struct {
	msg      string
	interval time.Duration

	mu       sync.Mutex
	logger   *slog.Logger // of the latest failure
	running  bool
	first    time.Time
	last     time.Time
	total    int64
	pending  int64 // failures since the last line
	lastArgs []any
	timer    *time.Timer
}

// New returns a Log whose lines say msg. interval 0 is DefaultInterval; a
// negative interval logs every failure (no aggregation).
func New(msg string, interval time.Duration) *Log {
	if interval == 0 {
		interval = DefaultInterval
	}
	return &Log{msg: msg, interval: interval}
}

// Failure records one failure; args are slog key-value pairs (the cause
// under "err"). The first failure of a run is logged on logger at once;
// later ones are counted for the next summary line.
func (l *Log) Failure(ctx context.Context, logger *slog.Logger, args ...any) {
	if l.interval < 0 {
		logger.ErrorContext(ctx, l.msg, args...)
		return
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.logger, l.last = logger, now
	l.total++
	if l.running {
		l.pending++
		l.lastArgs = args
		return
	}
	l.running, l.first, l.total, l.pending = true, now, 1, 0
	logger.ErrorContext(ctx, l.msg, append(args, "repeats", "counted, logged at most every "+l.interval.String())...)
	l.timer = time.AfterFunc(l.interval, l.tick)
}

// tick writes the summary of the last interval, or closes the run when
// the interval had no failure.
func (l *Log) tick() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pending > 0 {
		args := append([]any{"repeated", l.pending, "failing_for", time.Since(l.first).Round(time.Millisecond)}, l.lastArgs...)
		l.logger.Error(l.msg, args...)
		l.pending, l.lastArgs = 0, nil
		l.timer.Reset(l.interval)
		return
	}
	l.logger.Info(l.msg+": no failure since", "last_failure_ago", time.Since(l.last).Round(time.Millisecond),
		"failures", l.total, "lasted", l.last.Sub(l.first).Round(time.Millisecond))
	l.running = false
}
