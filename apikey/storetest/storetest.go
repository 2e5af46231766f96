// Package storetest is the conformance suite for apikey.Store
// implementations. Every store in keyflow runs it, and third-party stores
// should too:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) apikey.Store {
//			return newTestStore(t) // empty, cleaned up by t.Cleanup
//		})
//	}
//
// A store that is also an apikey.ChangeFeed (for several processes sharing
// it) runs RunChangeFeed as well.
//
// It imports only the standard library and packages apikey and observe.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyflow-dev/keyflow/apikey"
)

// Run runs the conformance suite as subtests of t. The usage-limit tests
// run for stores that are an apikey.LimitStore, and the EachHash test for
// stores that are an apikey.HashLister; they are skipped otherwise. newStore must return a
// new, empty store for each call; the suite never closes it, so register any
// cleanup with t.Cleanup. Subtests do not run in parallel with each other.
//
// A store that is an apikey.KeyInserter gets every record through
// InsertKey, with its key; its records' Prefix and Length are then those of
// the key.
func Run(t *testing.T, newStore func(t *testing.T) apikey.Store) {
	t.Helper()
	RunWith(t, newStore, Config{})
}

// Config tell the suite what a store cannot keep because it works on a
// schema it does not own (package langflowdb on Langflow's tables). The
// zero value checks everything.
type Config struct {
	// NoScopes: the store keeps no Scopes; the suite inserts none.
	NoScopes bool
	// NoExpiry: the store keeps no ExpiresAt; the suite sets none.
	NoExpiry bool
}

// RunWith is Run for a store that cannot keep everything a Record holds.
func RunWith(t *testing.T, newStore func(t *testing.T) apikey.Store, o Config) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, apikey.Store)
	}{
		{"InsertByHashRoundTrip", func(t *testing.T, s apikey.Store) { testRoundTrip(t, s, o) }},
		{"InsertMinimalRecord", testMinimal},
		{"ByHashNotFound", testByHashNotFound},
		{"InsertDuplicate", testDuplicate},
		{"ListByUser", testList},
		{"Delete", func(t *testing.T, s apikey.Store) { testDelete(t, s, o) }},
		{"SetActive", testSetActive},
		{"AddUsage", testAddUsage},
		{"AddUsageConcurrent", testAddUsageConcurrent},
		{"NoSharedMemory", func(t *testing.T, s apikey.Store) { testNoSharedMemory(t, s, o) }},
		{"CanceledContext", testCanceled},
		{"Limits", testLimits},
		{"LimitsRefuseOthersKeys", testLimitsOwner},
		{"TakeQuotaConcurrent", testTakeQuotaConcurrent},
		{"QuotaRefill", testQuotaRefill},
		{"EachHash", testEachHash},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

// base is a time with microsecond precision, the precision stores must keep.
var base = time.Date(2026, 1, 16, 9, 30, 15, 123456000, time.UTC)

var seq struct {
	sync.Mutex
	n int
}

// keys maps the hash of every key the suite made to the key, for stores
// that are apikey.KeyInserters.
var keys sync.Map // apikey.Hash → string

// put inserts r: through InsertKey with r's key when s is a KeyInserter.
func put(ctx context.Context, s apikey.Store, r apikey.Record) error {
	if ki, ok := s.(apikey.KeyInserter); ok {
		if key, ok := keys.Load(r.Hash); ok {
			return ki.InsertKey(ctx, r, key.(string))
		}
	}
	return s.Insert(ctx, r)
}

// newRecord returns a fresh record of user with a new key, created at base
// plus offset seconds.
func newRecord(t *testing.T, user string, offset int) apikey.Record {
	t.Helper()
	key, err := apikey.Langflow.Generate()
	if err != nil {
		t.Fatalf("generate: %v", err)
	}
	keys.Store(apikey.HashKey(key), key)
	seq.Lock()
	seq.n++
	n := seq.n
	seq.Unlock()
	return apikey.Record{
		ID:        fmt.Sprintf("00000000-0000-4000-8000-%012d", n),
		UserID:    user,
		Name:      fmt.Sprintf("key %d", n),
		Hash:      apikey.HashKey(key),
		Prefix:    key[:8],
		Length:    len(key),
		CreatedAt: base.Add(time.Duration(offset) * time.Second),
		Active:    true,
	}
}

func ptr(t time.Time) *time.Time { return &t }

func insert(t *testing.T, s apikey.Store, r apikey.Record) {
	t.Helper()
	if err := put(context.Background(), s, r); err != nil {
		t.Fatalf("Insert(%s): %v", r.ID, err)
	}
}

func byHash(t *testing.T, s apikey.Store, h apikey.Hash) apikey.Record {
	t.Helper()
	r, err := s.ByHash(context.Background(), h)
	if err != nil {
		t.Fatalf("ByHash: %v", err)
	}
	return r
}

// diff describes how got differs from want ("" if equal). Times compare with
// Equal, empty and nil Scopes are the same.
func diff(want, got apikey.Record) string {
	var d []string
	add := func(field string, w, g any) { d = append(d, fmt.Sprintf("%s = %v, want %v", field, g, w)) }
	if got.ID != want.ID {
		add("ID", want.ID, got.ID)
	}
	if got.UserID != want.UserID {
		add("UserID", want.UserID, got.UserID)
	}
	if got.Name != want.Name {
		add("Name", want.Name, got.Name)
	}
	if got.Hash != want.Hash {
		add("Hash", want.Hash, got.Hash)
	}
	if got.Prefix != want.Prefix {
		add("Prefix", want.Prefix, got.Prefix)
	}
	if got.Length != want.Length {
		add("Length", want.Length, got.Length)
	}
	if !got.CreatedAt.Equal(want.CreatedAt) {
		add("CreatedAt", want.CreatedAt, got.CreatedAt)
	}
	if !eqTime(want.LastUsedAt, got.LastUsedAt) {
		add("LastUsedAt", fmtTime(want.LastUsedAt), fmtTime(got.LastUsedAt))
	}
	if got.TotalUses != want.TotalUses {
		add("TotalUses", want.TotalUses, got.TotalUses)
	}
	if got.Active != want.Active {
		add("Active", want.Active, got.Active)
	}
	if !eqTime(want.ExpiresAt, got.ExpiresAt) {
		add("ExpiresAt", fmtTime(want.ExpiresAt), fmtTime(got.ExpiresAt))
	}
	if !slices.Equal(want.Scopes, got.Scopes) {
		add("Scopes", want.Scopes, got.Scopes)
	}
	if !sameLimits(want.Limits, got.Limits) {
		add("Limits", fmtLimits(want.Limits), fmtLimits(got.Limits))
	}
	return strings.Join(d, "; ")
}

func eqTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Equal(*b)
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return "nil"
	}
	return t.Format(time.RFC3339Nano)
}

