// Command timingcheck looks for timing leaks on keyflow's API-key
// verification path, in the style of dudect (Reparaz, Balasch and
// Verbauwhede, "Dude, is my code constant time?", DATE 2017): two classes of
// input are interleaved at random, copied into the same buffer, timed over
// many samples, and compared with Welch's t-test; |t| above the threshold
// (4.5 by default) means the time depends on the class.
//
// It compares, through apikey.Manager.Verify (with and without its cache):
//
//   - an unknown key vs. a real key with its last character changed,
//   - an unknown key vs. a revoked (deleted) key,
//   - unknown vs. unknown (an A/A control, which must pass),
//
// and, as a positive control showing the method sees a 2-ns effect, a naive
// string comparison of a 200-byte secret (wrong last byte vs. wrong first
// byte), which must leak. A low |t| is evidence, not proof, of constant time.
//
//	go run ./examples/timingcheck -n 200000
//
// It exits 1 when a verification comparison exceeds the threshold (or the
// positive control fails to), 2 on a usage error. Run it on an otherwise idle
// machine; it is not part of the default test run.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"time"
	"unsafe"

	"github.com/keyflow-dev/keyflow/apikey"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type options struct {
	n, inner, keys int
	threshold      float64
	seed           uint64
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("timingcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.IntVar(&o.n, "n", 200000, "samples per comparison")
	fs.IntVar(&o.inner, "inner", 4, "calls timed together per sample")
	fs.IntVar(&o.keys, "keys", 20000, "live keys in the store (and inputs per class)")
	fs.Float64Var(&o.threshold, "threshold", 4.5, "|t| above which a comparison counts as a leak")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the class interleaving")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.n < 1000 || o.inner < 1 || o.keys < 1 {
		fmt.Fprintln(stderr, "timingcheck: need -n ≥ 1000, -inner ≥ 1, -keys ≥ 1")
		return 2
	}
	results, err := check(o)
	if err != nil {
		fmt.Fprintln(stderr, "timingcheck:", err)
		return 1
	}
	fmt.Fprintf(stdout, "timingcheck: %s %s/%s, %d CPUs, n=%d samples × %d calls, %d keys, threshold |t| %.1f\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), o.n, o.inner, o.keys, o.threshold)
	fmt.Fprintf(stdout, "%-44s %-6s %10s %10s %8s  %s\n", "comparison", "cache", "mean0 ns", "mean1 ns", "max |t|", "verdict")
	code := 0
	for _, r := range results {
		leak := r.maxT > o.threshold
		verdict := "ok"
		switch {
		case r.control && leak:
			verdict = "leak (expected: the method works)"
		case r.control:
			verdict = "NO LEAK SEEN (the positive control failed: results not meaningful)"
			code = 1
		case leak:
			verdict = "LEAK"
			code = 1
		}
		fmt.Fprintf(stdout, "%-44s %-6s %10.1f %10.1f %8.2f  %s\n", r.name, r.cache, r.mean0, r.mean1, r.maxT, verdict)
	}
	return code
}

type result struct {
	name, cache  string
	mean0, mean1 float64 // per call, over the cropped samples
	maxT         float64 // the largest |t| over the crops
	control      bool
}

// sink keeps the compiler from removing the naive comparison.
var sink bool

func check(o options) ([]result, error) {
	ctx := context.Background()
	var results []result
	for _, cached := range []bool{true, false} {
		// Long TTLs: the cached mode measures cache hits only, the uncached
		// one store lookups only, not a mix that depends on expiry times.
		cfg := apikey.Config{
			FlushInterval: -1, DisableUsageTracking: true,
			CacheSize: 8 * o.keys, CacheTTL: time.Hour, NegativeCacheTTL: time.Hour,
		}
		label := "on"
		if !cached {
			cfg.CacheSize, label = -1, "off"
		}
		m, err := apikey.NewManager(cfg)
		if err != nil {
			return nil, err
		}
		var live, revoked, wrongLast []string
		for i := range o.keys {
			k, _, err := m.Create(ctx, "user", fmt.Sprint("k", i), apikey.CreateOptions{})
			if err != nil {
				return nil, err
			}
			live = append(live, k)
			k2, rec, err := m.Create(ctx, "user", fmt.Sprint("r", i), apikey.CreateOptions{})
			if err != nil {
				return nil, err
			}
			if err := m.Delete(ctx, "user", rec.ID); err != nil {
				return nil, err
			}
			revoked = append(revoked, k2)
		}
		for _, k := range live {
			wrongLast = append(wrongLast, changeLast(k))
		}
		unknown := genKeys(o.keys)
		unknown2 := genKeys(o.keys)
		verify := func(key string) { _, _ = m.Verify(ctx, key) }
		// Fill the cache in one shuffled pass over every class, so that
		// where an entry sits (its probe length, its memory) does not depend
		// on its class: that order is not a property of the key.
		all := slices.Concat(unknown, unknown2, wrongLast, revoked)
		rand.New(rand.NewPCG(o.seed, 7)).Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
		for _, k := range all {
			verify(k)
		}
		for _, c := range []struct {
			name string
			a, b []string
		}{
			{"unknown vs wrong last character of a real key", unknown, wrongLast},
			{"unknown vs revoked (deleted) key", unknown, revoked},
			{"unknown vs unknown (A/A control)", unknown, unknown2},
		} {
			r := measure(o, c.a, c.b, verify)
			r.name, r.cache = c.name, label
			results = append(results, r)
		}
		_ = m.Close()
	}
	// Positive control: a naive == leaks where the first byte differs.
	secret := string(make([]byte, 200))
	lastWrong, firstWrong := []byte(secret), []byte(secret)
	lastWrong[199], firstWrong[0] = 1, 1
	r := measure(o, []string{string(lastWrong)}, []string{string(firstWrong)}, func(s string) { sink = s == secret })
	r.name, r.cache, r.control = "control: naive == (last vs first byte wrong)", "-", true
	runtime.KeepAlive(sink)
	return append(results, r), nil
}

// measure times fn on inputs of class a and class b, randomly interleaved,
// each copied into one shared buffer first (so memory layout is identical),
// and returns Welch's t over several crops.
func measure(o options, a, b []string, fn func(string)) result {
	rng := rand.New(rand.NewPCG(o.seed, 0x5eed))
	width := 0
	for _, s := range slices.Concat(a, b) {
		width = max(width, len(s))
	}
	buf := make([]byte, width)
	samples := make([]float64, o.n)
	class := make([]uint8, o.n)
	// Warm up both classes (caches, branch predictors, negative entries).
	for i := range max(len(a), len(b)) {
		fn(a[i%len(a)])
		fn(b[i%len(b)])
	}
	runtime.GC()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for i := range samples {
		c := uint8(rng.IntN(2))
		src := a
		if c == 1 {
			src = b
		}
		in := src[rng.IntN(len(src))]
		n := copy(buf, in)
		// The key is only read during the calls, never kept, so a string
		// over the reused buffer is safe.
		s := unsafe.String(&buf[0], n)
		start := time.Now()
		for range o.inner {
			fn(s)
		}
		samples[i] = float64(time.Since(start).Nanoseconds()) / float64(o.inner)
		class[i] = c
	}
	r := result{}
	sorted := slices.Clone(samples)
	slices.Sort(sorted)
	for _, p := range []float64{0.5, 0.75, 0.9, 0.99, 1} {
		limit := sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
		var w [2]welford
		for i, x := range samples {
			if x <= limit {
				w[class[i]].add(x)
			}
		}
		t := welchT(w[0], w[1])
		if math.IsNaN(t) {
			continue
		}
		if math.Abs(t) > r.maxT {
			r.maxT = math.Abs(t)
		}
		if p == 0.9 {
			r.mean0, r.mean1 = w[0].mean, w[1].mean
		}
	}
	return r
}

// welford accumulates a mean and variance in one pass.
type welford struct {
	n       float64
	mean, m float64
}

func (w *welford) add(x float64) {
	w.n++
	d := x - w.mean
	w.mean += d / w.n
	w.m += d * (x - w.mean)
}

func (w welford) variance() float64 { return w.m / (w.n - 1) }

// welchT is Welch's t statistic of two samples.
func welchT(a, b welford) float64 {
	if a.n < 2 || b.n < 2 {
		return math.NaN()
	}
	se := math.Sqrt(a.variance()/a.n + b.variance()/b.n)
	if se == 0 {
		return 0
	}
	return (a.mean - b.mean) / se
}

// changeLast returns key with its last character replaced by another one
// that keeps it well-formed (a canonical base64url last character).
func changeLast(key string) string {
	last := key[len(key)-1]
	for _, c := range []byte("AEIMQUYcgkosw048") { // low two bits zero
		if c != last {
			return key[:len(key)-1] + string(c)
		}
	}
	panic("unreachable")
}

func genKeys(n int) []string {
	out := make([]string, n)
	for i := range out {
		k, err := apikey.Langflow.Generate()
		if err != nil {
			panic(err)
		}
		out[i] = k
	}
	return out
}
