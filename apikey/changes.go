package apikey

import (
	"context"
	"errors"
	"time"

	"github.com/keyflow-dev/keyflow/internal/changefeed"
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

// startFeed starts the change feed's poller (internal/changefeed), which
// keeps m.feed's trust deadline: after each successful poll that started at
// time s, every change committed before s has been applied (the cache
// forgot those keys), so cached results may be served until
// s+ChangesMaxLag. When polls fail for longer, cached results are no longer
// served (Verify checks m.trusted) and the cache is dropped; verifications
// then read the store, and fail closed when it is down.
//
// It polls every `every` while verifications happen (Verify calls
// m.feed.Use, one atomic load), at once when notes (the ChangeNotifier's
// subscription; nil without one) says that something changed, and not at
// all after 25 polls without a verification: it then sleeps until a
// verification or a notification wakes it. While it sleeps, the trust runs
// out, so the first verifications after a pause read the store until the
// poll that they trigger has caught up.
func (m *Manager) startFeed(feed ChangeFeed, every, maxLag time.Duration, notes <-chan struct{}) {
	cache := m.cache
	cfg := changefeed.Config[Hash]{
		Feed:   feed.Changes,
		Lost:   ErrChangesLost,
		Notes:  notes,
		Every:  every,
		MaxLag: maxLag,
		Invalidate: func(changed []Hash) {
			for i := range changed {
				cache.invalidate(&changed[i])
				if m.index != nil {
					m.index.add(&changed[i])
				}
			}
		},
		Clear: cache.clear,
		Log:   m.log,
		What:  "apikey",
		Cache: "verification cache",
		Reads: "verifications read the store",
		Now:   m.nowFn,
	}
	if m.index != nil {
		cfg.Reset = m.index.reset
	}
	if m.hooks != nil {
		cfg.Polled = m.reportFeedPoll
	}
	m.feed = changefeed.Start(cfg)
}
