package apikey_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/keyflowtest"
)

// fakeFeed is a ChangeFeed under the test's control.
type fakeFeed struct {
	mu      sync.Mutex
	pending []apikey.Hash
	fail    bool
	lost    bool
	polls   int
	lostAt  int // the poll that answered ErrChangesLost
}

func (f *fakeFeed) Changes(ctx context.Context, cursor string) ([]apikey.Hash, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.polls++
	switch {
	case f.fail:
		return nil, "", errInjected
	case f.lost:
		f.lost, f.lostAt = false, f.polls
		return nil, "fresh", apikey.ErrChangesLost
	}
	out := f.pending
	f.pending = nil
	return out, "pos", nil
}

func (f *fakeFeed) set(fn func(f *fakeFeed)) {
	f.mu.Lock()
	fn(f)
	f.mu.Unlock()
}

func (f *fakeFeed) pollCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.polls
}

// TestChangeFeed: changes reported by the feed are applied within the bound;
// a feed that fails for longer than the bound stops the cache from being
// used (verifications read the store, and fail closed when it fails too);
// a lost feed drops the cache.
func TestChangeFeed(t *testing.T) {
	ctx := context.Background()
	store := newFaultyStore()
	feed := &fakeFeed{}
	m, err := apikey.NewManager(apikey.Config{
		Store: store, Changes: feed, CacheTTL: time.Minute,
		ChangesMaxLag: 300 * time.Millisecond, ChangesPollInterval: 20 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })
	key, rec, err := m.Create(ctx, "u", "k", apikey.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return feed.pollCount() > 1 }, time.Second, 5*time.Millisecond)

	verifyCached := func() int64 {
		before := store.calls("ByHash")
		_, err := m.Verify(ctx, key)
		require.NoError(t, err)
		return store.calls("ByHash") - before
	}
	verifyCached()
	assert.Zero(t, verifyCached(), "served from the cache while the feed is healthy")

	// Another process disables the key: only the feed can tell.
	_, err = store.Store.SetActive(ctx, "u", rec.ID, false)
	require.NoError(t, err)
	_, err = m.Verify(ctx, key)
	require.NoError(t, err, "still cached")
	feed.set(func(f *fakeFeed) { f.pending = []apikey.Hash{rec.Hash} })
	require.Eventually(t, func() bool {
		_, err := m.Verify(ctx, key)
		return errors.Is(err, apikey.ErrInactive)
	}, 300*time.Millisecond, 2*time.Millisecond)
	_, err = store.Store.SetActive(ctx, "u", rec.ID, true)
	require.NoError(t, err)
	feed.set(func(f *fakeFeed) { f.pending = []apikey.Hash{rec.Hash} })
	require.Eventually(t, func() bool { _, err := m.Verify(ctx, key); return err == nil }, 300*time.Millisecond, 2*time.Millisecond)

	// The feed fails: within the bound the cache still serves; past it,
	// every verification reads the store, and fails closed with it.
	feed.set(func(f *fakeFeed) { f.fail = true })
	time.Sleep(400 * time.Millisecond)
	assert.Equal(t, int64(1), verifyCached(), "past the bound, the store is read")
	assert.Equal(t, int64(1), verifyCached(), "and read again: nothing cached is trusted")
	store.failByHash.Store(true)
	_, err = m.Verify(ctx, key)
	require.ErrorIs(t, err, apikey.ErrUnavailable)
	store.failByHash.Store(false)

	// It recovers by itself.
	feed.set(func(f *fakeFeed) { f.fail = false })
	require.Eventually(t, func() bool { verifyCached(); return verifyCached() == 0 }, time.Second, 5*time.Millisecond)

	// A lost feed drops the cache. The Manager handles a poll's answer
	// before it polls again, so once the poll after the lost one has begun,
	// the cache has been dropped.
	verifyCached()
	feed.set(func(f *fakeFeed) { f.lost = true })
	require.Eventually(t, func() bool {
		feed.mu.Lock()
		defer feed.mu.Unlock()
		return feed.lostAt > 0 && feed.polls > feed.lostAt
	}, time.Second, 2*time.Millisecond)
	assert.Equal(t, int64(1), verifyCached(), "the cache was dropped")
}

// fakeNotifier is a ChangeNotifier under the test's control.
type fakeNotifier struct {
	c         chan struct{}
	cancelled atomic.Bool
}

func (n *fakeNotifier) Subscribe() (<-chan struct{}, func()) {
	return n.c, func() { n.cancelled.Store(true) }
}

// timedFeed is a fakeFeed that records when its last poll began, and whose
// polls wait while the test holds them (hold), so that a poll woken by a
// verification cannot renew the cache's trust before that verification has
// been judged.
type timedFeed struct {
	fakeFeed
	last atomic.Int64
	gate atomic.Pointer[chan struct{}]
}

