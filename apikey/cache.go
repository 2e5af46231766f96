package apikey

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// entry is one verification result as the cache keeps it: a record (positive)
// or "no such key" (negative). Everything but the usage counters is written
// once, before the entry is published in the cache. The fields a cache hit
// reads first (hash, staleness, expiry, outcome, the last use) fill the first
// 64 bytes.
type entry struct {
	h         Hash  // the key's hash: the cache's key
	until     int64 // the entry is stale from this time on, Unix nanoseconds
	expires   int64 // key expiry, Unix nanoseconds
	unknown   bool  // negative entry: no such key
	active    bool
	hasExpiry bool

	// Usage counters of a shared (cached) entry; see usage.go. dirty and
	// last share the first 64 bytes with the fields above.
	dirty atomic.Bool  // in the pending list
	last  atomic.Int64 // latest use, Unix nanoseconds
	uses  atomic.Int64 // uses not yet taken by a flush

	lim *keyLimiter // the key's limits; nil: unlimited

	principal Principal
}

// valid reports whether e authenticates its key at time now: a known key,
// active and not expired.
func (e *entry) valid(now int64) bool {
	return !e.unknown && e.active && (!e.hasExpiry || now <= e.expires)
}

// cache maps hashes to entries in shards. Each shard is an open-addressing
// hash table (linear probing, at most half full) of atomic pointers to
// entries, which hold their hash. Readers take no lock and write nothing
// shared: a cache hit is a few plain loads, so verifications scale across
// cores, and a lookup in a large cache costs one memory access for the slot
// and one for the entry (a Go map behind a read-write mutex costs two atomic
// read-modify-writes and one more memory access). Writers (fills,
// invalidations) serialise on the shard's mutex and publish with atomic
// stores. A reader that races a writer moving entries may miss an entry that
// is there; it then reads the store, which is correct, only slower.
//
// Each shard is bounded; when full, an insertion evicts stale entries first,
// else the sampled entry closest to going stale.
//
// Every shard has a generation, incremented by each invalidation. A
// verification that missed the cache reads the generation before it reads
// the store, and inserts its result only if the generation has not changed
// meanwhile, so a result read before an invalidation can never be cached
// after it.
type cache struct {
	shards []shard
	mask   int
	per    int // capacity of each shard
}

type shard struct {
	slots    []atomic.Pointer[entry] // power-of-two length ≥ 2·per, so probes end
	gen      atomic.Uint64           // written under mu
	mu       sync.Mutex              // serialises writers
	n        int                     // occupied slots; guarded by mu
	minUntil int64                   // no entry goes stale before this (a lower bound); guarded by mu
	_        [128 - 56]byte          // one shard per 128-byte block: no false sharing
}

const (
	maxShards   = 256 // indexed by the last byte of the hash
	minPerShard = 16
	evictSample = 8
)

func newCache(size int) *cache {
	n := maxShards
	for n > 1 && size/n < minPerShard {
		n /= 2
	}
	c := &cache{shards: make([]shard, n), mask: n - 1, per: max(size/n, 1)}
	slots := 2
	for slots < 2*c.per {
		slots *= 2
	}
	for i := range c.shards {
		c.shards[i].slots = make([]atomic.Pointer[entry], slots)
	}
	return c
}

// The shard comes from the hash's last byte, the slot from its first eight:
// independent bits of a uniform hash.
func (c *cache) shard(h *Hash) *shard { return &c.shards[int(h[len(h)-1])&c.mask] }

func (s *shard) home(h *Hash) int {
	return int(binary.LittleEndian.Uint64(h[:8]) & uint64(len(s.slots)-1))
}

// find returns the index of h's slot, or of the empty slot where it would go,
// and the entry there (nil if empty). The table is at most half full, so the
// probe ends within a few slots; the bound only guards a reader racing
// writers that move entries.
func (s *shard) find(h *Hash) (int, *entry) {
	mask := len(s.slots) - 1
	i := s.home(h)
	for range len(s.slots) {
		e := s.slots[i].Load()
		if e == nil || e.h == *h {
			return i, e
		}
		i = (i + 1) & mask
	}
	return i, nil // only a racing reader gets here: a miss
}

