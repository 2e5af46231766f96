package apikey

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/keyflow-dev/keyflow/internal/ids"
)

// usage counts successful verifications between flushes.
//
// A cached entry counts its own uses with atomics, so the hot path takes no
// lock: the first use after a flush also puts the entry in the pending list
// (dirty false → true). Flush takes the list, and for each entry clears dirty
// *before* taking the count, so a use that the flush misses always finds
// dirty false and puts the entry in the next list: no use is lost or counted
// twice. Uses of entries that are not cached (cache disabled, or a fill that
// raced an invalidation) are added to a map under a mutex instead.
type usage struct {
	mu      sync.Mutex
	pending []*entry
	spare   []*entry // the previous list's backing array, reused
	loose   map[string]*Usage

	flushMu sync.Mutex
	carry   map[string]Usage // counts a failed flush kept; guarded by flushMu
	doubt   []Usage          // a batch sent with AddUsageOnce that failed; guarded by flushMu
	doubtID string
	lastOK  time.Duration // end of the latest successful flush, since Manager.epoch; guarded by flushMu
}

func (u *usage) count(e *entry, now int64) {
	// last before uses: a flush that takes this use also sees this time.
	for {
		old := e.last.Load()
		if now <= old || e.last.CompareAndSwap(old, now) {
			break
		}
	}
	e.uses.Add(1)
	if !e.dirty.Load() && e.dirty.CompareAndSwap(false, true) {
		u.mu.Lock()
		u.pending = append(u.pending, e)
		u.mu.Unlock()
	}
}

func (u *usage) countLoose(id string, now int64) {
	t := time.Unix(0, now)
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.loose == nil {
		u.loose = make(map[string]*Usage)
	}
	c := u.loose[id]
	if c == nil {
		c = &Usage{ID: id}
		u.loose[id] = c
	}
	c.Uses++
	if t.After(c.LastUsed) {
		c.LastUsed = t
	}
}

func mergeUsage(batch map[string]Usage, id string, n int64, last time.Time) {
	u := batch[id]
	u.ID = id
	u.Uses += n
	if last.After(u.LastUsed) {
		u.LastUsed = last
	}
	batch[id] = u
}

// Flush writes the usage counted since the last successful flush now, in one
// Store.AddUsage call holding one entry per key, sorted by ID (with an
// IdempotentUsage store: one AddUsageOnce call under a new batch ID, preceded
// by the resending of a batch whose earlier attempt failed). If the store
// fails, the counts are kept for the next flush (within
// Config.MaxPendingUsage keys; the excess is dropped and logged as an error),
// the failure is logged, and the returned error wraps ErrUnavailable. Flushes
// are serialised; Flush is safe for concurrent use and a no-op when usage
// tracking is off. With Config.Hooks, each flush is reported (Flushed).
func (m *Manager) Flush(ctx context.Context) error {
	if err := m.ready(); err != nil {
		return err
	}
	if !m.track {
		return nil
	}
	u := &m.usage
	u.flushMu.Lock()
	defer u.flushMu.Unlock()
	if m.hooks == nil {
		return m.flush(ctx, nil)
	}
	o := flushObserver{start: time.Since(m.epoch)}
	err := m.flush(ctx, &o)
	m.reportFlush(ctx, &o, err)
	return err
}

// flush is Flush under flushMu; it counts the keys and uses it writes in o
// when o is not nil.
func (m *Manager) flush(ctx context.Context, o *flushObserver) error {
	u := &m.usage

	u.mu.Lock()
	list, loose := u.pending, u.loose
	u.pending, u.loose = u.spare[:0], nil
	u.mu.Unlock()

	batch := u.carry
	if batch == nil {
		batch = make(map[string]Usage)
	}
	for _, e := range list {
		e.dirty.Store(false) // before Swap: see the type comment
		n := e.uses.Swap(0)
		if n == 0 {
			// Its uses went out with an earlier flush, and with them its
			// latest time: a use sets last before it adds to uses.
			continue
		}
		mergeUsage(batch, e.principal.KeyID, n, time.Unix(0, e.last.Load()))
	}
	clear(list)
	u.spare = list[:0]
	for id, c := range loose {
		mergeUsage(batch, id, c.Uses, c.LastUsed)
	}
	once, _ := m.store.(IdempotentUsage)
	if once != nil && u.doubt != nil {
		// A batch whose outcome is unknown goes first, unchanged and under
		// its ID, so that it is applied exactly once.
		if err := once.AddUsageOnce(ctx, u.doubtID, u.doubt); err != nil {
			return m.keepUsage(batch, err)
		}
		resent := u.doubt
		u.doubt, u.doubtID = nil, ""
		if err := m.flushHistory(ctx, resent); err != nil {
			u.carry = batch
			return err
		}
	}
	if len(batch) == 0 {
		u.carry = nil
		return m.flushHistory(ctx, nil)
	}

	out := make([]Usage, 0, len(batch))
	for _, b := range batch {
		b.LastUsed = normTime(b.LastUsed)
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b Usage) int { return cmp.Compare(a.ID, b.ID) })
	if o != nil {
		o.keys = len(out)
		for _, b := range out {
			o.uses += b.Uses
		}
	}
	if once != nil {
		id := ids.New()
		if err := once.AddUsageOnce(ctx, id, out); err != nil {
			// It may have been applied (a lost reply): resend it as it is.
			u.doubt, u.doubtID = out, id
			return m.keepUsage(nil, err)
		}
	} else if err := m.store.AddUsage(ctx, out); err != nil {
		return m.keepUsage(batch, err)
	}
	u.carry = nil
	return m.flushHistory(ctx, out)
}

// keepUsage keeps batch (counts never sent, or sent and surely not applied)
// for the next flush after a failed one, within m.maxPending keys in all
// (with the batch in doubt): beyond, the counts of the keys used least
// recently are dropped and an error is logged. The caller holds flushMu.
func (m *Manager) keepUsage(batch map[string]Usage, err error) error {
	u := &m.usage
	u.carry = batch
	m.log.Warn("apikey: usage flush failed; counts kept for the next flush",
		"keys", len(batch)+len(u.doubt), "err", err)
	if room := m.maxPending - len(u.doubt); m.maxPending > 0 && len(batch) > max(room, 0) {
		room = max(room, 0)
		keep := make([]Usage, 0, len(batch))
		for _, b := range batch {
			keep = append(keep, b)
		}
		// Keep the keys used most recently; drop the rest, loudly.
		slices.SortFunc(keep, func(a, b Usage) int { return b.LastUsed.Compare(a.LastUsed) })
		var uses int64
		for _, d := range keep[room:] {
			uses += d.Uses
			delete(batch, d.ID)
		}
		m.log.Error("apikey: usage counts dropped: too many keys waiting for the store",
			"keys", len(keep)-room, "uses", uses, "bound", m.maxPending)
	}
	return unavailable("flush usage", err)
}

func (m *Manager) flushLoop(every time.Duration) {
	defer m.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-m.done.Done():
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), max(every, minFlushWait))
			_ = m.Flush(ctx) // logged by Flush; counts kept on failure
			cancel()
		}
	}
}
