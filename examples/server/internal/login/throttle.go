package login

import (
	"crypto/sha256"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Throttle slows password guessing: after FreeFailures failed
// logins for one username, or from one client address (an IPv6 client's
// /64, which one host can hold whole), each further attempt must wait (1 s,
// then doubling up to loginMaxDelay) after the last failure, or get 429 with
// Retry-After. An attempt counts as a failure from the moment it is let
// through (attempt), so that many guesses sent at once cannot all pass
// before the first is judged; a success (succeed) takes it back and clears
// the username's count, an attempt the database could not decide
// (abandoned) is taken back. Unknown and known usernames are counted alike.
// Usernames are kept as SHA-256 hashes, so a long username costs no memory.
// Entries are forgotten loginForgetAfter after their last failure; at most
// loginMaxEntries are kept: when full, the entries with the fewest failures
// make room, so that a flood of new usernames or addresses cannot push out
// the count of the one being guessed. It is safe for concurrent use.
type Throttle struct {
	mu  sync.Mutex
	m   map[string]*loginFailures
	now func() time.Time
}

type loginFailures struct {
	n    int
	last time.Time
}

// FreeFailures is the number of failed logins (per username, per client
// address) that are not slowed.
const FreeFailures = 5

const (
	loginMaxDelay    = time.Minute
	loginForgetAfter = 15 * time.Minute
	loginMaxEntries  = 10000
)

// NewThrottle returns an empty throttle on the clock now (nil: time.Now).
func NewThrottle(now func() time.Time) *Throttle {
	if now == nil {
		now = time.Now
	}
	return &Throttle{m: map[string]*loginFailures{}, now: now}
}

// throttleKeys are the counters of a login attempt: the username (hashed,
// without case) and the client's address, an IPv6 address as its /64.
func throttleKeys(username, client string) [2]string {
	if a, err := netip.ParseAddr(client); err == nil && a.Is6() && !a.Is4In6() {
		if p, err := a.WithZone("").Prefix(64); err == nil {
			client = p.String()
		}
	}
	sum := sha256.Sum256([]byte(strings.ToLower(username)))
	return [2]string{"u:" + string(sum[:]), "a:" + client}
}

// delay is how long after the last of n failures the next attempt waits.
func loginDelay(n int) time.Duration {
	if n < FreeFailures {
		return 0
	}
	d := time.Second << min(n-FreeFailures, 10)
	return min(d, loginMaxDelay)
}

// attempt reports how long the caller must still wait; when that is 0 the
// attempt is let through and counted as a failure until succeed or
// abandoned says otherwise.
func (t *Throttle) attempt(username, client string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	keys := throttleKeys(username, client)
	var longest time.Duration
	for _, k := range keys {
		f := t.m[k]
		if f == nil || now.Sub(f.last) > loginForgetAfter {
			continue
		}
		if w := f.last.Add(loginDelay(f.n)).Sub(now); w > longest {
			longest = w
		}
	}
	if longest > 0 {
		return longest
	}
	for _, k := range keys {
		f := t.m[k]
		if f == nil {
			t.makeRoom(now)
			f = &loginFailures{}
			t.m[k] = f
		} else if now.Sub(f.last) > loginForgetAfter {
			f.n = 0
		}
		f.n++
		f.last = now
	}
	return 0
}

// makeRoom keeps the map under loginMaxEntries: it drops forgotten entries,
// then, if still full, every entry with the fewest failures (a flood of
// one-off attempts goes in one pass; a counter close to or past
// FreeFailures outlives them).
func (t *Throttle) makeRoom(now time.Time) {
	if len(t.m) < loginMaxEntries {
		return
	}
	fewest := -1
	for k, f := range t.m {
		switch {
		case now.Sub(f.last) > loginForgetAfter:
			delete(t.m, k)
		case fewest < 0 || f.n < fewest:
			fewest = f.n
		}
	}
	if len(t.m) < loginMaxEntries {
		return
	}
	for k, f := range t.m {
		if f.n == fewest {
			delete(t.m, k)
		}
	}
}

// uncount takes one attempt back from a counter; an empty counter goes.
func (t *Throttle) uncount(k string) {
	if f := t.m[k]; f != nil {
		if f.n--; f.n <= 0 {
			delete(t.m, k)
		}
	}
}

// succeed takes back the attempt's failure after a successful login and
// clears the username's count. The address keeps its earlier failures: one
// valid account must not reset the count of an address that guesses other
// users' passwords.
func (t *Throttle) succeed(username, client string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	keys := throttleKeys(username, client)
	delete(t.m, keys[0])
	t.uncount(keys[1])
}

// abandoned takes back an attempt that could not be decided (the database
// did not answer).
func (t *Throttle) abandoned(username, client string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range throttleKeys(username, client) {
		t.uncount(k)
	}
}
