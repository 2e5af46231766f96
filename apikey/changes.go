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
	timer := time.NewTimer(0) // the first poll at once
	defer timer.Stop()
	var (
		cursor    string
		lastOK    time.Duration = -1 // start of the latest successful poll, since m.epoch (for Config.Hooks)
		failing   bool
		failSince time.Time
		lastLog   time.Time
		failures  int
		dropped   bool
		asleep    bool
		idle      int
	)
	for {
		var tick <-chan time.Time
		if !asleep {
			tick = timer.C
		}
		select {
		case <-m.done.Done():
			return
		case <-tick:
		case <-notes:
		case <-m.feedWake:
		}

		start := time.Now()
		startNano := m.trustNano()
		startMono := time.Since(m.epoch)
		// Derived from m.done: Close does not wait for a slow poll.
		ctx, cancel := context.WithTimeout(m.done, max(maxLag, time.Second))
		changed, next, err := m.feed.Changes(ctx, cursor)
		cancel()
		lost := errors.Is(err, ErrChangesLost) && next != ""
		switch {
		case err == nil || lost:
			if cursor == "" || lost {
				// Results cached before this position may predate changes
				// that the feed will never report: forget them all.
				m.cache.clear()
				switch {
				case lost && asleep:
					// Expected after a long pause: nothing cached was
					// trusted meanwhile anyway.
					m.log.Debug("apikey: change feed resumed after a pause longer than the log keeps; verification cache dropped", "err", err)
				case lost:
					m.log.Warn("apikey: change feed lost track of changes; verification cache dropped", "err", err)
				}
			}
			for i := range changed {
				m.cache.invalidate(&changed[i])
			}
			cursor = next
			m.trust.Store(startNano + int64(maxLag))
			lastOK = startMono
			m.reportFeedPoll(startMono, lastOK, len(changed), lost, nil)
			if failing {
				m.log.Info("apikey: change feed recovered", "down_for", time.Since(failSince).Round(time.Millisecond), "failed_polls", failures)
			}
			failing, failures, dropped = false, 0, false
		case m.done.Err() != nil:
			return // closed while polling
		default:
			failures++
			m.reportFeedPoll(startMono, lastOK, 0, false, err)
			now := time.Now()
			if !failing {
				failing, failSince, lastLog = true, start, now
				m.log.Warn("apikey: change feed poll failed; retrying", "err", err)
			} else if now.Sub(lastLog) >= feedLog {
				lastLog = now
				m.log.Warn("apikey: change feed still failing; retrying", "down_for", now.Sub(failSince).Round(time.Millisecond), "failed_polls", failures, "err", err)
			}
			if !dropped && m.trustNano() >= m.trust.Load() {
				dropped = true
				m.cache.clear()
				m.log.Warn("apikey: change feed down for longer than its bound; verification cache dropped, verifications read the store",
					"bound", maxLag)
			}
		}

		if asleep {
			// Woken by a notification, or by a verification (which set
			// feedUsed and left a token in feedWake).
			if m.feedState.Load() != feedUsed {
				continue
			}
			asleep, idle = false, 0
			select {
			case <-m.feedWake:
			default:
			}
		} else if m.feedState.Swap(feedUnused) == feedUsed {
			idle = 0
		} else if idle++; idle >= feedIdlePolls && m.feedState.CompareAndSwap(feedUnused, feedAsleep) {
			asleep = true
			continue
		}
		timer.Reset(every)
	}
}
