package apikey

import (
	"context"
	"errors"
	"time"
)

// ChangeFeed reports which keys changed in a store shared by several
// processes, so that each process's Manager drops what it cached about them.
// It is an optional capability of a store: set Config.Changes to use it. A
// store used by one process (a MemoryStore, an SQLite file opened by one
// server) needs none. Package apikey/sqlstore implements it on PostgreSQL and
// SQLite with a change-log table written by triggers in the same transaction
// as the change.
//
// Implementations must be safe for concurrent use.
type ChangeFeed interface {
	// Changes returns the hashes of the keys whose records were inserted,
	// deleted or changed (other than their usage counters) after the
	// position cursor, and the position to pass to the next call.
	//
	// cursor "" asks for the current position: Changes then returns no
	// hashes. Every change committed before the call began must be reported
	// by this call or an earlier one (since cursor), including changes whose
	// transactions commit out of order; a hash may be reported more than
	// once.
	//
	// If the changes since cursor cannot all be listed (it is so old that the
	// log was pruned past it), Changes returns an error wrapping
	// ErrChangesLost together with a fresh, valid position. Any other error
	// is a failure; the caller retries with the same cursor.
	Changes(ctx context.Context, cursor string) (changed []Hash, next string, err error)
}

// ChangeNotifier pushes word that a ChangeFeed may have changes to report,
// so that a Manager reads the feed at once instead of at its next poll
// (Config.ChangesNotifier). A notification is only a hint: the Manager still
// learns what changed from the feed, and keeps polling it, so a lost or late
// notification costs latency, never correctness. Package
// apikey/sqlstore/pgnotify implements it with PostgreSQL's LISTEN/NOTIFY.
//
// Implementations must be safe for concurrent use.
type ChangeNotifier interface {
	// Subscribe returns a channel that receives a value whenever changes
	// may have been committed since the subscriber last received one: when
	// a notification arrives, and when the notifier reconnects (it may have
	// missed notifications meanwhile). Signals are coalesced: the channel
	// holds at most one, and a sender never blocks. cancel ends the
	// subscription; the channel is not closed.
	Subscribe() (signals <-chan struct{}, cancel func())
}

// ErrChangesLost is returned (wrapped) by ChangeFeed.Changes when the changes
// since the given cursor are no longer all available. A Manager then drops
// its whole cache.
var ErrChangesLost = errors.New("apikey: changes since the cursor are no longer available")

// Defaults of the change feed settings in Config.
const (
	DefaultChangesMaxLag = time.Second
)

// feedLog is how often a failing feed logs while it keeps failing.
const feedLog = 10 * time.Second

// feedIdlePolls is how many polls in a row without a verification put the
// poller to sleep (5 × ChangesMaxLag with the default interval).
const feedIdlePolls = 25

// Poller states (Manager.feedState). Verify sets feedUsed; the poller moves
// feedUsed to feedUnused at each poll, and feedUnused to feedAsleep when it
// has seen feedIdlePolls polls without a verification. A Verify that finds
// feedAsleep wakes the poller.
const (
	feedUsed int32 = iota
	feedUnused
	feedAsleep
)

// feedTouch records a verification for the change feed's poller, and wakes
// it if it sleeps. Called only when the state is not feedUsed, so the hot
// path pays one atomic load.
func (m *Manager) feedTouch() {
	if m.feedState.Swap(feedUsed) == feedAsleep {
		select {
		case m.feedWake <- struct{}{}:
		default:
		}
	}
}

// feedLoop reads m.feed until Close. After each successful poll that
// started at time s, every change committed before s has been applied
// (Invalidate), so cached results may be served until s+maxLag (m.trust).
// When polls fail for longer than maxLag, cached results are no longer served
// (Verify checks m.trust) and the cache is dropped; verifications then read
// the store, and fail closed when it is down.
//
// It polls every `every` while verifications happen, at once when notes
// (the ChangeNotifier's subscription; nil without one) says that something
// changed, and not at all after feedIdlePolls polls without a verification:
// it then sleeps until a verification or a notification wakes it. While it
// sleeps, m.trust runs out, so the first verifications after a pause read
// the store until the poll that they trigger has caught up.
func (m *Manager) feedLoop(every, maxLag time.Duration, notes <-chan struct{}) {
	defer m.wg.Done()
	p := &feedPoller{m: m, maxLag: maxLag}
	timer := time.NewTimer(0) // the first poll at once
	defer timer.Stop()
	for p.wait(timer, notes) && p.poll() {
		if p.schedule() {
			timer.Reset(every)
		}
	}
}

