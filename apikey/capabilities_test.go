package apikey_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey"
)

// keyedStore is a MemoryStore that must be given the key (KeyInserter) and
// whose rows change behind the Manager's back (CacheBound).
type keyedStore struct {
	*apikey.MemoryStore
	keys  map[string]string // record ID → key
	bound time.Duration
}

func (s *keyedStore) Insert(context.Context, apikey.Record) error {
	panic("Insert called on a KeyInserter")
}

func (s *keyedStore) InsertKey(ctx context.Context, r apikey.Record, key string) error {
	if apikey.HashKey(key) != r.Hash {
		panic("InsertKey: key and hash differ")
	}
	s.keys[r.ID] = key
	return s.MemoryStore.Insert(ctx, r)
}

func (s *keyedStore) MaxCacheAge() time.Duration { return s.bound }

func TestKeyInserterGetsTheKey(t *testing.T) {
	ctx := context.Background()
	s := &keyedStore{MemoryStore: apikey.NewMemoryStore(), keys: map[string]string{}}
	m, err := apikey.NewManager(apikey.Config{Store: s, FlushInterval: -1})
	require.NoError(t, err)
	defer m.Close()
	key, rec, err := m.Create(ctx, "u", "n", apikey.CreateOptions{})
	require.NoError(t, err)
	assert.Equal(t, key, s.keys[rec.ID])
	imported, err := apikey.Langflow.Generate()
	require.NoError(t, err)
	rec, err = m.Import(ctx, "u", "imported", imported, apikey.CreateOptions{})
	require.NoError(t, err)
	assert.Equal(t, imported, s.keys[rec.ID])
}

// TestCacheBoundCapsTTL: a store's bound shortens the cache's 5 s default,
// so a row deleted behind the Manager's back is refused after the bound.
func TestCacheBoundCapsTTL(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		bound   time.Duration
		refused bool // after one bound has passed
	}{
		{"bound 1s", time.Second, true},
		{"no bound", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			s := &keyedStore{MemoryStore: apikey.NewMemoryStore(), keys: map[string]string{}, bound: tc.bound}
			m, err := apikey.NewManager(apikey.Config{Store: s, Now: clock.Now, FlushInterval: -1})
			require.NoError(t, err)
			defer m.Close()
			key, rec, err := m.Create(ctx, "u", "n", apikey.CreateOptions{})
			require.NoError(t, err)
			_, err = m.Verify(ctx, key)
			require.NoError(t, err)
			_, err = s.MemoryStore.Delete(ctx, "u", rec.ID) // behind the Manager's back
			require.NoError(t, err)
			_, err = m.Verify(ctx, key)
			require.NoError(t, err, "cached")
			clock.Advance(time.Second)
			_, err = m.Verify(ctx, key)
			if tc.refused {
				require.ErrorIs(t, err, apikey.ErrInvalid)
			} else {
				require.NoError(t, err, "the 5 s default still holds")
			}
		})
	}
}
