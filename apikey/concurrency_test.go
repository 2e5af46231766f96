package apikey_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey"
)

// TestRevokeUnderConcurrency: verifiers hammer keys while they are deleted or
// disabled; once Delete/SetActive has returned, no Verify that starts
// afterwards may succeed. Run with -race.
func TestRevokeUnderConcurrency(t *testing.T) {
	for _, op := range []string{"delete", "disable"} {
		t.Run(op, func(t *testing.T) {
			m := newManager(t, apikey.Config{CacheTTL: time.Hour, NegativeCacheTTL: time.Hour})
			ctx := context.Background()
			const keys, verifiers = 16, 8
			type target struct {
				key     string
				rec     apikey.Record
				revoked atomic.Bool
			}
			targets := make([]*target, keys)
			for i := range targets {
				key, rec := create(t, m, "u", "k", apikey.CreateOptions{})
				targets[i] = &target{key: key, rec: rec}
			}
			stop := make(chan struct{})
			var violations, successes atomic.Int64
			var wg sync.WaitGroup
			for v := range verifiers {
				wg.Go(func() {
					for i := v; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						tg := targets[i%keys]
						revokedBefore := tg.revoked.Load()
						_, err := m.Verify(ctx, tg.key)
						if err == nil {
							successes.Add(1)
							if revokedBefore {
								violations.Add(1)
							}
						}
					}
				})
			}
			for _, tg := range targets {
				time.Sleep(2 * time.Millisecond)
				var err error
				if op == "delete" {
					err = m.Delete(ctx, "u", tg.rec.ID)
				} else {
					err = m.SetActive(ctx, "u", tg.rec.ID, false)
				}
				require.NoError(t, err)
				tg.revoked.Store(true)
			}
			time.Sleep(5 * time.Millisecond)
			close(stop)
			wg.Wait()
			assert.Zero(t, violations.Load(), "verifications that succeeded after the revocation returned")
			assert.Positive(t, successes.Load())
			for _, tg := range targets {
				_, err := m.Verify(ctx, tg.key)
				assert.Error(t, err)
			}
		})
	}
}

// TestStaleFillAfterInvalidate reproduces the race where a Verify reads the
// store before a Delete and would cache what it read after the Delete's
// eviction: the shard generation makes that fill a no-op.
func TestStaleFillAfterInvalidate(t *testing.T) {
	store := newFaultyStore()
	m := newManager(t, apikey.Config{Store: store, CacheTTL: time.Hour})
	ctx := context.Background()
	key, rec := create(t, m, "u", "k", apikey.CreateOptions{})

	read, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	store.Inj.SetHook(func(op string) {
		if op != "ByHash" {
			return
		}
		once.Do(func() {
			close(read)
			<-release
		})
	})

	slow := make(chan error, 1)
	go func() { _, err := m.Verify(ctx, key); slow <- err }()
	<-read // the slow Verify has read the record, not yet cached it
	require.NoError(t, m.Delete(ctx, "u", rec.ID))
	close(release)
	// It overlapped the Delete, so either answer is correct for it.
	<-slow

	_, err := m.Verify(ctx, key)
	require.ErrorIs(t, err, apikey.ErrInvalid, "a stale positive entry was cached after Delete")
}

