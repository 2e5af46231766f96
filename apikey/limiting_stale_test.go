package apikey_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey"
)

// forwardLimiter counts like the SQL store's Limiter: one row per key and
// rate limit, which only moves forward; a take for a window the row has
// left gets nothing.
type forwardLimiter struct {
	mu      sync.Mutex
	index   int64
	used    int64
	windows []int64 // the windows asked for
	onStale func()  // called when a take comes for a window the row has left
}

func (l *forwardLimiter) Take(_ context.Context, w apikey.Window, n int64) (taken, left int64, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.windows = append(l.windows, w.Index)
	switch {
	case w.Index < l.index:
		if l.onStale != nil {
			l.onStale()
		}
		return 0, 0, nil // the row is in a later window
	case w.Index > l.index:
		l.index, l.used = w.Index, 0
	}
	taken = min(n, w.Limit-l.used)
	l.used += taken
	return taken, w.Limit - l.used, nil
}

// A request whose time was read before another's (it waited for the key's
// lock behind it) and falls in the window before is charged in the current
// window: it is neither refused by a shared Limiter that has moved on nor
// makes the Manager drop its lease of the current window.
func TestRateLimitStaleRequestTime(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	lim := &forwardLimiter{}
	m := newManager(t, apikey.Config{Now: clock.Now, Limiter: lim})
	ctx := context.Background()
	key, _ := create(t, m, "u", "k", apikey.CreateOptions{Limits: apikey.Limits{Rate: []apikey.RateLimit{mustRate(t, "1000/1s")}}})
	clock.Advance(time.Second - time.Millisecond) // the last millisecond of a window
	stale := clock.Now()
	clock.Advance(2 * time.Millisecond) // the next window
	_, err := m.Verify(ctx, key)
	require.NoError(t, err)
	clock.Advance(stale.Sub(clock.Now())) // a request whose time was read first
	_, err = m.Verify(ctx, key)
	require.NoError(t, err, "the current window has units left")
	lim.mu.Lock()
	defer lim.mu.Unlock()
	assert.Len(t, lim.windows, 1, "the second request is charged to the lease of the current window: %v", lim.windows)
}

// A request whose time falls in a window that another instance has already
// closed on the shared Limiter gets nothing there; once the clock has moved
// into the next window it is charged there, not refused.
func TestRateLimitWindowClosedElsewhere(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	lim := &forwardLimiter{}
	lim.onStale = func() { clock.Advance(2 * time.Millisecond) } // the round trip took that long
	m := newManager(t, apikey.Config{Now: clock.Now, Limiter: lim})
	ctx := context.Background()
	key, _ := create(t, m, "u", "k", apikey.CreateOptions{Limits: apikey.Limits{Rate: []apikey.RateLimit{mustRate(t, "1000/1s")}}})
	clock.Advance(time.Second - time.Millisecond) // the last millisecond of window k
	k := clock.Now().UnixNano() / int64(time.Second)
	lim.mu.Lock()
	lim.index = k + 1 // another instance has moved the row to window k+1
	lim.mu.Unlock()
	_, err := m.Verify(ctx, key)
	require.NoError(t, err, "window k+1 has units left")
	lim.mu.Lock()
	defer lim.mu.Unlock()
	assert.Equal(t, []int64{k, k + 1}, lim.windows, "refused in window k, charged again in window k+1")
}
