package storetest

import (
	"context"
	"slices"
	"testing"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/internal/feedtest"
)

// FeedStore is a Store that is also a ChangeFeed of its own changes, as
// apikey/sqlstore's Store is.
type FeedStore interface {
	apikey.Store
	apikey.ChangeFeed
}

// RunChangeFeed runs the conformance suite of apikey.ChangeFeed as subtests
// of t: every insert, delete and status change is reported (usage counting
// need not be), changes made concurrently with polls are not missed, and a
// malformed cursor is an error, not a panic. newStore must return a new,
// empty store for each call.
func RunChangeFeed(t *testing.T, newStore func(t *testing.T) FeedStore) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, FeedStore)
	}{
		{"ReportsChanges", testFeedReports},
		{"ConcurrentChanges", testFeedConcurrent},
		{"MalformedCursor", testFeedMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

// drain polls from cursor until a poll reports nothing, and returns the
// hashes reported (as a set) and the last cursor.
func drain(t *testing.T, f apikey.ChangeFeed, cursor string) (map[apikey.Hash]bool, string) {
	t.Helper()
	return feedtest.Drain[apikey.Hash](t, f, cursor)
}

func testFeedReports(t *testing.T, s FeedStore) {
	ctx := context.Background()
	hs, cur, err := s.Changes(ctx, "")
	if err != nil || cur == "" || len(hs) != 0 {
		t.Fatalf(`Changes(ctx, "") = %d hashes, %q, %v; want none, a cursor, nil`, len(hs), cur, err)
	}
	a, b, c := newRecord(t, "user-a", 0), newRecord(t, "user-a", 1), newRecord(t, "user-a", 2)
	for _, r := range []apikey.Record{a, b, c} {
		insert(t, s, r)
	}
	seen, cur := drain(t, s, cur)
	for _, r := range []apikey.Record{a, b, c} {
		if !seen[r.Hash] {
			t.Errorf("insert of %s not reported", r.ID)
		}
	}
	if _, err := s.SetActive(ctx, "user-a", a.ID, false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(ctx, "user-a", b.ID); err != nil {
		t.Fatal(err)
	}
	seen, _ = drain(t, s, cur)
	if !seen[a.Hash] || !seen[b.Hash] {
		t.Errorf("SetActive reported: %v, Delete reported: %v; want both", seen[a.Hash], seen[b.Hash])
	}
}

// testFeedConcurrent: changes committed while another goroutine polls are
// all reported by some poll that starts after they return.
func testFeedConcurrent(t *testing.T, s FeedStore) {
	const n = 40
	recs := make([]apikey.Record, n)
	for i := range recs {
		recs[i] = newRecord(t, "user-c", i)
	}
	var missed []string
	for _, i := range feedtest.Concurrent[apikey.Hash](t, s, n,
		func(i int) { insert(t, s, recs[i]) },
		func(i int) apikey.Hash { return recs[i].Hash }) {
		missed = append(missed, recs[i].ID)
	}
	slices.Sort(missed)
	if len(missed) > 0 {
		t.Errorf("%d of %d concurrent inserts never reported: %v", len(missed), n, missed)
	}
}

func testFeedMalformed(t *testing.T, s FeedStore) {
	for _, c := range []string{"garbage", "-1", "1:2", "\x00"} {
		if _, _, err := s.Changes(context.Background(), c); err == nil {
			t.Errorf("Changes(ctx, %q) = nil error; want an error", c)
		}
	}
}