// TestStoreFailure: a store error is ErrUnavailable wrapping the cause, is
// never cached and never authenticates (fails closed).
func TestStoreFailure(t *testing.T) {
	store := newFaultyStore()
	m := newManager(t, apikey.Config{Store: store, FlushInterval: -1})
	ctx := context.Background()
	key, rec := create(t, m, "u", "k", apikey.CreateOptions{})
	cached, _ := create(t, m, "u", "cached", apikey.CreateOptions{})
	_, err := m.Verify(ctx, cached)
	require.NoError(t, err)
	unknown, err := apikey.Langflow.Generate()
	require.NoError(t, err)
	_, err = m.Verify(ctx, unknown)
	require.ErrorIs(t, err, apikey.ErrInvalid)

	store.failByHash.Store(true)
	for range 3 {
		p, err := m.Verify(ctx, key)
		require.ErrorIs(t, err, apikey.ErrUnavailable)
		require.ErrorIs(t, err, errInjected, "the cause is wrapped")
		for _, outcome := range []error{apikey.ErrInvalid, apikey.ErrMissing, apikey.ErrExpired, apikey.ErrInactive} {
			require.NotErrorIs(t, err, outcome)
		}
		assert.Equal(t, apikey.Principal{}, p)
	}
	assert.EqualValues(t, 2+3, store.calls("ByHash"), "failures are not cached")
	// Documented: cached results are served for their TTL while the store is down.
	_, err = m.Verify(ctx, cached)
	require.NoError(t, err)
	_, err = m.Verify(ctx, unknown)
	require.ErrorIs(t, err, apikey.ErrInvalid)

	store.failByHash.Store(false)
	_, err = m.Verify(ctx, key)
	require.NoError(t, err, "recovered")

	store.failWrites.Store(true)
	_, _, err = m.Create(ctx, "u", "k", apikey.CreateOptions{})
	require.ErrorIs(t, err, apikey.ErrUnavailable)
	_, err = m.Import(ctx, "u", "k", langflowKey, apikey.CreateOptions{})
	require.ErrorIs(t, err, apikey.ErrUnavailable)
	_, err = m.List(ctx, "u")
	require.ErrorIs(t, err, apikey.ErrUnavailable)
	require.ErrorIs(t, m.Delete(ctx, "u", rec.ID), apikey.ErrUnavailable)
	require.ErrorIs(t, m.SetActive(ctx, "u", rec.ID, false), apikey.ErrUnavailable)
	store.failWrites.Store(false)
	_, err = m.Verify(ctx, key)
	require.NoError(t, err, "failed mutations changed nothing")
}

// wrongStore returns a record that does not belong to the hash asked for.
type wrongStore struct{ *apikey.MemoryStore }

func (s wrongStore) ByHash(context.Context, apikey.Hash) (apikey.Record, error) {
	return apikey.Record{ID: "x", UserID: "admin", Active: true, Hash: apikey.HashKey("other")}, nil
}

func TestStoreReturnsWrongRecord(t *testing.T) {
	m := newManager(t, apikey.Config{Store: wrongStore{apikey.NewMemoryStore()}})
	p, err := m.Verify(context.Background(), langflowKey)
	require.ErrorIs(t, err, apikey.ErrUnavailable)
	assert.Equal(t, apikey.Principal{}, p)
}

func TestVerifyCanceledContext(t *testing.T) {
	m := newManager(t, apikey.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := m.Verify(ctx, langflowKey)
	require.ErrorIs(t, err, apikey.ErrUnavailable)
	require.ErrorIs(t, err, context.Canceled)
}

// TestConcurrentCacheChurn: verifiers, a small cache with constant evictions,
// and invalidations all at once. A lock-free cache read must never return
// another key's principal, and every valid key must keep verifying.
func TestConcurrentCacheChurn(t *testing.T) {
	m := newManager(t, apikey.Config{CacheSize: 20, FlushInterval: -1})
	ctx := context.Background()
	const nkeys = 200
	keys := make([]string, nkeys)
	users := make([]string, nkeys)
	for i := range keys {
		users[i] = "user-" + string(rune('A'+i%26)) + string(rune('a'+i/26))
		keys[i], _ = create(t, m, users[i], "k", apikey.CreateOptions{})
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			m.Invalidate(apikey.HashKey(keys[(i*31)%nkeys]))
		}
	})
	for w := range 6 {
		wg.Go(func() {
			for i := range 3000 {
				k := (w*7 + i*13) % nkeys
				p, err := m.Verify(ctx, keys[k])
				if err != nil || p.UserID != users[k] {
					t.Errorf("Verify(key %d) = %q, %v; want %q", k, p.UserID, err, users[k])
					return
				}
			}
		})
	}
	time.Sleep(10 * time.Millisecond)
	for range 4000 { // meanwhile: verifications of unknown keys fill negative entries
		unknown, _ := apikey.Langflow.Generate()
		_, err := m.Verify(ctx, unknown)
		require.ErrorIs(t, err, apikey.ErrInvalid)
	}
	close(stop)
	wg.Wait()
}
