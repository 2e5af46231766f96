package apikey_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey"
)

// fakeClock is an injectable clock (Config.Now).
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var errInjected = errors.New("injected store failure")

// faultyStore wraps a Store, counts calls and fails on demand (in the manner
// of Vault's physical.ErrorInjector).
type faultyStore struct {
	apikey.Store
	failByHash, failWrites, failAddUsage atomic.Bool
	byHashCalls, addUsageCalls           atomic.Int64

	mu       sync.Mutex
	batches  [][]apikey.Usage
	afterGet func() // called after the inner ByHash, before returning
}

func newFaultyStore() *faultyStore { return &faultyStore{Store: apikey.NewMemoryStore()} }

func (s *faultyStore) ByHash(ctx context.Context, h apikey.Hash) (apikey.Record, error) {
	s.byHashCalls.Add(1)
	if s.failByHash.Load() {
		return apikey.Record{}, errInjected
	}
	r, err := s.Store.ByHash(ctx, h)
	s.mu.Lock()
	hook := s.afterGet
	s.mu.Unlock()
	if hook != nil {
		hook()
	}
	return r, err
}

func (s *faultyStore) Insert(ctx context.Context, r apikey.Record) error {
	if s.failWrites.Load() {
		return errInjected
	}
	return s.Store.Insert(ctx, r)
}

func (s *faultyStore) ListByUser(ctx context.Context, userID string) ([]apikey.Record, error) {
	if s.failWrites.Load() {
		return nil, errInjected
	}
	return s.Store.ListByUser(ctx, userID)
}

func (s *faultyStore) Delete(ctx context.Context, userID, id string) (apikey.Record, error) {
	if s.failWrites.Load() {
		return apikey.Record{}, errInjected
	}
	return s.Store.Delete(ctx, userID, id)
}

func (s *faultyStore) SetActive(ctx context.Context, userID, id string, active bool) (apikey.Record, error) {
	if s.failWrites.Load() {
		return apikey.Record{}, errInjected
	}
	return s.Store.SetActive(ctx, userID, id, active)
}

func (s *faultyStore) AddUsage(ctx context.Context, batch []apikey.Usage) error {
	s.addUsageCalls.Add(1)
	if s.failAddUsage.Load() {
		return errInjected
	}
	s.mu.Lock()
	s.batches = append(s.batches, append([]apikey.Usage(nil), batch...))
	s.mu.Unlock()
	return s.Store.AddUsage(ctx, batch)
}

func (s *faultyStore) lastBatch() []apikey.Usage {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.batches) == 0 {
		return nil
	}
	return s.batches[len(s.batches)-1]
}

func newManager(t testing.TB, cfg apikey.Config) *apikey.Manager {
	t.Helper()
	m, err := apikey.NewManager(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })
	return m
}

func create(t testing.TB, m *apikey.Manager, user, name string, opts apikey.CreateOptions) (string, apikey.Record) {
	t.Helper()
	key, rec, err := m.Create(context.Background(), user, name, opts)
	require.NoError(t, err)
	return key, rec
}

func record(t testing.TB, s apikey.Store, key string) apikey.Record {
	t.Helper()
	r, err := s.ByHash(context.Background(), apikey.HashKey(key))
	require.NoError(t, err)
	return r
}