func requireSame(t *testing.T, what string, want, got apikey.Record) {
	t.Helper()
	if d := diff(want, got); d != "" {
		t.Fatalf("%s: %s", what, d)
	}
}

func testRoundTrip(t *testing.T, s apikey.Store, o Config) {
	r := newRecord(t, "user-a", 0)
	r.Name = "Production — 生产"
	r.LastUsedAt = ptr(base.Add(time.Hour))
	r.TotalUses = 42
	r.Active = false
	if !o.NoExpiry {
		r.ExpiresAt = ptr(base.Add(30 * 24 * time.Hour))
	}
	if !o.NoScopes {
		r.Scopes = []string{"flows:run", "variables:read"}
	}
	if _, ok := s.(apikey.KeyInserter); !ok {
		r.Length = 55 // a length kept as given, not read from a key
	}
	insert(t, s, r)
	requireSame(t, "ByHash after Insert", r, byHash(t, s, r.Hash))
}

func testMinimal(t *testing.T, s apikey.Store) {
	r := newRecord(t, "user-a", 0)
	r.Name = ""
	insert(t, s, r)
	got := byHash(t, s, r.Hash)
	requireSame(t, "ByHash after Insert", r, got)
	if got.LastUsedAt != nil || got.ExpiresAt != nil || len(got.Scopes) != 0 {
		t.Fatalf("optional fields of a minimal record: LastUsedAt %v, ExpiresAt %v, Scopes %v; want nil, nil, empty",
			got.LastUsedAt, got.ExpiresAt, got.Scopes)
	}
}

func testByHashNotFound(t *testing.T, s apikey.Store) {
	insert(t, s, newRecord(t, "user-a", 0))
	_, err := s.ByHash(context.Background(), apikey.HashKey("sk-unknown"))
	if !errors.Is(err, apikey.ErrNotFound) {
		t.Fatalf("ByHash(unknown) error = %v, want ErrNotFound", err)
	}
}

