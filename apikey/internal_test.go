package apikey

import (
	"context"
	"errors"
	"hash/crc32"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCRC32String(t *testing.T) {
	for _, s := range []string{"", "a", "kf_abc", "kf_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefg"} {
		assert.Equal(t, crc32.ChecksumIEEE([]byte(s)), crc32String(s), "%q", s)
	}
}

func cacheLen(c *cache) int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += s.n
		s.mu.Unlock()
	}
	return n
}

// TestCacheBounded: no more than CacheSize entries, positive or negative.
func TestCacheBounded(t *testing.T) {
	for _, size := range []int{1, 7, 100, 5000} {
		m, err := NewManager(Config{CacheSize: size, FlushInterval: -1})
		require.NoError(t, err)
		ctx := context.Background()
		for i := range 3 * size {
			key, _, err := m.Create(ctx, "u", "k", CreateOptions{})
			require.NoError(t, err)
			_, err = m.Verify(ctx, key)
			require.NoError(t, err)
			unknown, _ := Langflow.Generate()
			_, err = m.Verify(ctx, unknown)
			require.ErrorIs(t, err, ErrInvalid)
			if i%50 == 0 {
				require.LessOrEqual(t, cacheLen(m.cache), size)
			}
		}
		assert.LessOrEqual(t, cacheLen(m.cache), size)
		assert.Greater(t, cacheLen(m.cache), size/2, "the cache is used")
		require.NoError(t, m.Close())
	}
}

// TestCacheEvictsStaleFirst: when a shard is full, stale entries go first.
func TestCacheEvictsStaleFirst(t *testing.T) {
	c := newCache(1)
	fresh, stale := Hash{1}, Hash{2}
	require.True(t, c.put(&entry{h: stale, until: 10}, 0, 0))
	require.True(t, c.put(&entry{h: fresh, until: 100}, 0, 20))
	e, _ := c.get(&fresh, 20)
	assert.NotNil(t, e)

	c = newCache(minPerShard) // one shard
	require.Len(t, c.shards, 1)
	now := int64(1000)
	var live []Hash
	for i := range minPerShard {
		h := Hash{byte(i), 1}
		until := now + 1000
		if i%2 == 0 {
			until = now - 1 // stale
		} else {
			live = append(live, h)
		}
		c.put(&entry{h: h, until: until}, 0, now)
	}
	for i := range minPerShard / 2 {
		h := Hash{byte(i), 2}
		c.put(&entry{h: h, until: now + 1000}, 0, now)
	}
	for _, h := range live {
		e, _ := c.get(&h, now)
		assert.NotNil(t, e, "a live entry was evicted while stale ones remained")
	}
	assert.Equal(t, minPerShard, c.shards[0].n)
}

func TestCoarseClock(t *testing.T) {
	var c coarseClock
	before := time.Now().UnixNano()
	got := c.Now()
	assert.GreaterOrEqual(t, got, before)
	// The ticker goroutine moves it on: wait for that rather than assume
	// how soon it runs (a loaded machine can hold it up for many ticks).
	later := time.Now().Add(20 * time.Millisecond).UnixNano()
	assert.Eventually(t, func() bool { return c.Now() >= later }, 10*time.Second, time.Millisecond, "the clock advances")
	assert.True(t, c.running.Load())
	c.close()
	assert.False(t, c.running.Load())
	// After close it still tells the time, from time.Now.
	assert.InDelta(t, time.Now().UnixNano(), c.Now(), float64(time.Second))
	assert.False(t, c.running.Load())
}

func TestCoarseClockStopsWhenIdle(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the idle timeout")
	}
	t.Parallel() // its own clock; waits about two seconds, so overlap them
	var c coarseClock
	c.Now()
	assert.Eventually(t, func() bool { return !c.running.Load() }, 5*time.Second, 10*time.Millisecond)
	c.Now() // restarts
	assert.True(t, c.running.Load())
	c.close()
}

func TestEntrySize(t *testing.T) {
	assert.EqualValues(t, 168, unsafe.Sizeof(entry{}), "entry layout changed: keep the hot fields in the first 64 bytes")
	assert.LessOrEqual(t, unsafe.Offsetof(entry{}.last)+8, uintptr(64), "the hash, staleness, outcome and last use in the first 64 bytes")
}

