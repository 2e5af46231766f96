package apikey_test

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey"
)

// TestUsageExactUnderConcurrency: 10 000 concurrent verifications of a few
// keys give exactly 10 000 uses, written in one AddUsage call with one entry
// per key (docs/langflow-compatibility.md#usage-counters, without a write per request).
func TestUsageExactUnderConcurrency(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  apikey.Config
	}{
		{"cached", apikey.Config{}},
		{"cache disabled", apikey.Config{CacheSize: -1}},
		{"tiny cache (evictions)", apikey.Config{CacheSize: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			store := newFaultyStore()
			cfg := tc.cfg
			cfg.Store, cfg.Now, cfg.FlushInterval = store, clock.Now, -1
			m := newManager(t, cfg)
			ctx := context.Background()
			const nkeys, workers, perWorker = 5, 20, 500 // 10 000 verifications
			keys := make([]string, nkeys)
			for i := range keys {
				keys[i], _ = create(t, m, "u", "k", apikey.CreateOptions{})
			}
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					for i := range perWorker {
						if _, err := m.Verify(ctx, keys[(w+i)%nkeys]); err != nil {
							t.Error(err)
							return
						}
						if w == 0 && i%100 == 0 {
							clock.Advance(time.Millisecond)
						}
						if w == 1 && i%125 == 0 {
							m.Invalidate(apikey.HashKey(keys[i%nkeys]))
						}
					}
				})
			}
			wg.Wait()
			require.NoError(t, m.Flush(ctx))
			require.EqualValues(t, 1, store.calls("AddUsage"), "one store write per flush")
			batch := store.lastBatch()
			require.Len(t, batch, nkeys, "one entry per key")
			var total int64
			for i, key := range keys {
				rec := record(t, store, key)
				total += rec.TotalUses
				require.NotNil(t, rec.LastUsedAt)
				assert.False(t, rec.LastUsedAt.After(clock.Now()))
				if i > 0 {
					assert.Less(t, batch[i-1].ID, batch[i].ID, "batch sorted by ID")
				}
			}
			assert.EqualValues(t, workers*perWorker, total)

			// Nothing left: the next flush writes nothing.
			require.NoError(t, m.Flush(ctx))
			assert.EqualValues(t, 1, store.calls("AddUsage"))
		})
	}
}

func TestUsageLastUsedAt(t *testing.T) {
	clock := newFakeClock()
	store := apikey.NewMemoryStore()
	m := newManager(t, apikey.Config{Store: store, Now: clock.Now, FlushInterval: -1})
	ctx := context.Background()
	key, _ := create(t, m, "u", "k", apikey.CreateOptions{})
	clock.Advance(time.Minute)
	_, err := m.Verify(ctx, key)
	require.NoError(t, err)
	first := clock.Now()
	require.NoError(t, m.Flush(ctx))
	rec := record(t, store, key)
	assert.EqualValues(t, 1, rec.TotalUses)
	require.NotNil(t, rec.LastUsedAt)
	assert.True(t, rec.LastUsedAt.Equal(first))

	clock.Advance(time.Minute)
	_, err = m.Verify(ctx, key)
	require.NoError(t, err)
	require.NoError(t, m.Flush(ctx))
	rec = record(t, store, key)
	assert.EqualValues(t, 2, rec.TotalUses)
	assert.True(t, rec.LastUsedAt.Equal(clock.Now()))

	// Failed verifications are not uses.
	require.NoError(t, m.SetActive(ctx, "u", rec.ID, false))
	_, err = m.Verify(ctx, key)
	require.ErrorIs(t, err, apikey.ErrInactive)
	require.NoError(t, m.Flush(ctx))
	assert.EqualValues(t, 2, record(t, store, key).TotalUses)
}

