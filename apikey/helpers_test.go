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
	"github.com/keyflow-dev/keyflow/keyflowtest/faultstore"
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

// faultyStore is a memory store behind keyflowtest/faultstore, with switches
// that make classes of calls fail with errInjected.
type faultyStore struct {
	*faultstore.KeyStore
	failByHash, failWrites, failAddUsage atomic.Bool
}

func newFaultyStore() *faultyStore { return faultyStoreOn(apikey.NewMemoryStore()) }

// faultyStoreOn is newFaultyStore on mem.
func faultyStoreOn(mem apikey.Store) *faultyStore {
	s := &faultyStore{KeyStore: faultstore.Keys(mem, faultstore.New(1))}
	s.Inj.SetDecide(func(op string) error {
		var fail bool
		switch op {
		case "ByHash":
			fail = s.failByHash.Load()
		case "AddUsage":
			fail = s.failAddUsage.Load()
		default:
			fail = s.failWrites.Load()
		}
		if fail {
			return errInjected
		}
		return nil
	})
	return s
}

// calls returns how many calls of op (e.g. "ByHash") reached the store.
func (s *faultyStore) calls(op string) int64 { return int64(s.Inj.CallsOf(op)) }

// lastBatch returns the last usage batch written.
func (s *faultyStore) lastBatch() []apikey.Usage {
	b := s.UsageBatches()
	if len(b) == 0 {
		return nil
	}
	return b[len(b)-1]
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
