package audit

import (
	"context"
	"slices"
	"sync"
	"time"
)

// MemoryStore is a Store in memory, for tests and single-process programs.
// It is safe for concurrent use; the zero value is an empty store.
type MemoryStore struct {
	mu     sync.Mutex
	events []Event // in Seq order
	head   Head
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{} }

// Append implements Store.
func (s *MemoryStore) Append(ctx context.Context, e Event) (Event, error) {
	if err := ctx.Err(); err != nil {
		return Event{}, err
	}
	e = e.Clone()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.head.Last = Seal(&e, s.head.Last)
	s.events = append(s.events, e)
	return e.Clone(), nil
}

// Head implements Store.
func (s *MemoryStore) Head(ctx context.Context) (Head, error) {
	if err := ctx.Err(); err != nil {
		return Head{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.head, nil
}

// Walk implements Store. fn runs without the store's lock held, on a copy
// of the events present when Walk began.
func (s *MemoryStore) Walk(ctx context.Context, after int64, fn func(Event) error) error {
	s.mu.Lock()
	evs := make([]Event, 0, len(s.events))
	for _, e := range s.events {
		if e.Seq > after {
			evs = append(evs, e.Clone())
		}
	}
	s.mu.Unlock()
	for _, e := range evs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// List implements Store.
func (s *MemoryStore) List(ctx context.Context, f Filter) ([]Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Event{}
	for i := len(s.events) - 1; i >= 0 && len(out) < f.Limit; i-- {
		if e := s.events[i]; f.matches(e) {
			out = append(out, e.Clone())
		}
	}
	return out, nil
}

// matches reports whether f selects e (Limit aside).
func (f Filter) matches(e Event) bool {
	switch {
	case len(f.Actions) > 0 && !slices.Contains(f.Actions, e.Action),
		f.ActorID != "" && e.Actor.UserID != f.ActorID,
		!f.Since.IsZero() && e.Time.Before(f.Since),
		!f.Until.IsZero() && !e.Time.Before(f.Until),
		f.Before > 0 && e.Seq >= f.Before:
		return false
	}
	return true
}

// Prune implements Store.
func (s *MemoryStore) Prune(ctx context.Context, before time.Time) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for n < len(s.events) && s.events[n].Time.Before(before) {
		n++
	}
	if n == 0 {
		return 0, nil
	}
	last := s.events[n-1]
	s.head.Anchor = Link{Seq: last.Seq, Hash: last.Hash}
	s.events = slices.Delete(s.events, 0, n)
	return int64(n), nil
}

// Tamper gives a test direct access to the stored events (in Seq order), to
// change, delete or reorder them as an attacker with write access to the
// storage would; Verify must then report the chain broken. The returned
// slice replaces the stored events.
func (s *MemoryStore) Tamper(fn func(events []Event) []Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = fn(s.events)
}