func TestUsageFlushFailureKeepsCounts(t *testing.T) {
	store := newFaultyStore()
	var logs bytes.Buffer
	m := newManager(t, apikey.Config{Store: store, FlushInterval: -1, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx := context.Background()
	key, _ := create(t, m, "u", "k", apikey.CreateOptions{})
	for range 3 {
		_, err := m.Verify(ctx, key)
		require.NoError(t, err)
	}
	store.failAddUsage.Store(true)
	err := m.Flush(ctx)
	require.ErrorIs(t, err, apikey.ErrUnavailable)
	require.ErrorIs(t, err, errInjected)
	assert.Contains(t, logs.String(), "usage flush failed")
	assert.NotContains(t, logs.String(), key[3:])

	for range 2 {
		_, err := m.Verify(ctx, key)
		require.NoError(t, err)
	}
	require.Error(t, m.Flush(ctx))
	store.failAddUsage.Store(false)
	require.NoError(t, m.Flush(ctx))
	assert.EqualValues(t, 5, record(t, store, key).TotalUses)
	assert.Len(t, store.lastBatch(), 1, "kept and new counts of a key are merged into one entry")
}

func TestUsageCloseFlushes(t *testing.T) {
	store := apikey.NewMemoryStore()
	m, err := apikey.NewManager(apikey.Config{Store: store}) // default 10 s interval
	require.NoError(t, err)
	ctx := context.Background()
	key, _ := create(t, m, "u", "k", apikey.CreateOptions{})
	for range 7 {
		_, err := m.Verify(ctx, key)
		require.NoError(t, err)
	}
	require.NoError(t, m.Close())
	assert.EqualValues(t, 7, record(t, store, key).TotalUses)

	// Still usable after Close; counts go out with explicit flushes.
	_, err = m.Verify(ctx, key)
	require.NoError(t, err)
	require.NoError(t, m.Close())
	assert.EqualValues(t, 8, record(t, store, key).TotalUses)
}

func TestUsageBackgroundFlush(t *testing.T) {
	store := newFaultyStore()
	m := newManager(t, apikey.Config{Store: store, FlushInterval: 10 * time.Millisecond})
	ctx := context.Background()
	key, _ := create(t, m, "u", "k", apikey.CreateOptions{})
	_, err := m.Verify(ctx, key)
	require.NoError(t, err)
	assert.Eventually(t, func() bool {
		r, err := store.ByHash(ctx, apikey.HashKey(key))
		return err == nil && r.TotalUses == 1
	}, 5*time.Second, 5*time.Millisecond)
}

// TestUsageDisabled: LANGFLOW_DISABLE_TRACK_APIKEY_USAGE (docs/langflow-compatibility.md#usage-counters).
func TestUsageDisabled(t *testing.T) {
	store := newFaultyStore()
	m := newManager(t, apikey.Config{Store: store, DisableUsageTracking: true})
	ctx := context.Background()
	key, _ := create(t, m, "u", "k", apikey.CreateOptions{})
	for range 5 {
		_, err := m.Verify(ctx, key)
		require.NoError(t, err)
	}
	require.NoError(t, m.Flush(ctx))
	require.NoError(t, m.Close())
	assert.Zero(t, store.calls("AddUsage"))
	rec := record(t, store, key)
	assert.Zero(t, rec.TotalUses)
	assert.Nil(t, rec.LastUsedAt)
}

// TestUsageOfDeletedKey: counts of a key deleted before the flush are
// dropped by the store, and do not fail the flush.
func TestUsageOfDeletedKey(t *testing.T) {
	store := newFaultyStore()
	m := newManager(t, apikey.Config{Store: store, FlushInterval: -1})
	ctx := context.Background()
	key, rec := create(t, m, "u", "k", apikey.CreateOptions{})
	other, _ := create(t, m, "u", "other", apikey.CreateOptions{})
	for _, k := range []string{key, other} {
		_, err := m.Verify(ctx, k)
		require.NoError(t, err)
	}
	require.NoError(t, m.Delete(ctx, "u", rec.ID))
	require.NoError(t, m.Flush(ctx))
	assert.EqualValues(t, 1, record(t, store, other).TotalUses)
}