// feedPoller is what feedLoop remembers from one poll to the next. Only the
// feedLoop goroutine uses it.
type feedPoller struct {
	m      *Manager
	maxLag time.Duration

	cursor string // the feed's position after the last successful poll

	// An outage: consecutive failed polls.
	failing   bool      // the last poll failed
	failSince time.Time // when the first failed poll began
	lastLog   time.Time // when the outage was last logged
	failures  int       // failed polls so far
	dropped   bool      // the cache has been dropped for this outage

	// Idleness: polls without a verification.
	asleep bool // no timed polls until a verification or notification
	idle   int  // polls in a row that saw no verification
}

// wait blocks until the next poll is due: the timer fires (unless asleep),
// a notification arrives, or a verification wakes the poller. It reports
// false when the Manager is closed.
func (p *feedPoller) wait(timer *time.Timer, notes <-chan struct{}) bool {
	var tick <-chan time.Time
	if !p.asleep {
		tick = timer.C
	}
	select {
	case <-p.m.done.Done():
		return false
	case <-tick:
	case <-notes:
	case <-p.m.feedWake:
	}
	return true
}

// poll reads the feed once and applies its answer. It reports false when the
// Manager was closed during the poll.
func (p *feedPoller) poll() bool {
	m := p.m
	start := time.Now()
	startNano := m.trustNano()
	// Derived from m.done: Close does not wait for a slow poll.
	ctx, cancel := context.WithTimeout(m.done, max(p.maxLag, time.Second))
	changed, next, err := m.feed.Changes(ctx, p.cursor)
	cancel()
	lost := errors.Is(err, ErrChangesLost) && next != ""
	switch {
	case err == nil || lost:
		p.apply(changed, next, startNano, err)
	case m.done.Err() != nil:
		return false
	default:
		p.fail(start, err)
	}
	return true
}

// apply forgets what changed, moves the cursor to next and extends the
// cache's trust to maxLag after the poll began (startNano); err is nil, or
// wraps ErrChangesLost.
func (p *feedPoller) apply(changed []Hash, next string, startNano int64, err error) {
	m := p.m
	if lost := err != nil; p.cursor == "" || lost {
		// Results cached before this position may predate changes that the
		// feed will never report: forget them all.
		m.cache.clear()
		switch {
		case lost && p.asleep:
			// Expected after a long pause: nothing cached was trusted
			// meanwhile anyway.
			m.log.Debug("apikey: change feed resumed after a pause longer than the log keeps; verification cache dropped", "err", err)
		case lost:
			m.log.Warn("apikey: change feed lost track of changes; verification cache dropped", "err", err)
		}
	}
	for i := range changed {
		m.cache.invalidate(&changed[i])
	}
	p.cursor = next
	m.trust.Store(startNano + int64(p.maxLag))
	if p.failing {
		m.log.Info("apikey: change feed recovered", "down_for", time.Since(p.failSince).Round(time.Millisecond), "failed_polls", p.failures)
	}
	p.failing, p.failures, p.dropped = false, 0, false
}

// fail records a failed poll that began at start: it logs the outage's
// first failure and then one line every feedLog, and drops the cache once
// the trust has run out.
func (p *feedPoller) fail(start time.Time, err error) {
	m := p.m
	p.failures++
	now := time.Now()
	if !p.failing {
		p.failing, p.failSince, p.lastLog = true, start, now
		m.log.Warn("apikey: change feed poll failed; retrying", "err", err)
	} else if now.Sub(p.lastLog) >= feedLog {
		p.lastLog = now
		m.log.Warn("apikey: change feed still failing; retrying", "down_for", now.Sub(p.failSince).Round(time.Millisecond), "failed_polls", p.failures, "err", err)
	}
	if !p.dropped && m.trustNano() >= m.trust.Load() {
		p.dropped = true
		m.cache.clear()
		m.log.Warn("apikey: change feed down for longer than its bound; verification cache dropped, verifications read the store",
			"bound", p.maxLag)
	}
}

// schedule counts the polls without a verification, falls asleep after
// feedIdlePolls of them and wakes when a verification has come. It reports
// whether the next timed poll is due (false: asleep).
func (p *feedPoller) schedule() bool {
	m := p.m
	if p.asleep {
		// Woken by a notification, or by a verification (which set
		// feedUsed and left a token in feedWake).
		if m.feedState.Load() != feedUsed {
			return false
		}
		p.asleep, p.idle = false, 0
		select {
		case <-m.feedWake:
		default:
		}
		return true
	}
	if m.feedState.Swap(feedUnused) == feedUsed {
		p.idle = 0
		return true
	}
	if p.idle++; p.idle >= feedIdlePolls && m.feedState.CompareAndSwap(feedUnused, feedAsleep) {
		p.asleep = true
		return false
	}
	return true
}