func testDuplicate(t *testing.T, s apikey.Store) {
	ctx := context.Background()
	r := newRecord(t, "user-a", 0)
	insert(t, s, r)

	sameID := newRecord(t, "user-b", 1)
	sameID.ID = r.ID
	if err := put(ctx, s, sameID); !errors.Is(err, apikey.ErrDuplicate) {
		t.Fatalf("Insert(same ID) error = %v, want ErrDuplicate", err)
	}
	if _, err := s.ByHash(ctx, sameID.Hash); !errors.Is(err, apikey.ErrNotFound) {
		t.Fatalf("a rejected Insert stored its record (ByHash error %v)", err)
	}

	sameHash := newRecord(t, "user-b", 2)
	sameHash.Hash = r.Hash
	if err := put(ctx, s, sameHash); !errors.Is(err, apikey.ErrDuplicate) {
		t.Fatalf("Insert(same hash) error = %v, want ErrDuplicate", err)
	}
	requireSame(t, "original after rejected duplicates", r, byHash(t, s, r.Hash))
	if recs, err := s.ListByUser(ctx, "user-b"); err != nil || len(recs) != 0 {
		t.Fatalf("ListByUser(user-b) = %d records, %v; want none", len(recs), err)
	}
}

func testList(t *testing.T, s apikey.Store) {
	ctx := context.Background()
	// Inserted out of order; two share a creation time (then ID orders).
	third := newRecord(t, "user-a", 20)
	first := newRecord(t, "user-a", 0)
	second := newRecord(t, "user-a", 10)
	tie := newRecord(t, "user-a", 20)
	tie.ID = "ffffffff-0000-4000-8000-000000000000"
	other := newRecord(t, "user-b", 5)
	for _, r := range []apikey.Record{third, other, tie, first, second} {
		insert(t, s, r)
	}
	got, err := s.ListByUser(ctx, "user-a")
	if err != nil {
		t.Fatalf("ListByUser: %v", err)
	}
	want := []apikey.Record{first, second, third, tie}
	if len(got) != len(want) {
		t.Fatalf("ListByUser returned %d records, want %d", len(got), len(want))
	}
	for i := range want {
		requireSame(t, fmt.Sprintf("ListByUser[%d]", i), want[i], got[i])
	}
	none, err := s.ListByUser(ctx, "nobody")
	if err != nil || len(none) != 0 {
		t.Fatalf("ListByUser(nobody) = %v, %v; want empty, nil", none, err)
	}
}

func testDelete(t *testing.T, s apikey.Store, o Config) {
	ctx := context.Background()
	r := newRecord(t, "user-a", 0)
	if !o.NoScopes {
		r.Scopes = []string{"a"}
	}
	keep := newRecord(t, "user-a", 1)
	insert(t, s, r)
	insert(t, s, keep)

	if _, err := s.Delete(ctx, "user-b", r.ID); !errors.Is(err, apikey.ErrNotFound) {
		t.Fatalf("Delete(another user's key) error = %v, want ErrNotFound", err)
	}
	requireSame(t, "record after another user's Delete", r, byHash(t, s, r.Hash))
	if _, err := s.Delete(ctx, "user-a", "00000000-0000-4000-8000-ffffffffffff"); !errors.Is(err, apikey.ErrNotFound) {
		t.Fatalf("Delete(missing) error = %v, want ErrNotFound", err)
	}

	got, err := s.Delete(ctx, "user-a", r.ID)
	if err != nil {
		t.Fatalf("Delete: %v", err)
	}
	requireSame(t, "record returned by Delete", r, got)
	if _, err := s.ByHash(ctx, r.Hash); !errors.Is(err, apikey.ErrNotFound) {
		t.Fatalf("ByHash after Delete error = %v, want ErrNotFound", err)
	}
	if _, err := s.Delete(ctx, "user-a", r.ID); !errors.Is(err, apikey.ErrNotFound) {
		t.Fatalf("second Delete error = %v, want ErrNotFound", err)
	}
	list, err := s.ListByUser(ctx, "user-a")
	if err != nil || len(list) != 1 || list[0].ID != keep.ID {
		t.Fatalf("ListByUser after Delete = %v, %v; want only %s", list, err, keep.ID)
	}
	// The ID and hash are free again.
	insert(t, s, r)
}

