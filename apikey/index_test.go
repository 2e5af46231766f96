package apikey_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/keyflowtest"
)

// freshKey is a well-formed key that no store holds.
func freshKey(t *testing.T) string {
	key, err := apikey.Langflow.Generate()
	require.NoError(t, err)
	return key
}

// verifyOK verifies key and requires success.
func verifyOK(t *testing.T, m *apikey.Manager, key string) {
	t.Helper()
	_, err := m.Verify(context.Background(), key)
	require.NoError(t, err)
}

// listedStore is a faultyStore whose hashes can be listed (a HashLister),
// with a switch that makes the listing fail.
type listedStore struct {
	*faultyStore
	mem       *apikey.MemoryStore
	listFails atomic.Bool
	lists     atomic.Int64
}

func newListedStore() *listedStore {
	mem := apikey.NewMemoryStore()
	return &listedStore{faultyStore: faultyStoreOn(mem), mem: mem}
}

func (s *listedStore) EachHash(ctx context.Context, fn func(apikey.Hash) error) error {
	s.lists.Add(1)
	if s.listFails.Load() {
		return errInjected
	}
	return s.mem.EachHash(ctx, fn)
}

// TestKeyIndex: with a change feed and a store that lists its hashes, a key
// missing from the key index reads the store only within UnknownKeyReads a
// second; beyond that it is refused without I/O, while every key that
// exists (created before, through this Manager, or elsewhere and reported
// by the feed) verifies. The index is loaded again when the feed loses
// track of changes, and while it cannot be loaded every miss reads the
// store.
func TestKeyIndex(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock() // one second of budget until the test advances it
	store := newListedStore()
	other := newManager(t, apikey.Config{Store: store.mem, FlushInterval: -1}) // another process on the store
	k0, _ := create(t, other, "u", "before", apikey.CreateOptions{})
	feed := &fakeFeed{}
	logger, logs := keyflowtest.NewLogger()
	m := newManager(t, apikey.Config{
		Store: store, Changes: feed, Now: clock.Now, UnknownKeyReads: 3, FlushInterval: -1,
		ChangesMaxLag: 300 * time.Millisecond, ChangesPollInterval: 10 * time.Millisecond,
		Logger: logger,
	})
	reads := func(fn func()) int64 {
		before := store.calls("ByHash")
		fn()
		return store.calls("ByHash") - before
	}
	unknown := func(n int) int64 {
		return reads(func() {
			for range n {
				_, err := m.Verify(ctx, freshKey(t))
				require.ErrorIs(t, err, apikey.ErrInvalid)
			}
		})
	}
	// Until the index is loaded every miss reads the store; once it is,
	// 3 misses this second do, the others not.
	require.Eventually(t, func() bool { return unknown(1) == 0 }, 5*time.Second, 5*time.Millisecond)
	assert.Zero(t, unknown(50), "unknown keys beyond the budget are refused without reading the store")

	assert.Equal(t, int64(1), reads(func() { verifyOK(t, m, k0) }), "a key in the index is read")
	mine, _ := create(t, m, "u", "mine", apikey.CreateOptions{})
	assert.Equal(t, int64(1), reads(func() { verifyOK(t, m, mine) }), "a key created through this Manager is in the index at once")

	// A key created elsewhere, not yet reported: refused while the budget
	// is used up, accepted once the feed reports it.
	k1, r1 := create(t, other, "u", "elsewhere", apikey.CreateOptions{})
	_, err := m.Verify(ctx, k1)
	require.ErrorIs(t, err, apikey.ErrInvalid)
	feed.set(func(f *fakeFeed) { f.pending = append(f.pending, r1.Hash) })
	require.Eventually(t, func() bool { _, err := m.Verify(ctx, k1); return err == nil }, 5*time.Second, 5*time.Millisecond)

	// A new second, a new budget: a key created elsewhere and not reported
	// is found at once.
	clock.Advance(time.Second)
	require.Eventually(t, func() bool { return reads(func() { verifyOK(t, m, k0) }) == 0 }, 5*time.Second, 5*time.Millisecond, "trusted again")
	k2, _ := create(t, other, "u", "elsewhere, within the budget", apikey.CreateOptions{})
	assert.Equal(t, int64(1), reads(func() { verifyOK(t, m, k2) }))

	// Lost changes: the index is loaded again (k2 in it now). While the
	// load fails, misses read the store.
	store.listFails.Store(true)
	lists := store.lists.Load()
	feed.set(func(f *fakeFeed) { f.lost = true })
	require.Eventually(t, func() bool { return store.lists.Load() > lists }, 5*time.Second, 5*time.Millisecond)
	assert.Equal(t, int64(20), unknown(20), "without an index every miss reads the store")
	store.listFails.Store(false)
	require.Eventually(t, func() bool { return unknown(1) == 0 }, 5*time.Second, 10*time.Millisecond, "loaded after the retry")
	assert.Contains(t, logs.String(), "apikey: key index load failed")
	assert.Equal(t, int64(1), reads(func() { verifyOK(t, m, k2) }))

	// A feed down for longer than its bound: nothing is refused from the
	// index, every miss reads the store.
	feed.set(func(f *fakeFeed) { f.fail = true })
	clock.Advance(time.Second)
	assert.Equal(t, int64(10), unknown(10))
}

// TestKeyIndexOff: without a HashLister, or with UnknownKeyReads negative,
// every unknown key reads the store.
func TestKeyIndexOff(t *testing.T) {
	ctx := context.Background()
	for name, tc := range map[string]struct {
		store apikey.Store
		reads int
	}{
		"no HashLister":            {newFaultyStore(), 0},
		"UnknownKeyReads negative": {newListedStore(), -1},
	} {
		t.Run(name, func(t *testing.T) {
			feed := &fakeFeed{}
			m := newManager(t, apikey.Config{Store: tc.store, Changes: feed, UnknownKeyReads: tc.reads, FlushInterval: -1})
			require.Eventually(t, func() bool { return feed.pollCount() > 2 }, 5*time.Second, 5*time.Millisecond)
			counter := tc.store.(interface{ calls(string) int64 })
			before := counter.calls("ByHash")
			for range 20 {
				_, err := m.Verify(ctx, freshKey(t))
				require.ErrorIs(t, err, apikey.ErrInvalid)
			}
			assert.Equal(t, int64(20), counter.calls("ByHash")-before)
		})
	}
}
