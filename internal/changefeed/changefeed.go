// Package changefeed follows a change feed on behalf of a cache shared by
// several processes: it polls the feed while the cache is used, at once on a
// notification, and not at all while the cache is idle, applies what the
// feed reports, and says whether the cache may be trusted, that is whether
// the last successful poll began less than the bound (MaxLag) ago.
//
// It is the loop behind apikey's verification cache (Config.Changes) and
// variables' cache (ServiceConfig.Changes), with the same rules for both: a
// change committed anywhere is applied within MaxLag; a feed that fails for
// longer makes the cache untrusted and cleared, so that readers read the
// store (and fail closed when it is down); after idlePolls polls without a
// read the poller sleeps until a read or a notification wakes it (no timer,
// no CPU while idle), and the reads before its next poll has caught up are
// not served from the cache. The trust deadline is kept on the monotonic
// clock (or Config.Now), never on a coarse clock that a busy machine could
// hold back.
//
// What it logs (Config.Log), with What and Cache from the Config:
//
//	Warn  "<What>: change feed poll failed; retrying" err
//	Warn  "<What>: change feed still failing; retrying" down_for failed_polls err (every 10 s of an outage)
//	Warn  "<What>: change feed down for longer than its bound; <Cache> dropped, <Reads>" bound
//	Info  "<What>: change feed recovered" down_for failed_polls
//	Warn  "<What>: change feed lost track of changes; <Cache> dropped" err
//	Debug "<What>: change feed resumed after a pause longer than the log keeps; <Cache> dropped" err
package changefeed

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Feed returns what changed after cursor and the next cursor; cursor ""
// asks for the current position (and nothing changed). An error wrapping
// Config.Lost comes with a fresh, valid cursor: the changes since cursor
// are not all known.
type Feed[T any] func(ctx context.Context, cursor string) (changed []T, next string, err error)

// Config configures a Follower.
type Config[T any] struct {
	Feed       Feed[T]           // required
	Lost       error             // the sentinel a Feed wraps when changes were lost
	Notes      <-chan struct{}   // signals that changes may have been committed; nil: none
	Every      time.Duration     // poll interval while the cache is used; > 0, < MaxLag
	MaxLag     time.Duration     // the bound; > 0
	Invalidate func(changed []T) // drops these items from the cache
	Clear      func()            // drops the whole cache
	Log        *slog.Logger      // failures and recoveries; never nil
	What       string            // who logs, the prefix of the log lines (e.g. "variables")
	Cache      string            // what is cached, for the log lines (e.g. "variable cache")
	Reads      string            // what readers do while the feed is down (e.g. "reads go to the store")

	// Reset, if set, is called after Clear when the poller has taken a
	// fresh position (its first poll, and after changes were lost): what
	// was built from the store before that position must be built again.
	Reset func()

	// Now is the trust deadline's clock (a test's clock); nil: the
	// monotonic time since Start.
	Now func() time.Time
	// Polled, if set, is called after each poll, on the poller's
	// goroutine.
	Polled func(Poll)
}

// Poll describes one poll of the feed, for Config.Polled.
type Poll struct {
	Changed  int           // items reported changed
	Lost     bool          // the feed had lost track of changes (the cache was cleared)
	Lag      time.Duration // from the start of the latest successful poll (or Start) to the end of this one
	Duration time.Duration // how long the poll took
	Err      error         // nil, or why the poll failed (never a Lost error)
}

// Poller states: Use sets used; each poll moves used to unused, and unused
// to asleep after idlePolls polls without a Use. A Use that finds asleep
// wakes the poller.
const (
	used int32 = iota
	unused
	asleep
)

// idlePolls is how many polls in a row without a read put the poller to
// sleep (5 × MaxLag with a poll interval of MaxLag/5); failLog how often a
// feed that keeps failing is logged.
const (
	idlePolls = 25
	failLog   = 10 * time.Second
)

// Follower polls a Feed in a goroutine of its own until Close. It is safe
// for concurrent use.
type Follower[T any] struct {
	now   func() time.Time // Config.Now
	epoch time.Time        // the origin of clock without Now
	trust atomic.Int64     // the cache is trusted while clock() < trust
	state atomic.Int32     // used, unused or asleep
	wake  chan struct{}

	done context.Context // ends at Close; cancels a poll under way
	stop context.CancelFunc
	wg   sync.WaitGroup
	once sync.Once
}

