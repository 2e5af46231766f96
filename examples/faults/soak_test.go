package faults

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// footprint is what a process holds at one moment.
type footprint struct {
	rssKB      int64
	fds        int
	goroutines int
}

func (f footprint) String() string {
	return fmt.Sprintf("RSS %.1f MiB, %d fds, %d goroutines", float64(f.rssKB)/1024, f.fds, f.goroutines)
}

func measure(t *testing.T, in *instance) footprint {
	t.Helper()
	rss, fds := procStats(t, in.pid())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	g, err := in.goroutines(ctx)
	require.NoError(t, err)
	return footprint{rss, fds, g}
}

// TestSoak: two instances on one PostgreSQL schema under steady load for
// -faults.soak, with keys created on A and revoked on B throughout (four a
// second). No answer but 2xx for valid keys and 403 for revoked or unknown
// ones (a revoked key may pass on A within the bound); resident memory,
// open descriptors and goroutines are flat from the end of the warm-up to
// the end.
func TestSoak(t *testing.T) {
	bin := buildServer(t)
	pg := newPGDatabase(t)
	a := newInstance(t, "a", bin, pg.url(t, "a", nil))
	b := newInstance(t, "b", bin, pg.url(t, "b", nil))
	a.debug, b.debug = true, true
	admin := a.adminKey()
	a.start()
	b.start()
	keys := mustCreateKeys(t, a.URL(), admin, "soak", 10)
	rec := newRecorder(keys)
	stopLoad := startLoad(t, rec, 6, a.URL(), b.URL())

	// Churn: a key created on A every 250 ms; once 15 are live, the oldest
	// revoked on B; revoked keys leave the pool 3 s later.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var created, revoked int
	wg.Go(func() {
		live := append([]createdKey(nil), keys...)
		type gone struct {
			key string
			at  time.Time
		}
		var leaving []gone
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			k, code, err := createKey(a.URL(), admin, fmt.Sprintf("churn-%d", i))
			if !assert.NoError(t, err) || !assert.Equal(t, http.StatusOK, code) {
				return
			}
			rec.add(k.Key)
			live = append(live, k)
			created++
			if len(live) > 15 {
				old := live[0]
				live = live[1:]
				rec.startRevoking(old.Key)
				code, body, err := call(http.MethodDelete, b.URL()+"/api/v1/api_key/"+old.ID, admin, "")
				if !assert.NoError(t, err) || !assert.Equal(t, http.StatusOK, code, "%s", body) {
					return
				}
				rec.revokedAt(old.Key, b.URL(), time.Now())
				leaving = append(leaving, gone{old.Key, time.Now()})
				revoked++
			}
			for len(leaving) > 0 && time.Since(leaving[0].at) > 3*time.Second {
				rec.forget(leaving[0].key)
				leaving = leaving[1:]
			}
		}
	})

	warmUp := min(10*time.Second, *soakFlag/6)
	time.Sleep(warmUp)
	start := []footprint{measure(t, a), measure(t, b)}
	peak := append([]footprint(nil), start...)
	began := time.Now()
	for time.Since(began) < *soakFlag {
		time.Sleep(min(10*time.Second, time.Until(began.Add(*soakFlag))))
		for i, in := range []*instance{a, b} {
			f := measure(t, in)
			peak[i] = footprint{max(peak[i].rssKB, f.rssKB), max(peak[i].fds, f.fds), max(peak[i].goroutines, f.goroutines)}
		}
	}
	end := []footprint{measure(t, a), measure(t, b)}
	for i, e := range end {
		peak[i] = footprint{max(peak[i].rssKB, e.rssKB), max(peak[i].fds, e.fds), max(peak[i].goroutines, e.goroutines)}
	}
	close(stop)
	wg.Wait()
	res := stopLoad()
	a.stop()
	b.stop()
	a.requireNoPanic()
	b.requireNoPanic()
	requireNoViolations(t, rec)
	for i, in := range []*instance{a, b} {
		s, e := start[i], end[i]
		// In-flight requests and pooled connections come and go: a
		// margin for them, none for growth with time.
		assert.LessOrEqual(t, e.goroutines, s.goroutines+30, "%s: goroutines", in.name)
		assert.LessOrEqual(t, e.fds, s.fds+20, "%s: open descriptors", in.name)
		assert.LessOrEqual(t, e.rssKB, max(s.rssKB*3/2, s.rssKB+32*1024), "%s: resident memory", in.name)
		assert.Empty(t, in.errorLines(), "%s logs no error", in.name)
		result(t, "%s: start %v; end %v; peak %v", in.name, s, e, peak[i])
	}
	_, _, status, total := rec.snapshot()
	result(t, "%v of load after %v of warm-up: %d requests (%.0f/s; status %v), %d keys created on A and %d revoked on B meanwhile; no error",
		*soakFlag, warmUp.Round(time.Millisecond), total, float64(len(res.Latencies))/res.Elapsed.Seconds(), status, created, revoked)
}