// TestCacheTableModel drives one shard's open-addressing table with random
// puts and invalidations of hashes crafted to collide, and checks its
// invariants after every step: every entry is reachable from its home slot,
// no hash is stored twice, the count is right and bounded, and a present hash
// maps to the entry last put for it.
func TestCacheTableModel(t *testing.T) {
	c := &cache{shards: make([]shard, 1), per: 8}
	c.shards[0].slots = make([]atomic.Pointer[entry], 16)
	s := &c.shards[0]
	var hashes []Hash
	for i := range 24 {
		var h Hash
		h[0] = []byte{0, 1, 15, 14, 7}[i%5] // home slots that wrap around
		h[8] = byte(i)                      // distinct hashes
		hashes = append(hashes, h)
	}
	latest := make(map[Hash]*entry)
	rng := rand.New(rand.NewPCG(1, 2))
	now := int64(1000)
	for step := range 20000 {
		h := hashes[rng.IntN(len(hashes))]
		switch rng.IntN(4) {
		case 0:
			c.invalidate(&h)
			delete(latest, h)
			e, _ := c.get(&h, now)
			require.Nil(t, e, "step %d: present after invalidate", step)
		default:
			e := &entry{h: h, until: now + 1 + int64(rng.IntN(100))}
			_, gen := c.get(&h, now)
			require.True(t, c.put(e, gen, now))
			latest[h] = e
			got, _ := c.get(&h, now)
			require.Same(t, e, got, "step %d: put then get", step)
		}
		now += int64(rng.IntN(3))
		occupied, seen := 0, make(map[Hash]bool)
		for i := range s.slots {
			e := s.slots[i].Load()
			if e == nil {
				continue
			}
			occupied++
			require.False(t, seen[e.h], "step %d: hash stored twice", step)
			seen[e.h] = true
			at, _ := s.find(&e.h)
			require.Equal(t, i, at, "step %d: entry unreachable from its home", step)
			require.Same(t, latest[e.h], e, "step %d: stale entry for a hash", step)
		}
		require.Equal(t, occupied, s.n, "step %d", step)
		require.LessOrEqual(t, s.n, c.per, "step %d", step)
	}
}

// invalidateKeyID finds an entry by key ID wherever it sits, including in a
// probe run that backward-shift deletion rearranges under the scan, and
// leaves the others.
func TestCacheInvalidateKeyID(t *testing.T) {
	c := newCache(16) // one shard of 32 slots
	require.Len(t, c.shards, 1)
	// Six entries with one home slot make one probe run: A A B A C A.
	var ents []*entry
	for i, id := range []string{"A", "A", "B", "A", "C", "A"} {
		var h Hash
		h[0] = 5 // the home slot
		h[8] = byte(i)
		e := &entry{h: h, until: math.MaxInt64, active: true, principal: Principal{KeyID: id}}
		require.True(t, c.put(e, c.shards[0].gen.Load(), 0))
		ents = append(ents, e)
	}
	gen := c.shards[0].gen.Load()
	c.invalidateKeyID("A")
	assert.Greater(t, c.shards[0].gen.Load(), gen, "fills under way must not cache what they read")
	for _, e := range ents {
		got, _ := c.get(&e.h, 0)
		if e.principal.KeyID == "A" {
			assert.Nil(t, got, "entry %x of the invalidated key", e.h[8])
		} else {
			assert.Same(t, e, got, "entry %x must stay", e.h[8])
		}
	}
}

// downFeed is a ChangeFeed that always fails.
type downFeed struct{}

func (downFeed) Changes(context.Context, string) ([]Hash, string, error) {
	return nil, "", errors.New("feed down")
}

// TestUntrustedCacheNotFilled: while the change feed is down (here: it never
// worked, so nothing cached is trusted), a verification reads the store and
// caches nothing, since no cached result would be served. Before, each one
// put a new entry (an allocation and a shard lock) and queued it for the
// usage flush: with every request a miss, one pending entry per request.
// Uses are still all counted.
func TestUntrustedCacheNotFilled(t *testing.T) {
	ctx := context.Background()
	store := NewMemoryStore()
	m, err := NewManager(Config{
		Store: store, Changes: downFeed{}, FlushInterval: -1,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })
	key, rec, err := m.Create(ctx, "u", "k", CreateOptions{})
	require.NoError(t, err)
	const n = 50
	for range n {
		_, err := m.Verify(ctx, key)
		require.NoError(t, err)
	}
	assert.Zero(t, cacheLen(m.cache), "nothing cached while nothing cached is trusted")
	m.usage.mu.Lock()
	pending := len(m.usage.pending)
	m.usage.mu.Unlock()
	assert.Zero(t, pending, "no entries queued for the flush")
	require.NoError(t, m.Flush(ctx))
	got, err := store.ByHash(ctx, rec.Hash)
	require.NoError(t, err)
	assert.EqualValues(t, n, got.TotalUses)
}
