package apikey_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/internal/latency"
)

// benchKeys creates n keys through m and returns them.
func benchKeys(b *testing.B, m *apikey.Manager, n int) []string {
	b.Helper()
	keys := make([]string, n)
	for i := range keys {
		key, _, err := m.Create(context.Background(), fmt.Sprintf("user-%d", i%16), "bench", apikey.CreateOptions{})
		if err != nil {
			b.Fatal(err)
		}
		keys[i] = key
	}
	return keys
}

func newBenchManager(b *testing.B, cfg apikey.Config) *apikey.Manager {
	b.Helper()
	m, err := apikey.NewManager(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.Close() })
	return m
}

// benchUntil calls cond every 10 ms until it holds, and fails b with what
// if it does not within 10 s.
func benchUntil(b *testing.B, what string, cond func() bool) {
	b.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal(what)
		}
	}
}

// warm verifies every key once, so that the cache holds them all.
func warm(b *testing.B, m *apikey.Manager, keys []string) {
	b.Helper()
	for _, k := range keys {
		if _, err := m.Verify(context.Background(), k); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify: warm cache, memory store, one goroutine, 1024 keys.
func BenchmarkVerify(b *testing.B) {
	for _, tc := range []struct {
		name   string
		format func(b *testing.B) apikey.Format
	}{
		{"langflow", func(*testing.B) apikey.Format { return apikey.Langflow }},
		{"checksum", func(b *testing.B) apikey.Format {
			f, err := apikey.NewChecksumFormat("kf_")
			if err != nil {
				b.Fatal(err)
			}
			return f
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			m := newBenchManager(b, apikey.Config{Format: tc.format(b)})
			keys := benchKeys(b, m, 1024)
			warm(b, m, keys)
			ctx := context.Background()
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Verify(ctx, keys[i&1023]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkVerifyChangeFeed: as BenchmarkVerify/langflow, with a change feed
// (several instances): a cache hit also checks that the feed was read less
// than ChangesMaxLag ago, on the monotonic clock.
func BenchmarkVerifyChangeFeed(b *testing.B) {
	store := newFaultyStore()
	m := newBenchManager(b, apikey.Config{Store: store, Changes: &fakeFeed{}, ChangesMaxLag: time.Second, ChangesPollInterval: 100 * time.Millisecond})
	keys := benchKeys(b, m, 1024)
	ctx := context.Background()
	benchUntil(b, "the cache never served", func() bool { // a poll has made the cache trusted
		before := store.calls("ByHash")
		warm(b, m, keys)
		return store.calls("ByHash") == before
	})
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Verify(ctx, keys[i&1023]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkVerifyUnknown: a flood of fresh, well-formed keys that no store
// holds, with a change feed. "index": the store lists its hashes, so each is
// refused from the key index once the second's budget of store reads is
// spent; "store": without an index each one is a cache miss and a store read
// (here of a MemoryStore: a database read costs tens of microseconds more).
func BenchmarkVerifyUnknown(b *testing.B) {
	for _, tc := range []struct {
		name  string
		reads int
	}{{"index", 1}, {"store", -1}} {
		b.Run(tc.name, func(b *testing.B) {
			store := newListedStore()
			m := newBenchManager(b, apikey.Config{Store: store, Changes: &fakeFeed{}, UnknownKeyReads: tc.reads,
				ChangesMaxLag: time.Second, ChangesPollInterval: 100 * time.Millisecond})
			benchKeys(b, m, 1024)
			unknown := make([]string, 1<<16)
			for i := range unknown {
				unknown[i], _ = apikey.Langflow.Generate()
			}
			ctx := context.Background()
			benchUntil(b, "the index never refused", func() bool {
				before := store.calls("ByHash")
				for _, k := range unknown[:4] {
					_, _ = m.Verify(ctx, k)
				}
				return tc.reads < 0 || store.calls("ByHash") == before
			})
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Verify(ctx, unknown[i&(1<<16-1)]); err == nil {
					b.Fatal("an unknown key verified")
				}
				i++
			}
		})
	}
}

// BenchmarkVerifyParallel: as BenchmarkVerify, from GOMAXPROCS goroutines
// (run with -cpu 1,2 to see the scaling).
func BenchmarkVerifyParallel(b *testing.B) {
	m := newBenchManager(b, apikey.Config{})
	keys := benchKeys(b, m, 1024)
	warm(b, m, keys)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(time.Now().UnixNano()) // a different walk per goroutine
		for pb.Next() {
			if _, err := m.Verify(ctx, keys[i&1023]); err != nil {
				b.Error(err)
				return
			}
			i += 7
		}
	})
}

// BenchmarkVerify1M: 1 000 000 records in the memory store (inserted
// directly). The keys are read one after the other from one buffer, as a
// server reads them from its request buffers.
//
//   - hot: the default cache (10 000 entries) and a working set of 1024 keys:
//     the store's size does not matter to a warm verification.
//   - all: the cache sized to hold every key, filled in another (random)
//     order, so that every verification lands at a random place among a
//     million entries: two dependent memory accesses (slot, entry) that miss
//     every CPU cache. Compare with BenchmarkBaselineMap1M, run alongside.
func BenchmarkVerify1M(b *testing.B) {
	const n = 1_000_000
	store := apikey.NewMemoryStore()
	ctx := context.Background()
	var blob strings.Builder
	blob.Grow(n * 46)
	created := time.Now().UTC()
	for i := range n {
		key, err := apikey.Langflow.Generate()
		if err != nil {
			b.Fatal(err)
		}
		blob.WriteString(key)
		rec := apikey.Record{
			ID: fmt.Sprintf("%08d-0000-4000-8000-000000000000", i), UserID: fmt.Sprintf("user-%d", i%1000),
			Name: "bench", Hash: apikey.HashKey(key), Prefix: key[:8], Length: len(key),
			CreatedAt: created, Active: true,
		}
		if err := store.Insert(ctx, rec); err != nil {
			b.Fatal(err)
		}
	}
	keys := blob.String()
	key := func(i int) string { return keys[i*46 : i*46+46] }
	run := func(b *testing.B, m *apikey.Manager, working int) {
		runtime.GC() // finish collecting the setup's garbage before timing
		i := 0
		b.ReportAllocs()
		for b.Loop() {
			if _, err := m.Verify(ctx, key(i)); err != nil {
				b.Fatal(err)
			}
			if i++; i == working {
				i = 0
			}
		}
	}

	b.Run("hot", func(b *testing.B) {
		m := newBenchManager(b, apikey.Config{Store: store})
		for i := range 1024 {
			if _, err := m.Verify(ctx, key(i)); err != nil {
				b.Fatal(err)
			}
		}
		run(b, m, 1024)
	})
	b.Run("all", func(b *testing.B) {
		m := newBenchManager(b, apikey.Config{Store: store, CacheSize: 2 * n, CacheTTL: time.Hour, FlushInterval: -1})
		for _, i := range rand.Perm(n) {
			if _, err := m.Verify(ctx, key(i)); err != nil {
				b.Fatal(err)
			}
		}
		run(b, m, n)
	})
}

// BenchmarkCreate: key generation, hashing and a memory-store insert.
func BenchmarkCreate(b *testing.B) {
	m := newBenchManager(b, apikey.Config{})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := m.Create(ctx, "user", "bench", apikey.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBaselineMap1M is a calibration point for BenchmarkVerify1M: a bare
// Go map of 1 000 000 [32]byte keys to pointers, hit in random order. It
// measures what random memory access costs on the machine at the time (the
// reference measured 140-149 ns/op on an idle 2-core VM).
func BenchmarkBaselineMap1M(b *testing.B) {
	const n = 1_000_000
	type rec struct{ a int64 }
	m := make(map[apikey.Hash]*rec, n)
	keys := make([]apikey.Hash, n)
	for i := range keys {
		keys[i] = apikey.HashKey(fmt.Sprint(i))
	}
	for _, i := range rand.Perm(n) {
		m[keys[i]] = &rec{a: int64(i)}
	}
	runtime.GC()
	var sum int64
	i := 0
	for b.Loop() {
		sum += m[keys[i]].a
		if i++; i == n {
			i = 0
		}
	}
	if sum < 0 {
		b.Fatal(sum)
	}
}

// BenchmarkVerifyVsSHA256 sets a warm Verify beside what it cannot avoid: a
// bare SHA-256 of the same keys (sha256.Sum256 of the 46 bytes). Each
// iteration hashes, then verifies, the 1024 keys in blocks of 64 (in the
// order BenchmarkVerify uses), timing each block, so that both halves of a
// pair run under the same load. It reports the medians over all blocks of
// the ns per key of each (sha256-ns/key, verify-ns/key) and of the ratio of
// the two halves of a pair (verify/sha256): medians, because other work on
// a shared machine lands on a few blocks and would swing the means.
// allocs/op counts both halves: 0.
func BenchmarkVerifyVsSHA256(b *testing.B) {
	m := newBenchManager(b, apikey.Config{})
	keys := benchKeys(b, m, 1024)
	warm(b, m, keys)
	raw := make([][]byte, len(keys))
	for i, k := range keys {
		raw[i] = []byte(k)
	}
	const (
		block = 64
		kept  = 1 << 16 // the last blocks' timings (a ring): nothing allocated while timing
	)
	ctx := context.Background()
	hashing, verifying := make([]float64, kept), make([]float64, kept)
	var (
		blocks int
		sink   byte
	)
	b.ReportAllocs()
	for b.Loop() {
		for lo := 0; lo < len(keys); lo += block {
			t0 := time.Now()
			for _, k := range raw[lo : lo+block] {
				h := sha256.Sum256(k)
				sink ^= h[0]
			}
			t1 := time.Now()
			for _, k := range keys[lo : lo+block] {
				if _, err := m.Verify(ctx, k); err != nil {
					b.Fatal(err)
				}
			}
			t2 := time.Now()
			hashing[blocks%kept] = float64(t1.Sub(t0)) / block
			verifying[blocks%kept] = float64(t2.Sub(t1)) / block
			blocks++
		}
	}
	b.StopTimer()
	n := min(blocks, kept)
	hashing, verifying = hashing[:n], verifying[:n]
	ratios := make([]float64, n)
	for i := range ratios {
		ratios[i] = verifying[i] / hashing[i]
	}
	median := func(v []float64) float64 { slices.Sort(v); return v[len(v)/2] }
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(median(hashing), "sha256-ns/key")
	b.ReportMetric(median(verifying), "verify-ns/key")
	b.ReportMetric(median(ratios), "verify/sha256")
	if sink == 0 && n < 0 {
		b.Fatal(sink)
	}
}

// BenchmarkVerifyLimited: a warm verification of one key on the memory
// store with the in-process limiter: unlimited (the baseline), with a rate
// limit, a quota, or both (limits far above what the benchmark uses).
// p50-ns and p99-ns are each verification's latency (including the ~50 ns
// of reading the clock twice); the added latency of limits is the
// difference with "unlimited".
func BenchmarkVerifyLimited(b *testing.B) {
	for _, tc := range []struct {
		name   string
		limits apikey.Limits
	}{
		{"unlimited", apikey.Limits{}},
		{"rate", apikey.Limits{Rate: []apikey.RateLimit{{Limit: apikey.MaxLimit, Window: time.Hour}}}},
		{"quota", apikey.Limits{Quota: &apikey.Quota{Limit: apikey.MaxLimit}}},
		{"rate+quota", apikey.Limits{Rate: []apikey.RateLimit{{Limit: apikey.MaxLimit, Window: time.Hour}}, Quota: &apikey.Quota{Limit: apikey.MaxLimit}}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			m := newBenchManager(b, apikey.Config{})
			key, _, err := m.Create(context.Background(), "u", "bench", apikey.CreateOptions{Limits: tc.limits})
			if err != nil {
				b.Fatal(err)
			}
			latency.Measure(b, 100, func() error { _, err := m.Verify(context.Background(), key); return err })
		})
	}
}
