package apikey

import (
	"context"
	"time"
)

var _ LimitStore = (*MemoryStore)(nil)

// SetLimits implements LimitStore.
func (s *MemoryStore) SetLimits(ctx context.Context, userID, id string, l Limits, resetQuota bool) (Record, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.own(userID, id)
	if r == nil {
		return Record{}, ErrNotFound
	}
	old := r.Limits.Quota
	r.Limits = l.clone()
	if q := r.Limits.Quota; q != nil {
		if old != nil && !resetQuota {
			q.Remaining, q.PeriodStart = old.Remaining, old.PeriodStart
		} else {
			s.bumpEpoch(id)
		}
	}
	return r.clone(), nil
}

func (s *MemoryStore) bumpEpoch(id string) {
	if s.epochs == nil {
		s.epochs = make(map[string]int64)
	}
	s.epochs[id]++
}

// TakeQuota implements LimitStore.
func (s *MemoryStore) TakeQuota(ctx context.Context, id string, n int64, period time.Time) (QuotaTake, error) {
	if err := ctx.Err(); err != nil {
		return QuotaTake{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.byID[id]
	if r == nil || r.Limits.Quota == nil {
		return QuotaTake{}, ErrNotFound
	}
	q := r.Limits.Quota
	if q.Refill.Amount > 0 && period.After(q.PeriodStart) {
		q.Remaining, q.PeriodStart = q.Refill.Amount, period.UTC()
	}
	taken := min(max(n, 0), q.Remaining)
	q.Remaining -= taken
	return QuotaTake{Taken: taken, Remaining: q.Remaining, Period: q.PeriodStart, Epoch: s.epochs[id]}, nil
}

// ReturnQuota implements LimitStore.
func (s *MemoryStore) ReturnQuota(ctx context.Context, id string, n int64, t QuotaTake) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.byID[id]
	if r == nil || r.Limits.Quota == nil || n <= 0 {
		return nil
	}
	if q := r.Limits.Quota; s.epochs[id] == t.Epoch && q.PeriodStart.Equal(t.Period) {
		q.Remaining += n
	}
	return nil
}
