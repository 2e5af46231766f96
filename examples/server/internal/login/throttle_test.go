package login

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLoginThrottle: after FreeFailures failures, attempts wait,
// whoever the user is, and a success clears the user's count.
func TestLoginThrottle(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_000_000, 0)
	th := NewThrottle(nil)
	th.now = func() time.Time { return now }
	for i := range FreeFailures {
		assert.Zero(t, th.attempt("ghost", "10.0.0.1"), "attempt %d", i)
	}
	assert.Equal(t, time.Second, th.attempt("ghost", "10.0.0.2"), "by username")
	assert.Equal(t, time.Second, th.attempt("other", "10.0.0.1"), "by address")
	assert.Zero(t, th.attempt("other2", "10.0.0.2"))
	now = now.Add(time.Second)
	assert.Zero(t, th.attempt("ghost", "10.0.0.1"))
	assert.Equal(t, 2*time.Second, th.attempt("GHOST", "10.0.0.3"), "doubles; usernames compared without case")
	th.succeed("ghost", "10.0.0.1")
	assert.Zero(t, th.attempt("ghost", "10.0.0.3"))
	th.succeed("ghost", "10.0.0.3")
	assert.Equal(t, time.Second, th.attempt("ghost", "10.0.0.1"), "the address keeps its earlier failures")
	now = now.Add(loginForgetAfter + time.Hour)
	assert.Zero(t, th.attempt("x", "10.0.0.1"))
	assert.Equal(t, loginMaxDelay, loginDelay(100))

	// An attempt the database could not decide is not counted.
	for range 2 * FreeFailures {
		require.Zero(t, th.attempt("db-down", "10.0.0.9"))
		th.abandoned("db-down", "10.0.0.9")
	}
}

// TestLoginThrottleKeys: an IPv6 client counts as its /64 (one host can
// hold the whole prefix); a flood of new usernames and addresses cannot push
// out the count of the username being guessed.
func TestLoginThrottleKeys(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_000_000, 0)
	th := NewThrottle(nil)
	th.now = func() time.Time { return now }
	for i := range FreeFailures {
		require.Zero(t, th.attempt(fmt.Sprintf("user%d", i), fmt.Sprintf("2001:db8:1:2::%x", i+1)))
	}
	assert.Equal(t, time.Second, th.attempt("another", "2001:db8:1:2:ffff::1"), "same /64")
	assert.Zero(t, th.attempt("another", "2001:db8:1:3::1"), "another /64")
	assert.Equal(t, "a:192.0.2.1", throttleKeys("X", "192.0.2.1")[1])
	assert.Equal(t, throttleKeys("x", "")[0], throttleKeys("X", "")[0], "usernames without case")

	// The victim's count survives a flood that fills the table.
	for i := range FreeFailures + 2 {
		now = now.Add(loginMaxDelay)
		require.Zero(t, th.attempt("victim", fmt.Sprintf("198.51.100.%d", i)))
	}
	for i := range loginMaxEntries + 10 {
		th.attempt(fmt.Sprintf("spray%d", i), fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255))
	}
	assert.LessOrEqual(t, len(th.m), loginMaxEntries)
	assert.NotZero(t, th.attempt("victim", "203.0.113.1"), "still throttled")
}

// TestLoginThrottleCountsAttemptsInFlight: an attempt counts from the
// moment it is let through, so guesses sent at once (none of them judged
// yet) cannot all pass; a success takes its attempt back.
func TestLoginThrottleCountsAttemptsInFlight(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_000_000, 0)
	th := NewThrottle(nil)
	th.now = func() time.Time { return now }
	passed := 0
	for range 3 * FreeFailures {
		if th.attempt("admin", "10.0.0.9") == 0 {
			passed++
		}
	}
	assert.Equal(t, FreeFailures, passed, "only the free attempts pass while none has been judged")

	th = NewThrottle(nil)
	th.now = func() time.Time { return now }
	for range 3 * FreeFailures {
		require.Zero(t, th.attempt("admin", "10.0.0.9"))
		th.succeed("admin", "10.0.0.9")
	}
	assert.Empty(t, th.m, "successes leave nothing behind")
}

// TestLoginThrottleLongUsernames: what the throttle keeps for a username
// does not grow with its length.
func TestLoginThrottleLongUsernames(t *testing.T) {
	t.Parallel()
	th := NewThrottle(nil)
	long := strings.Repeat("u", maxLoginForm)
	th.attempt(long, "10.0.0.1")
	for k := range th.m {
		assert.Less(t, len(k), 64, "key kept for a %d-byte username", len(long))
	}
}
