package apikey

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"
)

// memHistory is the MemoryStore's usage history.
type memHistory struct {
	mu      sync.Mutex
	buckets map[bucketKey]int64
}

var _ UsageHistory = (*MemoryStore)(nil)

// AddUsageHistory implements UsageHistory.
func (s *MemoryStore) AddUsageHistory(ctx context.Context, batch []UsageBucket) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkBuckets(batch); err != nil {
		return err
	}
	h := &s.hist
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.buckets == nil {
		h.buckets = make(map[bucketKey]int64)
	}
	for _, b := range batch {
		h.buckets[bucketKey{id: b.KeyID, hour: hourOf(b.Hour.UnixNano()), outcome: b.Outcome}] += b.Count
	}
	return nil
}

// UsageHistory implements UsageHistory.
func (s *MemoryStore) UsageHistory(ctx context.Context, keyID string, since, until time.Time) ([]UsageBucket, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h := &s.hist
	h.mu.Lock()
	out := []UsageBucket{}
	for k, n := range h.buckets {
		t := time.Unix(k.hour, 0).UTC()
		if k.id == keyID && !t.Before(since) && t.Before(until) {
			out = append(out, UsageBucket{KeyID: k.id, Hour: t, Outcome: k.outcome, Count: n})
		}
	}
	h.mu.Unlock()
	slices.SortFunc(out, func(a, b UsageBucket) int { return cmp.Or(a.Hour.Compare(b.Hour), cmp.Compare(a.Outcome, b.Outcome)) })
	return out, nil
}

// PruneUsageHistory implements UsageHistory.
func (s *MemoryStore) PruneUsageHistory(ctx context.Context, before time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	h := &s.hist
	h.mu.Lock()
	defer h.mu.Unlock()
	for k := range h.buckets {
		if time.Unix(k.hour, 0).Before(before) {
			delete(h.buckets, k)
		}
	}
	return nil
}