func testSetActive(t *testing.T, s apikey.Store) {
	ctx := context.Background()
	r := newRecord(t, "user-a", 0)
	insert(t, s, r)

	got, err := s.SetActive(ctx, "user-a", r.ID, false)
	if err != nil {
		t.Fatalf("SetActive(false): %v", err)
	}
	r.Active = false
	requireSame(t, "record returned by SetActive(false)", r, got)
	requireSame(t, "ByHash after SetActive(false)", r, byHash(t, s, r.Hash))

	if _, err := s.SetActive(ctx, "user-b", r.ID, true); !errors.Is(err, apikey.ErrNotFound) {
		t.Fatalf("SetActive(another user's key) error = %v, want ErrNotFound", err)
	}
	requireSame(t, "record after another user's SetActive", r, byHash(t, s, r.Hash))
	if _, err := s.SetActive(ctx, "user-a", "00000000-0000-4000-8000-ffffffffffff", true); !errors.Is(err, apikey.ErrNotFound) {
		t.Fatalf("SetActive(missing) error = %v, want ErrNotFound", err)
	}

	if got, err = s.SetActive(ctx, "user-a", r.ID, true); err != nil {
		t.Fatalf("SetActive(true): %v", err)
	}
	r.Active = true
	requireSame(t, "record returned by SetActive(true)", r, got)
	// Setting the current value again is not an error.
	if _, err := s.SetActive(ctx, "user-a", r.ID, true); err != nil {
		t.Fatalf("SetActive(true) twice: %v", err)
	}
}

func testAddUsage(t *testing.T, s apikey.Store) {
	ctx := context.Background()
	a, b := newRecord(t, "user-a", 0), newRecord(t, "user-b", 1)
	insert(t, s, a)
	insert(t, s, b)
	t1, t2 := base.Add(time.Minute), base.Add(2*time.Minute)

	if err := s.AddUsage(ctx, nil); err != nil {
		t.Fatalf("AddUsage(empty): %v", err)
	}
	err := s.AddUsage(ctx, []apikey.Usage{
		{ID: a.ID, Uses: 3, LastUsed: t2},
		{ID: "00000000-0000-4000-8000-ffffffffffff", Uses: 5, LastUsed: t2}, // unknown: ignored
		{ID: b.ID, Uses: 1, LastUsed: t1},
	})
	if err != nil {
		t.Fatalf("AddUsage: %v", err)
	}
	a.TotalUses, a.LastUsedAt = 3, ptr(t2)
	b.TotalUses, b.LastUsedAt = 1, ptr(t1)
	requireSame(t, "first key after AddUsage", a, byHash(t, s, a.Hash))
	requireSame(t, "second key after AddUsage", b, byHash(t, s, b.Hash))

	// Counts add up; last_used_at moves only forward.
	if err := s.AddUsage(ctx, []apikey.Usage{{ID: a.ID, Uses: 2, LastUsed: t1}, {ID: b.ID, Uses: 4, LastUsed: t2}}); err != nil {
		t.Fatalf("AddUsage: %v", err)
	}
	a.TotalUses = 5 // LastUsedAt stays t2: t1 is older
	b.TotalUses, b.LastUsedAt = 5, ptr(t2)
	requireSame(t, "first key after an older AddUsage", a, byHash(t, s, a.Hash))
	requireSame(t, "second key after a newer AddUsage", b, byHash(t, s, b.Hash))

	// Usage of a deleted key is ignored.
	if _, err := s.Delete(ctx, "user-b", b.ID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if err := s.AddUsage(ctx, []apikey.Usage{{ID: b.ID, Uses: 1, LastUsed: t2}}); err != nil {
		t.Fatalf("AddUsage(deleted key): %v", err)
	}
}

func testAddUsageConcurrent(t *testing.T, s apikey.Store) {
	ctx := context.Background()
	a, b := newRecord(t, "user-a", 0), newRecord(t, "user-a", 1)
	insert(t, s, a)
	insert(t, s, b)
	const workers, rounds = 8, 25
	latest := base.Add(time.Duration(workers*rounds) * time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds)
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				at := base.Add(time.Duration(w*rounds+i+1) * time.Second)
				// Both orders of IDs, as two processes might send them.
				batch := []apikey.Usage{{ID: a.ID, Uses: 1, LastUsed: at}, {ID: b.ID, Uses: 2, LastUsed: at}}
				if w%2 == 1 {
					batch[0], batch[1] = batch[1], batch[0]
				}
				if err := s.AddUsage(ctx, batch); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent AddUsage: %v", err)
	}
	for _, c := range []struct {
		r    apikey.Record
		uses int64
	}{{a, workers * rounds}, {b, 2 * workers * rounds}} {
		got := byHash(t, s, c.r.Hash)
		if got.TotalUses != c.uses || got.LastUsedAt == nil || !got.LastUsedAt.Equal(latest) {
			t.Fatalf("after concurrent AddUsage: TotalUses %d, LastUsedAt %s; want %d, %s",
				got.TotalUses, fmtTime(got.LastUsedAt), c.uses, latest.Format(time.RFC3339Nano))
		}
	}
}

