package apikey

import (
	"context"
	"errors"
	"time"

	"github.com/keyflow-dev/keyflow/internal/changefeed"
	"github.com/keyflow-dev/keyflow/observe"
)

// isLimited reports whether err refuses a key over one of its limits.
func isLimited(err error) bool {
	return errors.Is(err, ErrRateLimited) || errors.Is(err, ErrQuotaExhausted)
}

// OutcomeOf maps an error of Verify (nil included) to its observe.Outcome:
// nil is OK, ErrMissing Missing, ErrInvalid (malformed or unknown) and
// ErrNotFound Unknown, ErrExpired Expired, ErrInactive Disabled,
// ErrRateLimited and ErrQuotaExhausted RateLimited, and any other error
// Unavailable (as the middleware answers it: 503).
func OutcomeOf(err error) observe.Outcome {
	switch {
	case err == nil:
		return observe.OK
	case err == ErrMissing:
		return observe.Missing
	case isLimited(err):
		return observe.RateLimited
	case errors.Is(err, ErrUnavailable):
		return observe.Unavailable
	case errors.Is(err, ErrInvalid), errors.Is(err, ErrNotFound):
		return observe.Unknown
	case errors.Is(err, ErrExpired):
		return observe.Expired
	case errors.Is(err, ErrInactive):
		return observe.Disabled
	case errors.Is(err, ErrMissing):
		return observe.Missing
	}
	return observe.Unavailable
}

// verifyObs is what verify records for verifyObserved.
type verifyObs struct {
	missAt time.Duration // > 0: the cache missed at this time since m.epoch
}

// verifyObserved is Verify with Config.Hooks set: it reports the
// verification, with the time taken by a cache miss (on the monotonic
// clock). A cache hit is not timed: it does no I/O and costs less than
// 200 ns, and two clock reads would add half as much again.
func (m *Manager) verifyObserved(ctx context.Context, key string, cost int64, c *Charge) (Principal, error) {
	var obs verifyObs
	p, err := m.verify(ctx, key, cost, c, &obs)
	v := observe.Verification{Outcome: OutcomeOf(err)}
	if obs.missAt > 0 {
		v.Duration = time.Since(m.epoch) - obs.missAt
	} else {
		// Not read from the store: answered by the cache, unless refused
		// before it (no key, or a malformed one). A cached "unknown key"
		// is errUnknown itself; a malformed key gets another reason.
		v.Cached = m.cache != nil && err != ErrMissing && (err == errUnknown || !errors.Is(err, ErrInvalid))
	}
	m.hooks.Verified(ctx, v)
	return p, err
}

// byHash reads the store for Verify's cache miss, inside a store-read span
// when hooks are set.
func (m *Manager) byHash(ctx context.Context, h Hash) (Record, error) {
	if m.hooks == nil {
		return m.store.ByHash(ctx, h)
	}
	r := observe.StoreRead{Store: "apikey", Op: "ByHash"}
	ctx = m.hooks.StoreReadStart(ctx, r)
	rec, err := m.store.ByHash(ctx, h)
	m.hooks.StoreReadEnd(ctx, r, err)
	return rec, err
}

// listByUser reads the store for List, inside a store-read span when hooks
// are set.
func (m *Manager) listByUser(ctx context.Context, userID string) ([]Record, error) {
	if m.hooks == nil {
		return m.store.ListByUser(ctx, userID)
	}
	r := observe.StoreRead{Store: "apikey", Op: "ListByUser"}
	ctx = m.hooks.StoreReadStart(ctx, r)
	recs, err := m.store.ListByUser(ctx, userID)
	m.hooks.StoreReadEnd(ctx, r, err)
	return recs, err
}

// flushObserver times one flush and reports it. The flush fills keys and
// uses; lastOK (guarded by the usage's flushMu) is the end of the latest
// successful flush, in m.epoch's monotonic time.
type flushObserver struct {
	start time.Duration
	keys  int
	uses  int64
}

// reportFlush reports a flush that began at o.start and ended with err. The
// caller holds the usage's flushMu.
func (m *Manager) reportFlush(ctx context.Context, o *flushObserver, err error) {
	end := time.Since(m.epoch)
	lag := end - m.usage.lastOK
	if err == nil {
		m.usage.lastOK = end
	}
	m.hooks.Flushed(ctx, observe.Flush{Keys: o.keys, Uses: o.uses, Lag: lag, Duration: end - o.start, Err: err})
}

// reportFeedPoll reports one change feed poll to the hooks (set as
// changefeed.Config.Polled when the Manager has hooks).
func (m *Manager) reportFeedPoll(p changefeed.Poll) {
	m.hooks.FeedPolled(context.Background(), observe.FeedPoll{
		Changed:  p.Changed,
		Lost:     p.Lost,
		Lag:      p.Lag,
		Duration: p.Duration,
		Err:      p.Err,
	})
}
