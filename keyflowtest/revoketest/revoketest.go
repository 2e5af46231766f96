// Package revoketest watches another instance refuse a key revoked
// elsewhere, for multi-instance tests of keyflow's revocation bound (of
// keyflow's SQL stores, or a third-party store with a change feed), in a way
// that holds on a loaded machine. It imports only the standard library.
//
// The revocation bound says: once a revocation has returned, a
// verification that begins more than the bound later refuses the key. A test
// that asserts "refused within 1 s of the revocation" by the wall clock also
// counts the time its own goroutines waited for a CPU, and fails on a busy
// machine although the bound held. Watch therefore reports, besides when the
// refusal was seen (the latency figure to log), when the last verification
// that still accepted the key began: that is what the bound limits.
package revoketest

import "time"

// Watch is how one instance came to refuse one revoked key.
type Watch struct {
	// Refused reports whether the key was refused before the limit.
	Refused bool
	// SeenAt is when the first refusal returned.
	SeenAt time.Time
	// LastAcceptBegan is when the last verification that still accepted
	// the key began; zero if none did.
	LastAcceptBegan time.Time
}

// Until calls refused every millisecond until it reports true or limit has
// passed.
func Until(limit time.Duration, refused func() bool) Watch {
	deadline := time.Now().Add(limit)
	var w Watch
	for {
		began := time.Now()
		if refused() {
			w.Refused, w.SeenAt = true, time.Now()
			return w
		}
		w.LastAcceptBegan = began
		if began.After(deadline) {
			return w
		}
		time.Sleep(time.Millisecond)
	}
}

// AcceptedAfter is how long after revoked (when the revoking call returned)
// the last accepting verification began; 0 when none began after it. The
// bound is kept when this is below it.
func (w Watch) AcceptedAfter(revoked time.Time) time.Duration {
	if w.LastAcceptBegan.IsZero() || !w.LastAcceptBegan.After(revoked) {
		return 0
	}
	return w.LastAcceptBegan.Sub(revoked)
}
