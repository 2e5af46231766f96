package faults

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/keyflow-dev/keyflow/examples/loadtest/loadgen"
)

// keyCounts is what the clients saw for one key.
type keyCounts struct {
	ok          int64 // 2xx: acknowledged uses
	unavailable int64 // documented 503s (some counted as uses: see docs/faults.md)
	failed      int64 // no answer (transport error)
}

// window is a fault's time span; 503s are expected in it and until
// recoveryBound after it.
type window struct {
	from, to time.Time // to is zero while the fault lasts
	// down: the database is unreachable from downAt to the end of the
	// window, so a 2xx begun more than trustBound after downAt and
	// answered before the end was served from cache beyond the bound.
	down   bool
	downAt time.Time
}

// revocation is a key revoked through one instance.
type revocation struct {
	at time.Time // when the DELETE returned
	on string    // the base URL it went to
}

// recorder is the clients' own record: every load request's answer, and
// what it promised. It checks each answer as it comes and keeps the
// violations. It is safe for concurrent use.
type recorder struct {
	mu         sync.Mutex
	pool       []string // keys the load picks from
	known      map[string]bool
	counts     map[string]*keyCounts
	revoking   map[string]bool // DELETE sent, not yet returned: 403 allowed
	revoked    map[string]revocation
	windows    []*window
	transport  func(s loadgen.Sample) bool // whether a transport error is expected
	status     map[int]int64
	firstOK    map[string]time.Time // by URL: the first 2xx begun after mark
	mark       time.Time
	violations []string
	total      int64
	okStarts   []time.Time // when each 2xx began
}

func newRecorder(keys []createdKey) *recorder {
	r := &recorder{known: map[string]bool{}, counts: map[string]*keyCounts{}, revoking: map[string]bool{},
		revoked: map[string]revocation{}, status: map[int]int64{}, firstOK: map[string]time.Time{}}
	for _, k := range keys {
		r.add(k.Key)
	}
	return r
}

// add puts a key in the load's pool.
func (r *recorder) add(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pool = append(r.pool, key)
	r.known[key] = true
	r.counts[key] = &keyCounts{}
}

// pick is loadgen.Config.Pick: a key of the pool, or (1 in 20) a key no
// server knows.
func (r *recorder) pick(rng *rand.Rand) (string, bool) {
	if rng.IntN(20) == 0 {
		return fmt.Sprintf("sk-%043d", rng.Int64()), false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	k := r.pool[rng.IntN(len(r.pool))]
	_, revoked := r.revoked[k]
	return k, !revoked
}

// startRevoking says a DELETE of key is about to be sent.
func (r *recorder) startRevoking(key string) {
	r.mu.Lock()
	r.revoking[key] = true
	r.mu.Unlock()
}

// revokedAt records that key's DELETE through base returned at at.
func (r *recorder) revokedAt(key, base string, at time.Time) {
	r.mu.Lock()
	r.revoked[key] = revocation{at: at, on: base}
	r.mu.Unlock()
}

// forget takes key out of the pool (a soak keeps its pool small).
func (r *recorder) forget(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, k := range r.pool {
		if k == key {
			r.pool = append(r.pool[:i], r.pool[i+1:]...)
			return
		}
	}
}

// fault opens a fault window; end closes it.
func (r *recorder) fault(down bool) *window {
	w := &window{from: time.Now(), down: down}
	r.mu.Lock()
	r.windows = append(r.windows, w)
	r.mu.Unlock()
	return w
}

// unreachable records that the database became unreachable in w now (every
// session ended, new ones refused).
func (r *recorder) unreachable(w *window) {
	r.mu.Lock()
	w.downAt = time.Now()
	r.mu.Unlock()
}

func (r *recorder) end(w *window) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	w.to = time.Now()
	return w.to
}

// markRecovery starts looking for each URL's first 2xx begun from now.
func (r *recorder) markRecovery() {
	r.mu.Lock()
	r.mark, r.firstOK = time.Now(), map[string]time.Time{}
	r.mu.Unlock()
}

// recovered returns when base's first 2xx begun after the mark ended.
func (r *recorder) recovered(base string) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.firstOK[base]
	return t, ok
}

