package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keyflow-dev/keyflow/apikey"
)

func sameLimits(a, b apikey.Limits) bool {
	if !slices.Equal(a.Rate, b.Rate) || (a.Quota == nil) != (b.Quota == nil) {
		return false
	}
	if a.Quota == nil {
		return true
	}
	x, y := *a.Quota, *b.Quota
	return x.Limit == y.Limit && x.Refill == y.Refill && x.Remaining == y.Remaining && x.PeriodStart.Equal(y.PeriodStart)
}

func fmtLimits(l apikey.Limits) string {
	s := fmt.Sprintf("rate %v", l.Rate)
	if q := l.Quota; q != nil {
		s += fmt.Sprintf(" quota %d (%s) remaining %d from %s", q.Limit, q.Refill, q.Remaining, q.PeriodStart.Format(time.RFC3339))
	}
	return s
}

// limitStore returns s as a LimitStore, skipping the test if it is not one.
func limitStore(t *testing.T, s apikey.Store) apikey.LimitStore {
	t.Helper()
	ls, ok := s.(apikey.LimitStore)
	if !ok {
		t.Skip("the store is not an apikey.LimitStore: it keeps no limits")
	}
	return ls
}

var month = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func limited() apikey.Limits {
	return apikey.Limits{
		Rate: []apikey.RateLimit{{Name: "minute", Limit: 100, Window: time.Minute}, {Name: "day", Limit: 10000, Window: 24 * time.Hour}},
		Quota: &apikey.Quota{Limit: 50000, Refill: apikey.Refill{Amount: 10000, Period: apikey.PeriodMonth},
			Remaining: 50000, PeriodStart: month},
	}
}

// testLimits: limits round-trip through Insert, ByHash, ListByUser and
// SetLimits; TakeQuota and ReturnQuota are exact.
func testLimits(t *testing.T, s apikey.Store) {
	ls := limitStore(t, s)
	ctx := context.Background()
	r := newRecord(t, "user-a", 0)
	r.Limits = limited()
	insert(t, s, r)
	requireSame(t, "ByHash after Insert", r, byHash(t, s, r.Hash))
	list, err := s.ListByUser(ctx, "user-a")
	if err != nil || len(list) != 1 {
		t.Fatalf("ListByUser = %d records, %v", len(list), err)
	}
	requireSame(t, "ListByUser", r, list[0])

	took, err := ls.TakeQuota(ctx, r.ID, 30, month)
	if err != nil || took.Taken != 30 || took.Remaining != 49970 || !took.Period.Equal(month) {
		t.Fatalf("TakeQuota(30) = %+v, %v; want 30 taken, 49970 left, period %s", took, err, month)
	}
	if err := ls.ReturnQuota(ctx, r.ID, 10, took); err != nil {
		t.Fatalf("ReturnQuota: %v", err)
	}
	if q := byHash(t, s, r.Hash).Limits.Quota; q.Remaining != 49980 {
		t.Fatalf("Remaining after taking 30 and returning 10 = %d, want 49980", q.Remaining)
	}

	// New rate limits and refill, the quota's state kept.
	l := limited()
	l.Rate = l.Rate[:1]
	l.Quota.Refill.Amount = 20000
	got, err := ls.SetLimits(ctx, "user-a", r.ID, l, false)
	if err != nil {
		t.Fatalf("SetLimits: %v", err)
	}
	r.Limits = l
	r.Limits.Quota.Remaining = 49980
	requireSame(t, "SetLimits without reset", r, got)
	requireSame(t, "ByHash after SetLimits", r, byHash(t, s, r.Hash))

	// A reset: a new grant; uses taken before can no longer be returned.
	l.Quota.Limit, l.Quota.Remaining = 7, 7
	got, err = ls.SetLimits(ctx, "user-a", r.ID, l, true)
	if err != nil {
		t.Fatalf("SetLimits with reset: %v", err)
	}
	r.Limits = l
	requireSame(t, "SetLimits with reset", r, got)
	if err := ls.ReturnQuota(ctx, r.ID, 20, took); err != nil {
		t.Fatalf("ReturnQuota: %v", err)
	}
	took2, err := ls.TakeQuota(ctx, r.ID, 100, month)
	if err != nil || took2.Taken != 7 || took2.Remaining != 0 || took2.Epoch == took.Epoch {
		t.Fatalf("TakeQuota(100) after a reset to 7 = %+v, %v; want 7 taken (a return of the old grant ignored) and a new epoch", took2, err)
	}
	took3, err := ls.TakeQuota(ctx, r.ID, 1, month)
	if err != nil || took3.Taken != 0 {
		t.Fatalf("TakeQuota of a spent quota = %+v, %v; want 0 taken", took3, err)
	}

	// Limits removed: unlimited, no quota to take.
	got, err = ls.SetLimits(ctx, "user-a", r.ID, apikey.Limits{}, false)
	if err != nil || !got.Limits.IsZero() {
		t.Fatalf("SetLimits(none) = %s, %v", fmtLimits(got.Limits), err)
	}
	if _, err := ls.TakeQuota(ctx, r.ID, 1, time.Time{}); !errors.Is(err, apikey.ErrNotFound) {
		t.Fatalf("TakeQuota of a key without quota: %v, want ErrNotFound", err)
	}
	// A quota set on a key that had none starts with its grant.
	l = apikey.Limits{Quota: &apikey.Quota{Limit: 3, Remaining: 3}}
	if got, err = ls.SetLimits(ctx, "user-a", r.ID, l, false); err != nil || got.Limits.Quota == nil || got.Limits.Quota.Remaining != 3 {
		t.Fatalf("SetLimits(new quota) = %s, %v; want 3 remaining", fmtLimits(got.Limits), err)
	}
	if _, err := ls.TakeQuota(ctx, "00000000-0000-4000-8000-ffffffffffff", 1, time.Time{}); !errors.Is(err, apikey.ErrNotFound) {
		t.Fatalf("TakeQuota of a missing key: %v, want ErrNotFound", err)
	}
}

