// Package changefeed follows a change feed on behalf of a cache shared by
// several processes: it polls the feed while the cache is used, at once on a
// notification, and not at all while the cache is idle, applies what the
// feed reports, and says whether the cache may be trusted, that is whether
// the last successful poll began less than the bound (MaxLag) ago.
//
// It is the loop behind variables' cache (ServiceConfig.Changes), with the
// same rules as apikey's Manager (Config.Changes): a change committed
// anywhere is applied within MaxLag; a feed that fails for longer makes the
// cache untrusted and cleared, so that readers read the store (and fail
// closed when it is down); after feedIdlePolls polls without a read the
// poller sleeps until a read or a notification wakes it, and the reads
// before its next poll has caught up are not served from the cache.
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
	Feed       Feed[T]         // required
	Lost       error           // the sentinel a Feed wraps when changes were lost
	Notes      <-chan struct{} // signals that changes may have been committed; nil: none
	Every      time.Duration   // poll interval while the cache is used; > 0, < MaxLag
	MaxLag     time.Duration   // the bound; > 0
	Invalidate func(T)         // drops one item from the cache
	Clear      func()          // drops the whole cache
	Log        *slog.Logger    // failures and recoveries; never nil
	What       string          // what is cached, for the log lines (e.g. "variables")
}

// Poller states: Use sets used; each poll moves used to unused, and unused
// to asleep after idlePolls polls without a Use.
const (
	used int32 = iota
	unused
	asleep
)

// idlePolls is how many polls in a row without a read put the poller to
// sleep; failLog how often a feed that keeps failing is logged.
const (
	idlePolls = 25
	failLog   = 10 * time.Second
)

// Follower polls a Feed in a goroutine of its own until Close. It is safe
// for concurrent use.
type Follower[T any] struct {
	cfg   Config[T]
	epoch time.Time
	trust atomic.Int64 // the cache is trusted while since(epoch) < trust
	state atomic.Int32
	wake  chan struct{}

	done context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup
	once sync.Once
}

// Start starts a Follower. Nothing is trusted before its first poll.
func Start[T any](cfg Config[T]) *Follower[T] {
	f := &Follower[T]{cfg: cfg, epoch: time.Now(), wake: make(chan struct{}, 1)}
	f.done, f.stop = context.WithCancel(context.Background())
	f.wg.Add(1)
	go f.loop()
	return f
}

// Use records a read of the cache, and wakes the poller if it sleeps. It
// costs one atomic load when the poller is awake.
func (f *Follower[T]) Use() {
	if f.state.Load() != used && f.state.Swap(used) == asleep {
		select {
		case f.wake <- struct{}{}:
		default:
		}
	}
}

// Trusted reports whether the cache may be served: the last successful
// poll began less than MaxLag ago (on the monotonic clock).
func (f *Follower[T]) Trusted() bool { return f.since() < f.trust.Load() }

// Close stops the poller and waits for it. Afterwards nothing is trusted.
func (f *Follower[T]) Close() {
	f.once.Do(func() {
		f.stop()
		f.wg.Wait()
		f.trust.Store(0)
	})
}

func (f *Follower[T]) since() int64 { return int64(time.Since(f.epoch)) }

func (f *Follower[T]) loop() {
	defer f.wg.Done()
	cfg := f.cfg
	timer := time.NewTimer(0) // the first poll at once
	defer timer.Stop()
	var (
		cursor             string
		failing, dropped   bool
		sleeping           bool
		failSince, lastLog time.Time
		failures, idle     int
	)
	for {
		var tick <-chan time.Time
		if !sleeping {
			tick = timer.C
		}
		select {
		case <-f.done.Done():
			return
		case <-tick:
		case <-cfg.Notes:
		case <-f.wake:
		}

		start := time.Now()
		startNano := f.since()
		ctx, cancel := context.WithTimeout(f.done, max(cfg.MaxLag, time.Second))
		changed, next, err := cfg.Feed(ctx, cursor)
		cancel()
		lost := cfg.Lost != nil && errors.Is(err, cfg.Lost) && next != ""
		switch {
		case err == nil || lost:
			if cursor == "" || lost {
				// What was cached before this position may predate changes
				// the feed will never report.
				cfg.Clear()
				if lost && !sleeping {
					cfg.Log.Warn(cfg.What+": change feed lost track of changes; cache dropped", "err", err)
				}
			}
			for _, c := range changed {
				cfg.Invalidate(c)
			}
			cursor = next
			f.trust.Store(startNano + int64(cfg.MaxLag))
			if failing {
				cfg.Log.Info(cfg.What+": change feed recovered", "down_for", time.Since(failSince).Round(time.Millisecond), "failed_polls", failures)
			}
			failing, failures, dropped = false, 0, false
		case f.done.Err() != nil:
			return
		default:
			failures++
			now := time.Now()
			if !failing {
				failing, failSince, lastLog = true, start, now
				cfg.Log.Warn(cfg.What+": change feed poll failed; retrying", "err", err)
			} else if now.Sub(lastLog) >= failLog {
				lastLog = now
				cfg.Log.Warn(cfg.What+": change feed still failing; retrying", "down_for", now.Sub(failSince).Round(time.Millisecond), "failed_polls", failures, "err", err)
			}
			if !dropped && f.since() >= f.trust.Load() {
				dropped = true
				cfg.Clear()
				cfg.Log.Warn(cfg.What+": change feed down for longer than its bound; cache dropped, reads go to the store", "bound", cfg.MaxLag)
			}
		}

		if sleeping {
			// Woken by a notification, or by a read (which set used and
			// left a token in wake).
			if f.state.Load() != used {
				continue
			}
			sleeping, idle = false, 0
			select {
			case <-f.wake:
			default:
			}
		} else if f.state.Swap(unused) == used {
			idle = 0
		} else if idle++; idle >= idlePolls && f.state.CompareAndSwap(unused, asleep) {
			sleeping = true
			continue
		}
		timer.Reset(cfg.Every)
	}
}
