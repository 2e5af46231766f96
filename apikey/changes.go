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

// feedLoop polls m.feed until Close. After each successful poll that
// started at time s, every change committed before s has been applied
// (Invalidate), so cached results may be served until s+maxLag (m.trust).
// When polls fail for longer than maxLag, cached results are no longer served
// (Verify checks m.trust) and the cache is dropped; verifications then read
// the store, and fail closed when it is down.
func (m *Manager) feedLoop(every, maxLag time.Duration) {
	defer m.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	var (
		cursor    string
		failing   bool
		failSince time.Time
		lastLog   time.Time
		failures  int
		dropped   bool
	)
	for {
		start := time.Now()
		startNano := m.nowNano()
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
				if lost {
					m.log.Warn("apikey: change feed lost track of changes; verification cache dropped", "err", err)
				}
			}
			for i := range changed {
				m.cache.invalidate(&changed[i])
			}
			cursor = next
			m.trust.Store(startNano + int64(maxLag))
			if failing {
				m.log.Info("apikey: change feed recovered", "down_for", time.Since(failSince).Round(time.Millisecond), "failed_polls", failures)
			}
			failing, failures, dropped = false, 0, false
		case m.done.Err() != nil:
			return // closed while polling
		default:
			failures++
			now := time.Now()
			if !failing {
				failing, failSince, lastLog = true, start, now
				m.log.Warn("apikey: change feed poll failed; retrying", "err", err)
			} else if now.Sub(lastLog) >= feedLog {
				lastLog = now
				m.log.Warn("apikey: change feed still failing; retrying", "down_for", now.Sub(failSince).Round(time.Millisecond), "failed_polls", failures, "err", err)
			}
			if !dropped && m.nowNano() >= m.trust.Load() {
				dropped = true
				m.cache.clear()
				m.log.Warn("apikey: change feed down for longer than its bound; verification cache dropped, verifications read the store",
					"bound", maxLag)
			}
		}
		select {
		case <-m.done.Done():
			return
		case <-t.C:
		}
	}
}
