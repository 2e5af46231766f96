package apikey

import (
	"context"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"
)

// HashLister is an optional capability of a Store: listing the hash of every
// record. A Manager that follows a ChangeFeed (Config.Changes) on a store
// with it keeps the key index, so that a key that does not exist is refused
// without reading the store (Config.UnknownKeyReads). MemoryStore and
// package apikey/sqlstore implement it.
type HashLister interface {
	// EachHash calls fn with the hash of every record, in no particular
	// order, and returns fn's first error or the store's failure. Every
	// record committed before the call began and not deleted meanwhile is
	// listed; records inserted or deleted during the call may or may not be.
	EachHash(ctx context.Context, fn func(Hash) error) error
}

// DefaultUnknownKeyReads is Config.UnknownKeyReads's default.
const DefaultUnknownKeyReads = 100

// keyIndex is the key index: the first 8 bytes of the hash of every record
// in the store. It is loaded when the change feed takes a fresh position
// (its first poll, and after the feed lost changes) and kept complete by
// every change the feed reports and every key this Manager inserts (each
// changed hash is added: a deleted key stays until the next load, which
// costs its next verification a store read, never a wrong answer). With the
// feed trusted, a key absent from a ready index was not in the store when
// the feed's last poll began.
//
// Lookups take a read lock: they happen on cache misses only.
type keyIndex struct {
	lister HashLister
	log    func(msg string, args ...any)
	done   context.Context // ends at the Manager's Close
	wg     sync.WaitGroup  // a load under way

	mu      sync.RWMutex
	set     map[uint64]struct{} // the index, when ready
	pending map[uint64]struct{} // hashes added since the load began; nil when ready
	ready   bool
	gen     uint64 // counts resets: a load installs its set only if none came since it began
	size    int    // the size of the last set loaded, to size the next

	// The store reads allowed for keys missing from the index: limit a
	// second, counted in a one-second window.
	limit  int64
	window atomic.Int64 // the current window, Unix seconds
	reads  atomic.Int64 // reads taken in it
}

func newKeyIndex(done context.Context, lister HashLister, limit int, log func(string, ...any)) *keyIndex {
	return &keyIndex{lister: lister, limit: int64(limit), done: done, log: log}
}

// indexKey is the part of a hash the index keeps. Two keys sharing it (one
// chance in 2⁶⁴ a pair) only cost a store read.
func indexKey(h *Hash) uint64 { return binary.LittleEndian.Uint64(h[:8]) }

// refuses reports whether a verification of h at now may be refused as
// unknown without reading the store: the index is ready, lacks h, and this
// second's store reads for keys missing from the index are used up. The
// caller has checked first that the feed is trusted (no read of the budget
// is taken while it is not: the store is read anyway then).
func (x *keyIndex) refuses(h *Hash, now int64) bool {
	k := indexKey(h)
	x.mu.RLock()
	ready := x.ready
	_, in := x.set[k]
	x.mu.RUnlock()
	if !ready || in {
		return false
	}
	return !x.takeRead(now)
}

// takeRead takes one of this second's store reads for keys missing from
// the index, and reports whether one was left.
func (x *keyIndex) takeRead(now int64) bool {
	sec := now / int64(time.Second)
	if w := x.window.Load(); w != sec && x.window.CompareAndSwap(w, sec) {
		x.reads.Store(0)
	}
	return x.reads.Add(1) <= x.limit
}

// add records that a key with hash h may exist (it was inserted or changed).
func (x *keyIndex) add(h *Hash) {
	k := indexKey(h)
	x.mu.Lock()
	if x.ready {
		x.set[k] = struct{}{}
	} else if x.pending != nil {
		x.pending[k] = struct{}{}
	}
	x.mu.Unlock()
}

// reset discards the index and loads it again in the background. It is
// called after the feed took its position, so that the load lists every
// record whose insertion the feed will not report.
func (x *keyIndex) reset() {
	x.mu.Lock()
	x.gen++
	gen := x.gen
	x.ready, x.set, x.pending = false, nil, map[uint64]struct{}{}
	x.mu.Unlock()
	x.wg.Go(func() { x.load(gen) })
}

// wait waits for a load under way, which ends once the Manager's done
// context does. Call it after the feed's poller (which calls reset) has
// stopped.
func (x *keyIndex) wait() { x.wg.Wait() }

// load lists the store's hashes, retrying with a growing pause (1 s to 30 s)
// while the store fails, until it succeeds, a newer reset supersedes it or
// the Manager is closed. Meanwhile every verification that misses the cache
// reads the store, as without an index.
func (x *keyIndex) load(gen uint64) {
	pause := time.Second
	for {
		set := make(map[uint64]struct{}, x.hint())
		err := x.lister.EachHash(x.done, func(h Hash) error {
			set[indexKey(&h)] = struct{}{}
			return nil
		})
		if err == nil {
			x.install(gen, set)
			return
		}
		if x.done.Err() != nil || x.superseded(gen) {
			return
		}
		x.log("apikey: key index load failed; unknown keys read the store until it loads", "retry_in", pause, "err", err)
		select {
		case <-x.done.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, 30*time.Second)
	}
}

func (x *keyIndex) hint() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.size
}

func (x *keyIndex) superseded(gen uint64) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.gen != gen
}

// install makes set, with the hashes added while it was loaded, the index,
// unless a reset came meanwhile.
func (x *keyIndex) install(gen uint64, set map[uint64]struct{}) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.gen != gen {
		return
	}
	for k := range x.pending {
		set[k] = struct{}{}
	}
	x.set, x.pending, x.ready, x.size = set, nil, true, len(set)
}