func testNoSharedMemory(t *testing.T, s apikey.Store, o Config) {
	ctx := context.Background()
	r := newRecord(t, "user-a", 0)
	r.LastUsedAt = ptr(base.Add(time.Minute))
	if !o.NoScopes {
		r.Scopes = []string{"one", "two"}
	}
	if !o.NoExpiry {
		r.ExpiresAt = ptr(base.Add(time.Hour))
	}
	want := r
	want.Scopes = slices.Clone(r.Scopes)
	want.LastUsedAt = ptr(*r.LastUsedAt)
	if r.ExpiresAt != nil {
		want.ExpiresAt = ptr(*r.ExpiresAt)
	}
	insert(t, s, r)
	// change changes every piece of memory that a record may share.
	change := func(r *apikey.Record, i int, by string) {
		if len(r.Scopes) > i {
			r.Scopes[i] = by
		}
		if r.ExpiresAt != nil {
			*r.ExpiresAt = base
		}
		if r.LastUsedAt != nil {
			*r.LastUsedAt = base
		}
	}
	change(&r, 0, "changed by caller")
	requireSame(t, "record after the caller changed its copy", want, byHash(t, s, want.Hash))

	got := byHash(t, s, want.Hash)
	change(&got, 1, "changed by reader")
	requireSame(t, "record after a reader changed its copy", want, byHash(t, s, want.Hash))
	list, err := s.ListByUser(ctx, "user-a")
	if err != nil || len(list) != 1 {
		t.Fatalf("ListByUser = %v, %v", list, err)
	}
	change(&list[0], 0, "changed by lister")
	requireSame(t, "record after a lister changed its copy", want, byHash(t, s, want.Hash))
}

func testCanceled(t *testing.T, s apikey.Store) {
	r := newRecord(t, "user-a", 0)
	insert(t, s, r)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if got, err := s.ByHash(ctx, r.Hash); !errors.Is(err, context.Canceled) {
		t.Fatalf("ByHash(canceled context) = %s, %v; want an error wrapping context.Canceled", got.ID, err)
	}
	if err := put(ctx, s, newRecord(t, "user-a", 1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Insert(canceled context) error = %v, want context.Canceled", err)
	}
	if _, err := s.Delete(ctx, "user-a", r.ID); !errors.Is(err, context.Canceled) {
		t.Fatalf("Delete(canceled context) error = %v, want context.Canceled", err)
	}
	requireSame(t, "record after a canceled Delete", r, byHash(t, s, r.Hash))
}

func testEachHash(t *testing.T, s apikey.Store) {
	l, ok := s.(apikey.HashLister)
	if !ok {
		t.Skip("the store is not an apikey.HashLister")
	}
	ctx := context.Background()
	list := func() map[apikey.Hash]int {
		t.Helper()
		got := map[apikey.Hash]int{}
		if err := l.EachHash(ctx, func(h apikey.Hash) error { got[h]++; return nil }); err != nil {
			t.Fatalf("EachHash: %v", err)
		}
		return got
	}
	if got := list(); len(got) != 0 {
		t.Fatalf("EachHash on an empty store listed %d hashes", len(got))
	}
	want := map[apikey.Hash]int{}
	var recs []apikey.Record
	for i := range 5 {
		r := newRecord(t, fmt.Sprintf("user-%d", i%2), i)
		insert(t, s, r)
		recs = append(recs, r)
		want[r.Hash] = 1
	}
	if _, err := s.Delete(ctx, recs[0].UserID, recs[0].ID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	delete(want, recs[0].Hash)
	if _, err := s.SetActive(ctx, recs[1].UserID, recs[1].ID, false); err != nil {
		t.Fatalf("SetActive: %v", err)
	}
	if got := list(); !maps.Equal(got, want) {
		t.Fatalf("EachHash listed %v, want each of %v once (inactive included, deleted not)", got, want)
	}

	stop := errors.New("stop")
	calls := 0
	err := l.EachHash(ctx, func(apikey.Hash) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("EachHash with fn failing: %v after %d calls, want fn's error after 1", err, calls)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if err := l.EachHash(canceled, func(apikey.Hash) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("EachHash(canceled context) error = %v, want context.Canceled", err)
	}
}
