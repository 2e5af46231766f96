package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/observe"
)

// HistoryStore is a store that keeps a usage history.
type HistoryStore interface {
	apikey.Store
	apikey.UsageHistory
}

// RunUsageHistory checks a store's apikey.UsageHistory: counts add up per
// key, hour and outcome (also from concurrent batches), reads select by key
// and hour range in order, pruning drops old hours. newStore must return a
// new, empty store for each call.
func RunUsageHistory(t *testing.T, newStore func(t *testing.T) HistoryStore) {
	t.Helper()
	ctx := context.Background()
	h0 := time.Date(2026, 4, 1, 10, 0, 0, 0, time.UTC)
	hour := func(i int) time.Time { return h0.Add(time.Duration(i) * time.Hour) }
	read := func(t *testing.T, s HistoryStore, id string, since, until time.Time) []apikey.UsageBucket {
		t.Helper()
		bs, err := s.UsageHistory(ctx, id, since, until)
		if err != nil {
			t.Fatalf("UsageHistory: %v", err)
		}
		if bs == nil {
			t.Fatal("UsageHistory returned nil, want an empty slice")
		}
		return bs
	}
	str := func(bs []apikey.UsageBucket) string {
		s := ""
		for _, b := range bs {
			s += fmt.Sprintf("[%s %s %s %d]", b.KeyID, b.Hour.Format("15"), b.Outcome, b.Count)
			if b.Hour.Location() != time.UTC {
				s += "(not UTC)"
			}
		}
		return s
	}

	t.Run("AddAndRead", func(t *testing.T) {
		s := newStore(t)
		add := func(batch ...apikey.UsageBucket) {
			t.Helper()
			if err := s.AddUsageHistory(ctx, batch); err != nil {
				t.Fatalf("AddUsageHistory: %v", err)
			}
		}
		add(apikey.UsageBucket{KeyID: "k1", Hour: hour(0), Outcome: observe.OK, Count: 5},
			apikey.UsageBucket{KeyID: "k1", Hour: hour(0), Outcome: observe.Disabled, Count: 2},
			apikey.UsageBucket{KeyID: "k1", Hour: hour(2), Outcome: observe.OK, Count: 1},
			apikey.UsageBucket{KeyID: "k2", Hour: hour(0), Outcome: observe.OK, Count: 7})
		add(apikey.UsageBucket{KeyID: "k1", Hour: hour(0), Outcome: observe.OK, Count: 3},
			apikey.UsageBucket{KeyID: "k1", Hour: hour(1), Outcome: observe.RateLimited, Count: 4})
		add() // an empty batch is fine
		if got, want := str(read(t, s, "k1", hour(0), hour(3))), "[k1 10 ok 8][k1 10 disabled 2][k1 11 rate_limited 4][k1 12 ok 1]"; got != want {
			t.Errorf("history of k1 = %s, want %s", got, want)
		}
		if got, want := str(read(t, s, "k1", hour(1), hour(2))), "[k1 11 rate_limited 4]"; got != want {
			t.Errorf("one hour = %s, want %s (since inclusive, until exclusive)", got, want)
		}
		if got := read(t, s, "nobody", hour(0), hour(9)); len(got) != 0 {
			t.Errorf("unknown key: %s", str(got))
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		s := newStore(t)
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 10 {
					if err := s.AddUsageHistory(ctx, []apikey.UsageBucket{
						{KeyID: "a", Hour: hour(0), Outcome: observe.OK, Count: 1},
						{KeyID: "b", Hour: hour(0), Outcome: observe.OK, Count: 2},
					}); err != nil {
						t.Errorf("AddUsageHistory: %v", err)
						return
					}
				}
			}()
		}
		wg.Wait()
		if got, want := str(read(t, s, "b", hour(0), hour(1))), "[b 10 ok 160]"; got != want {
			t.Errorf("concurrent adds = %s, want %s", got, want)
		}
	})

	t.Run("Prune", func(t *testing.T) {
		s := newStore(t)
		for i := range 5 {
			if err := s.AddUsageHistory(ctx, []apikey.UsageBucket{{KeyID: "k", Hour: hour(i), Outcome: observe.OK, Count: 1}}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.PruneUsageHistory(ctx, hour(3)); err != nil {
			t.Fatalf("PruneUsageHistory: %v", err)
		}
		if got, want := str(read(t, s, "k", hour(0), hour(9))), "[k 13 ok 1][k 14 ok 1]"; got != want {
			t.Errorf("after pruning = %s, want %s", got, want)
		}
	})
}