// get returns the fresh entry for h (nil if none) and the shard generation,
// read before the lookup. It takes no lock.
func (c *cache) get(h *Hash, now int64) (*entry, uint64) {
	s := c.shard(h)
	gen := s.gen.Load()
	if _, e := s.find(h); e != nil && now < e.until {
		return e, gen
	}
	return nil, gen
}

// put caches e (whose hash is e.h) unless the shard was invalidated since
// generation gen, and reports whether it did.
func (c *cache) put(e *entry, gen uint64, now int64) bool {
	s := c.shard(&e.h)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen.Load() != gen {
		return false
	}
	i, old := s.find(&e.h)
	if old == nil {
		if s.n >= c.per {
			s.evict(now)
			i, _ = s.find(&e.h) // eviction moves entries
		}
		s.n++
	}
	s.slots[i].Store(e)
	if s.n == 1 || e.until < s.minUntil {
		s.minUntil = e.until
	}
	return true
}

// evict makes room for one entry. If an entry may have gone stale (now has
// reached the shard's lower bound of expiry times), it sweeps the shard,
// removing every stale entry and recomputing the bound; each sweep either
// frees room or pushes the bound past now, so sweeps stay rare. Otherwise
// (every entry is fresh) it removes, among a few entries sampled from a random
// place, the one that would go stale first. The caller holds s.mu.
func (s *shard) evict(now int64) {
	if now >= s.minUntil {
		soonest, removed := int64(math.MaxInt64), false
		for i := 0; i < len(s.slots); {
			e := s.slots[i].Load()
			switch {
			case e == nil:
				i++
			case now >= e.until:
				s.deleteAt(i) // moves a later entry into i: look at i again
				removed = true
			default:
				soonest = min(soonest, e.until)
				i++
			}
		}
		s.minUntil = soonest
		if removed {
			return
		}
	}
	mask := len(s.slots) - 1
	victim, soonest, seen := -1, int64(0), 0
	for i, k := rand.IntN(len(s.slots)), 0; k < len(s.slots) && seen < evictSample; i, k = (i+1)&mask, k+1 {
		if e := s.slots[i].Load(); e != nil {
			if victim < 0 || e.until < soonest {
				victim, soonest = i, e.until
			}
			seen++
		}
	}
	if victim >= 0 {
		s.deleteAt(victim)
	}
}

// deleteAt empties slot i and moves later entries of its probe run back, so
// that every entry stays reachable from its home slot (backward-shift
// deletion). The caller holds s.mu.
func (s *shard) deleteAt(i int) {
	mask := len(s.slots) - 1
	for j := (i + 1) & mask; ; j = (j + 1) & mask {
		e := s.slots[j].Load()
		if e == nil {
			break
		}
		// The entry at j may move to i unless its home lies cyclically in (i, j].
		k := s.home(&e.h)
		if i <= j && i < k && k <= j || i > j && (i < k || k <= j) {
			continue
		}
		s.slots[i].Store(e)
		i = j
	}
	s.slots[i].Store(nil)
	s.n--
}

// invalidate drops h and bumps the shard generation.
func (c *cache) invalidate(h *Hash) {
	s := c.shard(h)
	s.mu.Lock()
	if i, e := s.find(h); e != nil {
		s.deleteAt(i)
	}
	s.gen.Add(1)
	s.mu.Unlock()
}

// invalidateKeyID drops the positive entry of key id, wherever its hash puts
// it, and bumps every shard generation. It scans the whole cache, so it is
// for the rare case where the hash is unknown: a revocation whose outcome
// the store did not report.
func (c *cache) invalidateKeyID(id string) {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		for j := 0; j < len(s.slots); {
			if e := s.slots[j].Load(); e != nil && !e.unknown && e.principal.KeyID == id {
				s.deleteAt(j) // may move a later entry into j: look at j again
				continue
			}
			j++
		}
		s.gen.Add(1)
		s.mu.Unlock()
	}
}

// clear drops every entry and bumps every shard generation, so that no
// verification under way caches what it read before.
func (c *cache) clear() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		for j := range s.slots {
			s.slots[j].Store(nil)
		}
		s.n = 0
		s.gen.Add(1)
		s.mu.Unlock()
	}
}