func (f *timedFeed) Changes(ctx context.Context, cursor string) ([]apikey.Hash, string, error) {
	f.last.Store(time.Now().UnixNano())
	if g := f.gate.Load(); g != nil {
		select {
		case <-*g:
		case <-ctx.Done():
			return nil, "", ctx.Err()
		}
	}
	return f.fakeFeed.Changes(ctx, cursor)
}

// hold makes polls wait until the returned function is called.
func (f *timedFeed) hold() (release func()) {
	g := make(chan struct{})
	f.gate.Store(&g)
	return func() { f.gate.Store(nil); close(g) }
}

func (f *timedFeed) quietFor() time.Duration { return time.Since(time.Unix(0, f.last.Load())) }

// TestChangeNotifierTriggersPoll: a notification makes the Manager poll at
// once, so a change is applied long before the next poll would have been
// (here 10 s); the subscription ends at Close.
func TestChangeNotifierTriggersPoll(t *testing.T) {
	ctx := context.Background()
	store := newFaultyStore()
	feed := &fakeFeed{}
	notes := &fakeNotifier{c: make(chan struct{}, 1)}
	m, err := apikey.NewManager(apikey.Config{
		Store: store, Changes: feed, ChangesNotifier: notes, CacheTTL: time.Hour,
		ChangesMaxLag: 30 * time.Second, ChangesPollInterval: 10 * time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	require.NoError(t, err)
	key, rec, err := m.Create(ctx, "u", "k", apikey.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { // cached once the first poll has ended
		before := store.calls("ByHash")
		_, err := m.Verify(ctx, key)
		require.NoError(t, err)
		return store.calls("ByHash") == before
	}, 5*time.Second, time.Millisecond)

	// Another process disables the key and notifies.
	_, err = store.Store.SetActive(ctx, "u", rec.ID, false)
	require.NoError(t, err)
	_, err = m.Verify(ctx, key)
	require.NoError(t, err, "still cached: nothing said it changed")
	feed.set(func(f *fakeFeed) { f.pending = []apikey.Hash{rec.Hash} })
	notes.c <- struct{}{}
	require.Eventually(t, func() bool {
		_, err := m.Verify(ctx, key)
		return errors.Is(err, apikey.ErrInactive)
	}, 5*time.Second, time.Millisecond)
	assert.Equal(t, 2, feed.pollCount(), "one poll for the notification")

	require.NoError(t, m.Close())
	assert.True(t, notes.cancelled.Load(), "Close ends the subscription")
}

// TestChangeFeedSleepsWhenIdle: without verifications the poller stops
// polling; cached results are then not trusted past the bound, so the next
// verification reads the store, wakes the poller, and the cache serves again
// once a poll has caught up. A notification makes a sleeping poller poll
// once.
func TestChangeFeedSleepsWhenIdle(t *testing.T) {
	ctx := context.Background()
	store := newFaultyStore()
	feed := &timedFeed{}
	notes := &fakeNotifier{c: make(chan struct{}, 1)}
	const maxLag = 100 * time.Millisecond
	m, err := apikey.NewManager(apikey.Config{
		Store: store, Changes: feed, ChangesNotifier: notes, CacheTTL: time.Hour,
		ChangesMaxLag: maxLag, ChangesPollInterval: 5 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })
	key, rec, err := m.Create(ctx, "u", "k", apikey.CreateOptions{})
	require.NoError(t, err)
	verifyReads := func() int64 {
		before := store.calls("ByHash")
		_, err := m.Verify(ctx, key)
		require.NoError(t, err)
		return store.calls("ByHash") - before
	}
	require.Eventually(t, func() bool { verifyReads(); return verifyReads() == 0 }, 5*time.Second, time.Millisecond)

	// Idle: an awake poller polls every 5 ms, so a second without a poll
	// means that it sleeps (and the bound has passed).
	asleep := func() bool { return feed.quietFor() > 10*maxLag }
	require.Eventually(t, asleep, 10*time.Second, 10*time.Millisecond)
	polls := feed.pollCount()
	release := feed.hold()
	assert.Equal(t, int64(1), verifyReads(), "past the bound, the store is read")
	release()
	require.Eventually(t, func() bool { return feed.pollCount() > polls }, 5*time.Second, time.Millisecond, "the verification woke the poller")
	require.Eventually(t, func() bool { return verifyReads() == 0 }, 5*time.Second, time.Millisecond, "cached again")

	// Asleep again: a notification makes it poll (and apply) once.
	require.Eventually(t, asleep, 10*time.Second, 10*time.Millisecond)
	polls = feed.pollCount()
	feed.set(func(f *fakeFeed) { f.pending = []apikey.Hash{rec.Hash} })
	notes.c <- struct{}{}
	require.Eventually(t, func() bool { return feed.pollCount() == polls+1 }, 5*time.Second, time.Millisecond)
	feed.mu.Lock()
	assert.Empty(t, feed.pending, "the change was read")
	feed.mu.Unlock()
}

func TestChangeFeedConfig(t *testing.T) {
	_, err := apikey.NewManager(apikey.Config{Changes: &fakeFeed{}, ChangesMaxLag: time.Second, ChangesPollInterval: 2 * time.Second})
	assert.Error(t, err)
	_, err = apikey.NewManager(apikey.Config{Changes: &fakeFeed{}, ChangesMaxLag: -time.Second})
	assert.Error(t, err)
}

// onceStore is a MemoryStore with AddUsageOnce whose first call applies the
// batch but reports a failure, as when a COMMIT's reply is lost.
type onceStore struct {
	*apikey.MemoryStore
	mu      sync.Mutex
	applied map[string]bool
	ids     []string
	loseOne bool
	down    bool
}

func (s *onceStore) AddUsageOnce(ctx context.Context, id string, batch []apikey.Usage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ids = append(s.ids, id)
	if s.down {
		return errInjected
	}
	if !s.applied[id] {
		if err := s.MemoryStore.AddUsage(ctx, batch); err != nil {
			return err
		}
		s.applied[id] = true
	}
	if s.loseOne {
		s.loseOne = false
		return errInjected
	}
	return nil
}

// TestFlushResendsBatchInDoubt: with an IdempotentUsage store, a batch whose
// reply was lost is resent under the same ID, before and apart from newer
// counts, so every use is counted exactly once.
func TestFlushResendsBatchInDoubt(t *testing.T) {
	ctx := context.Background()
	s := &onceStore{MemoryStore: apikey.NewMemoryStore(), applied: map[string]bool{}, loseOne: true}
	m, err := apikey.NewManager(apikey.Config{Store: s, FlushInterval: -1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	key, rec, err := m.Create(ctx, "u", "k", apikey.CreateOptions{})
	require.NoError(t, err)
	verify := func(n int) {
		for range n {
			_, err := m.Verify(ctx, key)
			require.NoError(t, err)
		}
	}
	verify(3)
	require.ErrorIs(t, m.Flush(ctx), apikey.ErrUnavailable) // applied, reply lost
	verify(2)
	s.mu.Lock()
	s.down = true
	s.mu.Unlock()
	require.ErrorIs(t, m.Flush(ctx), apikey.ErrUnavailable) // the store is down
	verify(4)
	s.mu.Lock()
	s.down = false
	s.mu.Unlock()
	require.NoError(t, m.Flush(ctx))
	require.NoError(t, m.Close())

	got, err := s.ByHash(ctx, rec.Hash)
	require.NoError(t, err)
	assert.Equal(t, int64(9), got.TotalUses)
	s.mu.Lock()
	defer s.mu.Unlock()
	require.GreaterOrEqual(t, len(s.ids), 4)
	assert.Equal(t, s.ids[0], s.ids[1], "the batch in doubt is resent under its ID")
	assert.Equal(t, s.ids[0], s.ids[2])
	assert.NotEqual(t, s.ids[0], s.ids[3], "newer counts go in a new batch")
}

// TestMaxPendingUsage: counts that wait for the store are bounded; the excess
// is dropped and logged.
func TestMaxPendingUsage(t *testing.T) {
	ctx := context.Background()
	store := newFaultyStore()
	var logs keyflowtest.LogBuffer
	m, err := apikey.NewManager(apikey.Config{Store: store, FlushInterval: -1, MaxPendingUsage: 2,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	require.NoError(t, err)
	var keys []string
	for range 3 {
		k, _, err := m.Create(ctx, "u", "k", apikey.CreateOptions{})
		require.NoError(t, err)
		keys = append(keys, k)
	}
	for _, k := range keys {
		_, err := m.Verify(ctx, k)
		require.NoError(t, err)
	}
	store.failAddUsage.Store(true)
	require.Error(t, m.Flush(ctx))
	assert.Contains(t, logs.String(), "usage counts dropped")
	assert.Contains(t, logs.String(), "keys=1")
	store.failAddUsage.Store(false)
	require.NoError(t, m.Close())
	var total int64
	for _, k := range keys {
		r, err := store.ByHash(ctx, apikey.HashKey(k))
		require.NoError(t, err)
		total += r.TotalUses
	}
	assert.Equal(t, int64(2), total)
}