func testLimitsOwner(t *testing.T, s apikey.Store) {
	ls := limitStore(t, s)
	r := newRecord(t, "user-a", 0)
	insert(t, s, r)
	if _, err := ls.SetLimits(context.Background(), "user-b", r.ID, limited(), true); !errors.Is(err, apikey.ErrNotFound) {
		t.Fatalf("SetLimits on another user's key: %v, want ErrNotFound", err)
	}
	if got := byHash(t, s, r.Hash); !got.Limits.IsZero() {
		t.Fatalf("another user changed the limits: %s", fmtLimits(got.Limits))
	}
}

// testTakeQuotaConcurrent: concurrent takes never take more than granted.
func testTakeQuotaConcurrent(t *testing.T, s apikey.Store) {
	ls := limitStore(t, s)
	r := newRecord(t, "user-a", 0)
	r.Limits = apikey.Limits{Quota: &apikey.Quota{Limit: 500, Remaining: 500}}
	insert(t, s, r)
	var mu sync.Mutex
	var total int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				took, err := ls.TakeQuota(context.Background(), r.ID, 7, time.Time{})
				if err != nil {
					t.Errorf("TakeQuota: %v", err)
					return
				}
				mu.Lock()
				total += took.Taken
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if total != 500 {
		t.Fatalf("concurrent takes took %d in all, want exactly the 500 granted", total)
	}
}

// testQuotaRefill: a take in a later period refills the quota first; a
// return of the earlier period is ignored.
func testQuotaRefill(t *testing.T, s apikey.Store) {
	ls := limitStore(t, s)
	ctx := context.Background()
	r := newRecord(t, "user-a", 0)
	r.Limits = apikey.Limits{Quota: &apikey.Quota{Limit: 5, Refill: apikey.Refill{Amount: 10, Period: apikey.PeriodMonth}, Remaining: 5, PeriodStart: month}}
	insert(t, s, r)
	jan, err := ls.TakeQuota(ctx, r.ID, 5, month)
	if err != nil || jan.Taken != 5 {
		t.Fatalf("TakeQuota in January = %+v, %v", jan, err)
	}
	feb := month.AddDate(0, 1, 0)
	took, err := ls.TakeQuota(ctx, r.ID, 4, feb)
	if err != nil || took.Taken != 4 || took.Remaining != 6 || !took.Period.Equal(feb) {
		t.Fatalf("TakeQuota in February = %+v, %v; want 4 taken of the 10 refilled", took, err)
	}
	if err := ls.ReturnQuota(ctx, r.ID, 5, jan); err != nil {
		t.Fatalf("ReturnQuota: %v", err)
	}
	// A Manager whose clock lags (still January) does not move the period back.
	took, err = ls.TakeQuota(ctx, r.ID, 1, month)
	if err != nil || took.Taken != 1 || took.Remaining != 5 || !took.Period.Equal(feb) {
		t.Fatalf("TakeQuota with January's period after February's refill = %+v, %v; want 1 taken, 5 left, period February", took, err)
	}
}