// Start starts a Follower. Nothing is trusted before its first poll.
func Start[T any](cfg Config[T]) *Follower[T] {
	f := &Follower[T]{now: cfg.Now, epoch: time.Now(), wake: make(chan struct{}, 1)}
	f.done, f.stop = context.WithCancel(context.Background())
	f.wg.Add(1)
	go f.loop(cfg)
	return f
}

// Use records a read of the cache, and wakes the poller if it sleeps. It
// costs one atomic load when the poller is awake.
func (f *Follower[T]) Use() {
	if f.state.Load() != used {
		f.touch()
	}
}

func (f *Follower[T]) touch() {
	if f.state.Swap(used) == asleep {
		select {
		case f.wake <- struct{}{}:
		default:
		}
	}
}

// Trusted reports whether the cache may be served: the last successful
// poll began less than MaxLag ago, on the monotonic clock (about 20 ns to
// read) or Config.Now.
func (f *Follower[T]) Trusted() bool { return f.clock() < f.trust.Load() }

// Stop stops the poller and waits for it (a poll under way is cancelled).
// The cache stays trusted until MaxLag after the last successful poll
// began. Stop may be called more than once.
func (f *Follower[T]) Stop() {
	f.once.Do(func() {
		f.stop()
		f.wg.Wait()
	})
}

// Close stops the poller as Stop does; afterwards nothing is trusted.
func (f *Follower[T]) Close() {
	f.Stop()
	f.trust.Store(0)
}

// clock is the trust deadline's clock, in nanoseconds.
func (f *Follower[T]) clock() int64 {
	if f.now != nil {
		return f.now().UnixNano()
	}
	return int64(time.Since(f.epoch))
}

// loop reads the feed until Close. After each successful poll that started
// at s, every change committed before s has been applied (Invalidate), so
// the cache may be served until s+MaxLag (f.trust). When polls fail for
// longer than MaxLag, the cache is no longer trusted and is cleared.
//
// It polls every cfg.Every while the cache is used, at once on cfg.Notes,
// and not at all after idlePolls polls without a read: it then sleeps until
// a read or a notification wakes it. While it sleeps, the trust runs out,
// so the first reads after a pause go to the store until the poll that
// they trigger has caught up.
func (f *Follower[T]) loop(cfg Config[T]) {
	defer f.wg.Done()
	p := &poller[T]{f: f, cfg: cfg}
	timer := time.NewTimer(0) // the first poll at once
	defer timer.Stop()
	for p.wait(timer) && p.poll() {
		if p.schedule() {
			timer.Reset(cfg.Every)
		}
	}
}

// poller is what loop remembers from one poll to the next. Only the loop
// goroutine uses it.
type poller[T any] struct {
	f   *Follower[T]
	cfg Config[T]

	cursor string        // the feed's position after the last successful poll
	lastOK time.Duration // when the last successful poll began, since f.epoch (for Polled)

	// An outage: consecutive failed polls.
	failing   bool      // the last poll failed
	failSince time.Time // when the first failed poll began
	lastLog   time.Time // when the outage was last logged
	failures  int       // failed polls so far
	dropped   bool      // the cache has been dropped for this outage

	// Idleness: polls without a read.
	asleep bool // no timed polls until a read or notification
	idle   int  // polls in a row that saw no read
}

// wait blocks until the next poll is due: the timer fires (unless asleep),
// a notification arrives, or a read wakes the poller. It reports false
// when the Follower is closed.
func (p *poller[T]) wait(timer *time.Timer) bool {
	var tick <-chan time.Time
	if !p.asleep {
		tick = timer.C
	}
	select {
	case <-p.f.done.Done():
		return false
	case <-tick:
	case <-p.cfg.Notes:
	case <-p.f.wake:
	}
	return true
}

