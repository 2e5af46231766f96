// Package latency records the latency of each iteration of a benchmark and
// reports its percentiles as benchmark metrics (p50-ns, p99-ns, p99.99-ns), for
// benchmarks whose tail matters as much as their mean.
package latency

import (
	"slices"
	"testing"
	"time"
)

// Recorder keeps up to a million samples, allocated up front so that
// recording allocates nothing.
type Recorder struct{ samples []time.Duration }

// New returns an empty Recorder.
func New() *Recorder { return &Recorder{samples: make([]time.Duration, 0, 1<<20)} }

// Add records one sample (beyond the capacity, samples are dropped).
func (r *Recorder) Add(d time.Duration) {
	if len(r.samples) < cap(r.samples) {
		r.samples = append(r.samples, d)
	}
}

// Report sets b's p50-ns, p99-ns and p99.99-ns metrics from the samples.
func (r *Recorder) Report(b *testing.B) {
	if len(r.samples) == 0 {
		return
	}
	s := slices.Clone(r.samples)
	slices.Sort(s)
	at := func(p float64) float64 { return float64(s[min(int(p*float64(len(s))), len(s)-1)]) }
	b.ReportMetric(at(0.50), "p50-ns")
	b.ReportMetric(at(0.99), "p99-ns")
	b.ReportMetric(at(0.9999), "p99.99-ns")
}

// Measure calls op warmup times (filling caches and leases), then once per
// iteration of b, recording each call's latency; it reports allocations and
// the percentiles. An error from op fails b.
func Measure(b *testing.B, warmup int, op func() error) {
	for range warmup {
		if err := op(); err != nil {
			b.Fatal(err)
		}
	}
	rec := New()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		t := time.Now()
		if err := op(); err != nil {
			b.Fatal(err)
		}
		rec.Add(time.Since(t))
	}
	rec.Report(b)
}
