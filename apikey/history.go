package apikey

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/keyflow-dev/keyflow/observe"
)

// UsageBucket is one key's verifications with one outcome in one hour.
type UsageBucket struct {
	KeyID   string
	Hour    time.Time // the start of the hour, UTC
	Outcome observe.Outcome
	Count   int64
}

// UsageHistory is an optional capability of a Store: verifications per key
// per hour by outcome. A Manager whose store has it adds to the history at
// each usage flush (no write per verification): the successful
// verifications of the batch, and the refused verifications of known keys
// (disabled, expired, over a limit). Packages apikey (MemoryStore) and
// apikey/sqlstore implement it; apikey/storetest.RunUsageHistory checks an
// implementation.
type UsageHistory interface {
	// AddUsageHistory adds each bucket's Count to the stored bucket with
	// the same KeyID, Hour and Outcome (creating it), atomically for the
	// batch. Concurrent calls from several processes must not lose counts.
	AddUsageHistory(ctx context.Context, batch []UsageBucket) error
	// UsageHistory returns the buckets of keyID whose Hour is in
	// [since, until), oldest first (then by Outcome); an empty slice when
	// there are none.
	UsageHistory(ctx context.Context, keyID string, since, until time.Time) ([]UsageBucket, error)
	// PruneUsageHistory deletes the buckets whose Hour is before before.
	PruneUsageHistory(ctx context.Context, before time.Time) error
}

// DefaultUsageHistoryRetention is how long hourly usage buckets are kept by
// default: 35 days, enough for a 30-day chart.
const DefaultUsageHistoryRetention = 35 * 24 * time.Hour

// historyPruneEvery is how often a flush also prunes old buckets.
const historyPruneEvery = time.Hour

// ErrNoUsageHistory is returned by Manager.UsageHistory when the store does
// not keep one (it lacks the UsageHistory capability), or usage tracking or
// the history is off.
var ErrNoUsageHistory = errors.New("apikey: the key store keeps no usage history")

// history is the Manager's part of the usage history: refusals counted
// between flushes, and buckets a failed write kept for the next flush.
type history struct {
	store     UsageHistory // nil: off
	retention time.Duration

	mu      sync.Mutex
	refused map[bucketKey]int64

	// Guarded by the usage's flushMu.
	carry     map[bucketKey]int64
	lastPrune time.Time
}

type bucketKey struct {
	id      string
	hour    int64 // Unix seconds of the start of the hour
	outcome observe.Outcome
}

// initHistory turns the history on when the store keeps one, usage is
// tracked and retention is not negative.
func (m *Manager) initHistory(cfg Config) {
	hs, ok := m.store.(UsageHistory)
	if !ok || !m.track || cfg.UsageHistoryRetention < 0 {
		return
	}
	m.history.store = hs
	m.history.retention = orDefault(cfg.UsageHistoryRetention, DefaultUsageHistoryRetention)
}

// refuse counts a refused verification of a known key (entry e) at now,
// when the history is on. It takes a mutex: refusals are not the hot path.
func (m *Manager) refuse(e *entry, o observe.Outcome, now int64) {
	if m.history.store == nil {
		return
	}
	k := bucketKey{id: e.principal.KeyID, hour: hourOf(now), outcome: o}
	h := &m.history
	h.mu.Lock()
	if h.refused == nil {
		h.refused = make(map[bucketKey]int64)
	}
	h.refused[k]++
	h.mu.Unlock()
}

// hourOf returns the start of the hour of now (Unix nanoseconds), in Unix
// seconds.
func hourOf(now int64) int64 {
	s := now / int64(time.Second)
	return s - s%3600
}

// flushHistory writes the history of a flush: the successful uses applied
// (each key's count goes to the hour of its latest use, so a count can land
// in the next hour by up to Config.FlushInterval) and the refusals counted
// since the last flush, plus buckets a failed write kept. On failure the
// buckets are kept for the next flush (within Config.MaxPendingUsage
// buckets; the excess is dropped and logged) and the error, wrapping
// ErrUnavailable, is returned. Once an hour it also prunes buckets older
// than the retention. The caller holds the usage's flushMu.
func (m *Manager) flushHistory(ctx context.Context, applied []Usage) error {
	h := &m.history
	if h.store == nil {
		return nil
	}
	h.mu.Lock()
	refused := h.refused
	h.refused = nil
	h.mu.Unlock()
	all := h.carry
	if all == nil {
		all = make(map[bucketKey]int64, len(applied)+len(refused))
	}
	for _, u := range applied {
		if u.Uses > 0 {
			all[bucketKey{id: u.ID, hour: hourOf(u.LastUsed.UnixNano()), outcome: observe.OK}] += u.Uses
		}
	}
	for k, n := range refused {
		all[k] += n
	}
	h.carry = nil
	if len(all) > 0 {
		batch := make([]UsageBucket, 0, len(all))
		for k, n := range all {
			batch = append(batch, UsageBucket{KeyID: k.id, Hour: time.Unix(k.hour, 0).UTC(), Outcome: k.outcome, Count: n})
		}
		slices.SortFunc(batch, func(a, b UsageBucket) int {
			return cmp.Or(cmp.Compare(a.KeyID, b.KeyID), a.Hour.Compare(b.Hour), cmp.Compare(a.Outcome, b.Outcome))
		})
		if err := h.store.AddUsageHistory(ctx, batch); err != nil {
			if m.maxPending > 0 && len(all) > m.maxPending {
				m.log.Error("apikey: usage history dropped: too many buckets waiting for the store", "buckets", len(all))
				all = nil
			}
			h.carry = all
			m.log.Warn("apikey: usage history write failed; counts kept for the next flush", "buckets", len(all), "err", err)
			return unavailable("flush usage history", err)
		}
	}
	if now := m.now(); now.Sub(h.lastPrune) >= historyPruneEvery {
		if err := h.store.PruneUsageHistory(ctx, now.Add(-h.retention)); err != nil {
			m.log.Warn("apikey: usage history prune failed", "err", err)
		} else {
			h.lastPrune = now
		}
	}
	return nil
}

// UsageHistory returns the verifications of key keyID per hour and outcome,
// for the hours that start in [since, until), oldest first. Counts reach
// the store at each usage flush (Config.FlushInterval), so the current hour
// lags by up to that. Buckets are kept for Config.UsageHistoryRetention.
// The Manager does not check who owns keyID: callers show a user only
// their own keys' history. Errors: ErrNoUsageHistory when the store keeps
// none; ErrUnavailable.
func (m *Manager) UsageHistory(ctx context.Context, keyID string, since, until time.Time) ([]UsageBucket, error) {
	if err := m.ready(); err != nil {
		return nil, err
	}
	if m.history.store == nil {
		return nil, ErrNoUsageHistory
	}
	bs, err := m.history.store.UsageHistory(ctx, keyID, since, until)
	if err != nil {
		return nil, unavailable("usage history", err)
	}
	if bs == nil {
		bs = []UsageBucket{}
	}
	return bs, nil
}

// checkBuckets validates a batch for a store.
func checkBuckets(batch []UsageBucket) error {
	for _, b := range batch {
		if b.KeyID == "" || b.Count < 0 || int(b.Outcome) >= observe.NumOutcomes {
			return fmt.Errorf("apikey: invalid usage bucket (key %q, count %d, outcome %d)", b.KeyID, b.Count, b.Outcome)
		}
	}
	return nil
}
