package storetest

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyflow-dev/keyflow/internal/feedtest"
	"github.com/keyflow-dev/keyflow/keyflowtest/revoketest"
	"github.com/keyflow-dev/keyflow/secrets"
	"github.com/keyflow-dev/keyflow/variables"
)

// FeedStore is a Store that is also a ChangeFeed of its own changes, as
// variables/sqlstore's Store is.
type FeedStore interface {
	variables.Store
	variables.ChangeFeed
}

// RunChangeFeed runs the conformance suite of variables.ChangeFeed as
// subtests of t: every create, update, delete and ciphertext swap reports
// its user, changes made concurrently with polls are not missed, a
// malformed cursor is an error, not a panic, and two Services caching
// through the feed (as two processes sharing the store would) keep the
// bound: a variable changed or deleted through one is seen by the other
// within ChangesMaxLag (1 s), and by the one that changed it at once.
// newStore must return a new, empty store for each call.
func RunChangeFeed(t *testing.T, newStore func(t *testing.T) FeedStore) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, FeedStore)
	}{
		{"ReportsChanges", testFeedReports},
		{"ConcurrentChanges", testFeedConcurrent},
		{"MalformedCursor", testFeedMalformed},
		{"CacheBound", testFeedBound},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

// drain polls from cursor until a poll reports nothing, and returns the
// users reported (as a set) and the last cursor.
func drain(t *testing.T, f variables.ChangeFeed, cursor string) (map[string]bool, string) {
	t.Helper()
	return feedtest.Drain[string](t, f, cursor)
}

func testFeedReports(t *testing.T, s FeedStore) {
	ctx := context.Background()
	users, cur, err := s.Changes(ctx, "")
	if err != nil || cur == "" || len(users) != 0 {
		t.Fatalf(`Changes(ctx, "") = %d users, %q, %v; want none, a cursor, nil`, len(users), cur, err)
	}
	a := mustCreate(t, s, newVar("feed-a", "A", 0))
	mustCreate(t, s, newVar("feed-b", "B", 1))
	seen, cur := drain(t, s, cur)
	isTrue(t, seen["feed-a"] && seen["feed-b"], "creates reported: %v", seen)
	isFalse(t, seen["feed-c"], "a user without changes reported")

	next := a
	next.Value, next.UpdatedAt = "changed", base.Add(time.Hour)
	mustNoError(t, s.Update(ctx, a, next))
	seen, cur = drain(t, s, cur)
	isTrue(t, seen["feed-a"], "update reported")
	isFalse(t, seen["feed-b"], "an unchanged user reported after an update")

	token := "gAAAAA-storetest-token-1"
	c := newVar("feed-c", "C", 2)
	c.Value = token
	mustCreate(t, s, c)
	_, cur = drain(t, s, cur)
	ok, err := s.SwapCiphertext(ctx, c.ID, token, "gAAAAA-storetest-token-2")
	mustNoError(t, err)
	isTrue(t, ok, "swap")
	seen, cur = drain(t, s, cur)
	isTrue(t, seen["feed-c"], "ciphertext swap reported")

	mustNoError(t, s.Delete(ctx, "feed-a", a.ID))
	seen, _ = drain(t, s, cur)
	isTrue(t, seen["feed-a"], "delete reported")
}

// testFeedConcurrent: changes committed while another goroutine polls are
// all reported by some poll.
func testFeedConcurrent(t *testing.T, s FeedStore) {
	const n = 40
	var missed []string
	for _, i := range feedtest.Concurrent[string](t, s, n,
		func(i int) { mustCreate(t, s, newVar(userN(i), "V", i)) },
		userN) {
		missed = append(missed, userN(i))
	}
	slices.Sort(missed)
	empty(t, missed, "changes never reported")
}

func userN(i int) string { return "feed-user-" + string(rune('A'+i/26)) + string(rune('a'+i%26)) }

func testFeedMalformed(t *testing.T, s FeedStore) {
	for _, cur := range []string{"not a cursor", "-1", "x@y", "1:2@3"} {
		_, _, err := s.Changes(context.Background(), cur)
		isTrue(t, err != nil, "Changes(%q) must fail", cur)
	}
}

// countingStore counts ListByUser calls: the Resolver's store reads.
type countingStore struct {
	FeedStore
	lists atomic.Int64
}

func (c *countingStore) ListByUser(ctx context.Context, userID string) ([]variables.Variable, error) {
	c.lists.Add(1)
	return c.FeedStore.ListByUser(ctx, userID)
}

// testFeedBound: Services A and B on one store, each caching through the
// feed. A variable that B serves from its cache is changed, then deleted,
// through A: A resolves the new state at once; no resolution on B that
// began more than ChangesMaxLag after A's call returned gives the old one.
func testFeedBound(t *testing.T, s FeedStore) {
	const maxLag = time.Second
	ctx := context.Background()
	keyring, err := secrets.NewKeyring("storetest-change-feed-bound-secret")
	mustNoError(t, err)
	onB := &countingStore{FeedStore: s}
	newService := func(st variables.Store) (*variables.Service, *variables.Resolver) {
		svc, err := variables.NewService(variables.ServiceConfig{Store: st, Keyring: keyring, Changes: s, ChangesMaxLag: maxLag})
		mustNoError(t, err)
		t.Cleanup(func() { _ = svc.Close() })
		r, err := variables.NewResolver(variables.ResolverConfig{Service: svc, EnvFallback: variables.EnvFallbackOff})
		mustNoError(t, err)
		return svc, r
	}
	a, ra := newService(s)
	_, rb := newService(onB)
	const user = "feed-bound-user"
	fields := []variables.Field{{Name: "api_key", Variable: "BOUND_VARIABLE"}}
	resolve := func(r *variables.Resolver) variables.Resolution {
		t.Helper()
		res, err := r.Resolve(ctx, user, fields, nil)
		mustNoError(t, err, "Resolve")
		mustLen(t, res, 1)
		return res[0]
	}
	// cachedOnB waits until B resolves the variable from its cache (no
	// store read), as it has value want.
	cachedOnB := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			before := onB.lists.Load()
			got := resolve(rb)
			if got.Value == want && onB.lists.Load() == before {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("B never served %q from its cache (last: %q, %s)", want, got.Value, got.Layer)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	v, err := a.Create(ctx, user, variables.CreateInput{Name: "BOUND_VARIABLE", Value: "first", Type: variables.Generic})
	mustNoError(t, err)
	cachedOnB("first")
	second := "second"
	_, err = a.Update(ctx, user, v.ID, variables.Patch{Value: &second})
	mustNoError(t, err)
	changed := time.Now()
	equal(t, "second", resolve(ra).Value, "A resolves its own change at once")
	w := revoketest.Until(10*time.Second, func() bool { return resolve(rb).Value == "second" })
	isTrue(t, w.Refused, "B never saw the change")
	isTrue(t, w.AcceptedAfter(changed) < maxLag, "B resolved the old value %v after the change (bound %v)", w.AcceptedAfter(changed), maxLag)
	t.Logf("change seen by B %v after A's call returned", w.SeenAt.Sub(changed).Round(time.Millisecond))

	cachedOnB("second")
	mustNoError(t, a.Delete(ctx, user, v.ID))
	deleted := time.Now()
	equal(t, variables.LayerNone, resolve(ra).Layer, "A honours its own deletion at once")
	w = revoketest.Until(10*time.Second, func() bool { return resolve(rb).Layer == variables.LayerNone })
	isTrue(t, w.Refused, "B never saw the deletion")
	isTrue(t, w.AcceptedAfter(deleted) < maxLag, "B resolved the deleted variable %v after the deletion (bound %v)", w.AcceptedAfter(deleted), maxLag)
	t.Logf("deletion seen by B %v after A's call returned", w.SeenAt.Sub(deleted).Round(time.Millisecond))
}