func (r *recorder) violate(format string, args ...any) {
	if len(r.violations) < 50 {
		r.violations = append(r.violations, fmt.Sprintf(format, args...))
	} else if len(r.violations) == 50 {
		r.violations = append(r.violations, "… (more left out)")
	}
}

// inFault reports whether a request spanning [start, end] overlaps a fault
// window or the recovery time after it.
func (r *recorder) inFault(start, end time.Time) bool {
	for _, w := range r.windows {
		to := w.to
		if to.IsZero() {
			to = end
		}
		if !end.Before(w.from) && !start.After(to.Add(recoveryBound)) {
			return true
		}
	}
	return false
}

// observe is loadgen.Config.Observe: it records and checks one answer.
func (r *recorder) observe(s loadgen.Sample) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.counts[s.Key] // nil for unknown keys
	if s.CutOff {        // abandoned when the load stopped: maybe counted by the server
		if c != nil {
			c.failed++
		}
		return
	}
	r.total++
	r.status[s.Code]++
	end := s.Start.Add(s.Latency)
	rev, revoked := r.revoked[s.Key]
	switch {
	case s.Code == 0:
		if c != nil {
			c.failed++
		}
		if r.transport == nil || !r.transport(s) {
			r.violate("%s: no answer: %v", s.URL, s.Err)
		}
	case s.Code >= 200 && s.Code < 300:
		if c != nil {
			c.ok++
		}
		r.okStarts = append(r.okStarts, s.Start)
		if !r.mark.IsZero() && !s.Start.Before(r.mark) {
			if _, seen := r.firstOK[s.URL]; !seen {
				r.firstOK[s.URL] = end
			}
		}
		switch {
		case !r.known[s.Key]:
			r.violate("%s: 2xx for a key no server knows", s.URL)
		case revoked:
			bound := revocationBound
			if s.URL == rev.on {
				bound = 0
			}
			if s.Start.After(rev.at.Add(bound)) {
				r.violate("%s: 2xx for a key revoked %v before the request began (bound %v)", s.URL, s.Start.Sub(rev.at).Round(time.Millisecond), bound)
			}
		}
		for _, w := range r.windows {
			// Begun past the trust bound and answered before the
			// database was back: served from cache beyond the bound.
			if w.down && !w.downAt.IsZero() && (w.to.IsZero() || end.Before(w.to)) && s.Start.After(w.downAt.Add(trustBound)) {
				r.violate("%s: 2xx begun %v into the outage (cache trusted for %v at most)", s.URL, s.Start.Sub(w.downAt).Round(time.Millisecond), trustBound)
			}
		}
	case s.Code == http.StatusServiceUnavailable:
		if c != nil {
			c.unavailable++
		}
		if !documented503[strings.TrimSpace(string(s.Body))] {
			r.violate("%s: 503 with an undocumented body %q", s.URL, s.Body)
		}
		if !r.inFault(s.Start, end) {
			r.violate("%s: 503 outside a fault (begun %s)", s.URL, s.Start.Format(time.RFC3339Nano))
		}
	case s.Code == http.StatusForbidden:
		if r.known[s.Key] && !revoked && !r.revoking[s.Key] {
			r.violate("%s: 403 for a valid key: %s", s.URL, s.Body)
		}
	default:
		r.violate("%s: unexpected %d: %s", s.URL, s.Code, s.Body)
	}
}

// okAfter counts the 2xx begun at or after since; r.mu is held.
func (r *recorder) okAfter(since time.Time) int64 {
	var n int64
	for _, at := range r.okStarts {
		if !at.Before(since) {
			n++
		}
	}
	return n
}

// snapshot returns copies of the counts and violations.
func (r *recorder) snapshot() (map[string]keyCounts, []string, map[int]int64, int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	counts := make(map[string]keyCounts, len(r.counts))
	for k, c := range r.counts {
		counts[k] = *c
	}
	status := make(map[int]int64, len(r.status))
	for c, n := range r.status {
		status[c] = n
	}
	return counts, append([]string(nil), r.violations...), status, r.total
}