// poll reads the feed once and applies its answer. It reports false when
// the Follower was closed during the poll.
func (p *poller[T]) poll() bool {
	f, cfg := p.f, &p.cfg
	start := time.Now()
	startNano := f.clock()
	startMono := time.Since(f.epoch)
	// Derived from f.done: Close does not wait for a slow poll.
	ctx, cancel := context.WithTimeout(f.done, max(cfg.MaxLag, time.Second))
	changed, next, err := cfg.Feed(ctx, p.cursor)
	cancel()
	lost := cfg.Lost != nil && errors.Is(err, cfg.Lost) && next != ""
	switch {
	case err == nil || lost:
		p.apply(changed, next, startNano, lost, err)
		p.lastOK = startMono
		p.report(startMono, len(changed), lost, nil)
	case f.done.Err() != nil:
		return false
	default:
		p.fail(start, err)
		p.report(startMono, 0, false, err)
	}
	return true
}

// report calls cfg.Polled, if set, for a poll that began at start (since
// f.epoch).
func (p *poller[T]) report(start time.Duration, changed int, lost bool, err error) {
	if p.cfg.Polled == nil {
		return
	}
	end := time.Since(p.f.epoch)
	p.cfg.Polled(Poll{Changed: changed, Lost: lost, Lag: end - max(p.lastOK, 0), Duration: end - start, Err: err})
}

// apply forgets what changed, moves the cursor to next and extends the
// trust to MaxLag after the poll began (startNano); err is nil, or wraps
// cfg.Lost (lost).
func (p *poller[T]) apply(changed []T, next string, startNano int64, lost bool, err error) {
	cfg := &p.cfg
	if p.cursor == "" || lost {
		// What was cached before this position may predate changes that
		// the feed will never report: forget it all.
		cfg.Clear()
		switch {
		case lost && p.asleep:
			// Expected after a long pause: nothing cached was trusted
			// meanwhile anyway.
			cfg.Log.Debug(cfg.What+": change feed resumed after a pause longer than the log keeps; "+cfg.Cache+" dropped", "err", err)
		case lost:
			cfg.Log.Warn(cfg.What+": change feed lost track of changes; "+cfg.Cache+" dropped", "err", err)
		}
		if cfg.Reset != nil {
			cfg.Reset()
		}
	}
	if len(changed) > 0 {
		cfg.Invalidate(changed)
	}
	p.cursor = next
	p.f.trust.Store(startNano + int64(cfg.MaxLag))
	if p.failing {
		cfg.Log.Info(cfg.What+": change feed recovered", "down_for", time.Since(p.failSince).Round(time.Millisecond), "failed_polls", p.failures)
	}
	p.failing, p.failures, p.dropped = false, 0, false
}

// fail records a failed poll that began at start: it logs the outage's
// first failure and then one line every failLog, and clears the cache once
// the trust has run out.
func (p *poller[T]) fail(start time.Time, err error) {
	cfg := &p.cfg
	p.failures++
	now := time.Now()
	if !p.failing {
		p.failing, p.failSince, p.lastLog = true, start, now
		cfg.Log.Warn(cfg.What+": change feed poll failed; retrying", "err", err)
	} else if now.Sub(p.lastLog) >= failLog {
		p.lastLog = now
		cfg.Log.Warn(cfg.What+": change feed still failing; retrying", "down_for", now.Sub(p.failSince).Round(time.Millisecond), "failed_polls", p.failures, "err", err)
	}
	if !p.dropped && p.f.clock() >= p.f.trust.Load() {
		p.dropped = true
		cfg.Clear()
		cfg.Log.Warn(cfg.What+": change feed down for longer than its bound; "+cfg.Cache+" dropped, "+cfg.Reads, "bound", cfg.MaxLag)
	}
}

// schedule counts the polls without a read, falls asleep after idlePolls
// of them and wakes when a read has come. It reports whether the next
// timed poll is due (false: asleep).
func (p *poller[T]) schedule() bool {
	f := p.f
	if p.asleep {
		// Woken by a notification, or by a read (which set used and left
		// a token in wake).
		if f.state.Load() != used {
			return false
		}
		p.asleep, p.idle = false, 0
		select {
		case <-f.wake:
		default:
		}
		return true
	}
	if f.state.Swap(unused) == used {
		p.idle = 0
		return true
	}
	if p.idle++; p.idle >= idlePolls && f.state.CompareAndSwap(unused, asleep) {
		p.asleep = true
		return false
	}
	return true
}
