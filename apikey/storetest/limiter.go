package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/keyflow-dev/keyflow/apikey"
)

// RunLimiter is the conformance suite of an apikey.Limiter: windows count
// exactly, never beyond their limit, also under concurrent takes; windows of
// other keys, names and lengths are apart; a later window starts from zero,
// and a take for an earlier window (a clock that lags) takes nothing from
// the later one. newLimiter must return a Limiter with no counts; the
// suite never closes it.
func RunLimiter(t *testing.T, newLimiter func(t *testing.T) apikey.Limiter) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, apikey.Limiter)
	}{
		{"Take", testTake},
		{"TakeConcurrent", testTakeConcurrent},
		{"Windows", testWindows},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newLimiter(t)) })
	}
}

func take(t *testing.T, l apikey.Limiter, w apikey.Window, n, wantTaken, wantLeft int64) {
	t.Helper()
	taken, left, err := l.Take(context.Background(), w, n)
	if err != nil {
		t.Fatalf("Take(%s window %d, %d): %v", w.Name, w.Index, n, err)
	}
	if taken != wantTaken || left != wantLeft {
		t.Fatalf("Take(%s window %d, %d) = %d taken, %d left; want %d, %d", w.Name, w.Index, n, taken, left, wantTaken, wantLeft)
	}
}

func nowWindow(key, name string, limit int64, length time.Duration) apikey.Window {
	return apikey.Window{KeyID: key, Name: name, Limit: limit, Length: length, Index: time.Now().UnixNano() / int64(length)}
}

func testTake(t *testing.T, l apikey.Limiter) {
	w := nowWindow("00000000-0000-4000-8000-00000000000a", "minute", 10, time.Minute)
	take(t, l, w, 4, 4, 6)
	take(t, l, w, 4, 4, 2)
	take(t, l, w, 4, 2, 0)
	take(t, l, w, 1, 0, 0)
	take(t, l, w, 0, 0, 0)
}

func testTakeConcurrent(t *testing.T, l apikey.Limiter) {
	w := nowWindow("00000000-0000-4000-8000-00000000000b", "hour", 300, time.Hour)
	var mu sync.Mutex
	var total int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				taken, _, err := l.Take(context.Background(), w, 7)
				if err != nil {
					t.Errorf("Take: %v", err)
					return
				}
				mu.Lock()
				total += taken
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if total != 300 {
		t.Fatalf("concurrent takes took %d in all, want exactly the limit, 300", total)
	}
}

func testWindows(t *testing.T, l apikey.Limiter) {
	const k1, k2 = "00000000-0000-4000-8000-00000000000c", "00000000-0000-4000-8000-00000000000d"
	w := nowWindow(k1, "minute", 5, time.Minute)
	take(t, l, w, 5, 5, 0)
	other := w
	other.KeyID = k2
	take(t, l, other, 2, 2, 3) // another key
	named := w
	named.Name = "burst"
	take(t, l, named, 1, 1, 4) // another limit of the key
	long := nowWindow(k1, "minute", 5, 2*time.Minute)
	take(t, l, long, 1, 1, 4) // same name, another length
	next := w
	next.Index++
	take(t, l, next, 3, 3, 2) // the next window starts from zero
	take(t, l, w, 1, 0, 0)    // the earlier window is spent, or over
}
