package keyflowtest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/keyflow-dev/keyflow/apikey"
)

// Clock is a clock a test moves by hand, for apikey.Config.Now: rate-limit
// windows end and quotas refill when the test says so, so tests of 429s
// never sleep. It is safe for concurrent use.
//
//	clock := keyflowtest.NewClock(time.Time{})
//	keys := keyflowtest.NewManagerConfig(t, apikey.Config{Now: clock.Now})
//	key := keyflowtest.NewLimitedKey(t, keys, "user-1", keyflowtest.RateLimits(t, "2/1m"))
//	... two requests pass, the third gets 429 ...
//	clock.Advance(time.Minute) // the next window
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// ClockStart is where a NewClock(time.Time{}) starts: a Monday, the 1st of
// a month, at midnight UTC, so that every window and refill period starts
// there.
var ClockStart = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// NewClock returns a Clock at start (the zero time: ClockStart).
func NewClock(start time.Time) *Clock {
	if start.IsZero() {
		start = ClockStart
	}
	return &Clock{t: start}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// RateLimits returns limits made of rate limits written as
// apikey.ParseRateLimit reads them ("100/1m", "10000/24h"), ending the test
// on a malformed one.
func RateLimits(t testing.TB, specs ...string) apikey.Limits {
	t.Helper()
	var l apikey.Limits
	for _, s := range specs {
		r, err := apikey.ParseRateLimit(s)
		if err != nil {
			t.Fatalf("keyflowtest: rate limit %q: %v", s, err)
		}
		l.Rate = append(l.Rate, r)
	}
	return l
}

// NewLimitedKey creates a key named "test" for userID on m with limits, and
// returns it. Give m a Clock (apikey.Config.Now) to move through windows
// and refills without sleeping.
func NewLimitedKey(t testing.TB, m *apikey.Manager, userID string, limits apikey.Limits) string {
	t.Helper()
	key, _, err := m.Create(context.Background(), userID, "test", apikey.CreateOptions{Limits: limits})
	if err != nil {
		t.Fatalf("keyflowtest: create limited key for %q: %v", userID, err)
	}
	return key
}
