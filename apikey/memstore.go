package apikey

import (
	"cmp"
	"context"
	"slices"
	"sync"
)

// MemoryStore is a Store in process memory: the default store of a Manager,
// for tests, examples and single-process servers that can lose their keys on
// restart. It is safe for concurrent use. The zero value is an empty store
// ready to use, as is NewMemoryStore().
type MemoryStore struct {
	mu     sync.RWMutex
	byID   map[string]*Record
	byHash map[Hash]*Record
	byUser map[string]map[string]*Record
	epochs map[string]int64 // quota epochs (memlimits.go)

	hist memHistory // usage history (memhistory.go)
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{
		byID:   make(map[string]*Record),
		byHash: make(map[Hash]*Record),
		byUser: make(map[string]map[string]*Record),
	}
}

var _ Store = (*MemoryStore)(nil)

// Insert implements Store.
func (s *MemoryStore) Insert(ctx context.Context, r Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byID == nil {
		s.byID = make(map[string]*Record)
		s.byHash = make(map[Hash]*Record)
		s.byUser = make(map[string]map[string]*Record)
	}
	if _, ok := s.byID[r.ID]; ok {
		return ErrDuplicate
	}
	if _, ok := s.byHash[r.Hash]; ok {
		return ErrDuplicate
	}
	rec := r.clone()
	s.byID[r.ID] = &rec
	s.byHash[r.Hash] = &rec
	u := s.byUser[r.UserID]
	if u == nil {
		u = make(map[string]*Record)
		s.byUser[r.UserID] = u
	}
	u[r.ID] = &rec
	return nil
}

// ByHash implements Store.
func (s *MemoryStore) ByHash(ctx context.Context, h Hash) (Record, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := s.byHash[h]
	if !ok {
		return Record{}, ErrNotFound
	}
	return r.clone(), nil
}

// EachHash implements HashLister. fn is called without the store's lock
// held (on a copy of the hashes), so it may use the store.
func (s *MemoryStore) EachHash(ctx context.Context, fn func(Hash) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	hashes := make([]Hash, 0, len(s.byHash))
	for h := range s.byHash {
		hashes = append(hashes, h)
	}
	s.mu.RUnlock()
	for _, h := range hashes {
		if err := fn(h); err != nil {
			return err
		}
	}
	return nil
}

// ListByUser implements Store.
func (s *MemoryStore) ListByUser(ctx context.Context, userID string) ([]Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	out := make([]Record, 0, len(s.byUser[userID]))
	for _, r := range s.byUser[userID] {
		out = append(out, r.clone())
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b Record) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out, nil
}

// Delete implements Store.
func (s *MemoryStore) Delete(ctx context.Context, userID, id string) (Record, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.own(userID, id)
	if r == nil {
		return Record{}, ErrNotFound
	}
	delete(s.byID, id)
	delete(s.byHash, r.Hash)
	u := s.byUser[userID]
	delete(u, id)
	if len(u) == 0 {
		delete(s.byUser, userID)
	}
	return r.clone(), nil
}

// SetActive implements Store.
func (s *MemoryStore) SetActive(ctx context.Context, userID, id string, active bool) (Record, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.own(userID, id)
	if r == nil {
		return Record{}, ErrNotFound
	}
	r.Active = active
	return r.clone(), nil
}

// own returns record id if userID owns it, else nil: another user's key
// looks like no key. The caller holds s.mu.
func (s *MemoryStore) own(userID, id string) *Record {
	if r := s.byID[id]; r != nil && r.UserID == userID {
		return r
	}
	return nil
}

// AddUsage implements Store.
func (s *MemoryStore) AddUsage(ctx context.Context, batch []Usage) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range batch {
		r, ok := s.byID[u.ID]
		if !ok {
			continue
		}
		r.TotalUses += u.Uses
		if !u.LastUsed.IsZero() && (r.LastUsedAt == nil || u.LastUsed.After(*r.LastUsedAt)) {
			t := u.LastUsed
			r.LastUsedAt = &t
		}
	}
	return nil
}
