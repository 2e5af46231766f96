// Package storetest is the conformance suite for variables.Store
// implementations. A third-party store passes it by calling Run from a test:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) variables.Store { return newMyStore(t) })
//	}
//
// newStore must return a new, empty store for each call.
//
// It imports only the standard library and keyflow.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyflow-dev/keyflow/internal/ids"
	"github.com/keyflow-dev/keyflow/secrets"
	"github.com/keyflow-dev/keyflow/variables"
)

// Run runs every conformance test against stores made by newStore.
func Run(t *testing.T, newStore func(t *testing.T) variables.Store) {
	RunWith(t, newStore, Config{})
}

// Config tell the suite what a store cannot keep because it works on a
// schema it does not own (package langflowdb on Langflow's variable table).
// The zero value checks everything.
type Config struct {
	// NoOrigin: the store does not keep Origin (every variable reads back
	// with one fixed origin); the suite does not compare origins.
	NoOrigin bool
	// ASCIINames: the store holds only names made of ASCII letters,
	// digits, '-', '_' and '.' (a Kubernetes Secret key). The suite
	// round-trips such a name in place of its Unicode one, and checks that
	// Create refuses the Unicode one with an error matching
	// variables.ErrInvalidName.
	ASCIINames bool
	// IDsPerUser: the store keeps IDs unique per user only (each user's
	// variables are kept apart, as in one Kubernetes Secret per user, with
	// nothing shared to check against). The suite checks that a taken ID is
	// refused for the same user, not across users.
	IDsPerUser bool
}

// RunWith is Run for a store that cannot keep everything a Variable
// holds.
func RunWith(t *testing.T, newStore func(t *testing.T) variables.Store, o Config) {
	st := suite{o}
	tests := []struct {
		name string
		fn   func(t *testing.T, s variables.Store)
	}{
		{"CreateGetRoundTrip", st.testRoundTrip},
		{"DuplicateNamePerUser", st.testDuplicateName},
		{"DuplicateID", st.testDuplicateID},
		{"NotFoundAndOtherUsers", st.testNotFound},
		{"ListByUserOrderAndIsolation", st.testList},
		{"ReturnsCopies", st.testCopies},
		{"Update", st.testUpdate},
		{"UpdateConflict", st.testUpdateConflict},
		{"UpdateRenameDuplicate", st.testUpdateRenameDuplicate},
		{"Delete", st.testDelete},
		{"ListCiphertexts", st.testListCiphertexts},
		{"SwapCiphertext", st.testSwap},
		{"ConcurrentCreateSameName", st.testConcurrentCreate},
		{"ConcurrentUpdates", st.testConcurrentUpdates},
		{"CancelledContext", st.testCancelledContext},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

// suite carries the Config of one run to its tests.
type suite struct{ o Config }

// base is a fixed instant with microseconds, to check precision.
var base = time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.UTC)

func newVar(user, name string, i int) variables.Variable {
	return variables.Variable{
		ID:            ids.New(),
		UserID:        user,
		Name:          name,
		Value:         "value-" + name,
		Type:          variables.Generic,
		DefaultFields: []string{},
		CreatedAt:     base.Add(time.Duration(i) * time.Second),
		Origin:        variables.OriginUser,
	}
}

func mustCreate(t *testing.T, s variables.Store, v variables.Variable) variables.Variable {
	t.Helper()
	mustNoError(t, s.Create(context.Background(), v))
	return v
}

func (st suite) assertSame(t *testing.T, want, got variables.Variable) {
	t.Helper()
	equal(t, want.ID, got.ID)
	equal(t, want.UserID, got.UserID)
	equal(t, want.Name, got.Name)
	equal(t, want.Value, got.Value)
	equal(t, want.Type, got.Type)
	if !st.o.NoOrigin {
		equal(t, want.Origin, got.Origin)
	}
	if len(want.DefaultFields) == 0 {
		empty(t, got.DefaultFields)
	} else {
		equal(t, want.DefaultFields, got.DefaultFields)
	}
	isTrue(t, want.CreatedAt.Equal(got.CreatedAt), "CreatedAt: want %v, got %v", want.CreatedAt, got.CreatedAt)
	isTrue(t, want.UpdatedAt.Equal(got.UpdatedAt), "UpdatedAt: want %v, got %v", want.UpdatedAt, got.UpdatedAt)
}

func (st suite) testRoundTrip(t *testing.T, s variables.Store) {
	ctx := context.Background()
	cases := []variables.Variable{
		newVar("u1", "PLAIN", 0),
		func() variables.Variable {
			v := newVar("u1", "OPENAI_API_KEY", 1)
			v.Type, v.Value, v.Origin = variables.Credential, "gAAAAABtoken", variables.OriginEnv
			v.DefaultFields = []string{"OpenAI", "api_key"}
			v.UpdatedAt = base.Add(time.Hour)
			return v
		}(),
		func() variables.Variable {
			v := newVar("u1", "ünïcödé name ✓", 2)
			if st.o.ASCIINames {
				errorIs(t, s.Create(ctx, v), variables.ErrInvalidName, "a name the store cannot hold")
				v.Name = "dotted.dashed-name_09"
			}
			v.Value = "multi\nline \"quoted\" 'value' ✓"
			return v
		}(),
	}
	for _, v := range cases {
		mustCreate(t, s, v)
		got, err := s.Get(ctx, v.UserID, v.ID)
		mustNoError(t, err)
		st.assertSame(t, v, got)
		got, err = s.GetByName(ctx, v.UserID, v.Name)
		mustNoError(t, err)
		st.assertSame(t, v, got)
		isTrue(t, got.UpdatedAt.IsZero() == v.UpdatedAt.IsZero(), "zero UpdatedAt must stay zero")
	}
}

func (st suite) testDuplicateName(t *testing.T, s variables.Store) {
	ctx := context.Background()
	mustCreate(t, s, newVar("u1", "KEY", 0))
	err := s.Create(ctx, newVar("u1", "KEY", 1))
	errorIs(t, err, variables.ErrDuplicate)
	// Another user may use the same name; names are case-sensitive.
	noError(t, s.Create(ctx, newVar("u2", "KEY", 2)))
	noError(t, s.Create(ctx, newVar("u1", "key", 3)))
	list, err := s.ListByUser(ctx, "u1")
	mustNoError(t, err)
	hasLen(t, list, 2)
}

func (st suite) testDuplicateID(t *testing.T, s variables.Store) {
	v := mustCreate(t, s, newVar("u1", "A", 0))
	w := newVar("u2", "B", 1)
	if st.o.IDsPerUser {
		w.UserID = "u1"
	}
	w.ID = v.ID
	errorIs(t, s.Create(context.Background(), w), variables.ErrDuplicate)
}

func (st suite) testNotFound(t *testing.T, s variables.Store) {
	ctx := context.Background()
	v := mustCreate(t, s, newVar("u1", "A", 0))
	_, err := s.Get(ctx, "u1", ids.New())
	errorIs(t, err, variables.ErrNotFound)
	_, err = s.Get(ctx, "u2", v.ID)
	errorIs(t, err, variables.ErrNotFound, "another user's variable must look missing")
	_, err = s.GetByName(ctx, "u2", "A")
	errorIs(t, err, variables.ErrNotFound)
	_, err = s.GetByName(ctx, "u1", "a")
	errorIs(t, err, variables.ErrNotFound)
	list, err := s.ListByUser(ctx, "nobody")
	mustNoError(t, err)
	notNil(t, list)
	empty(t, list)
}

func (st suite) testList(t *testing.T, s variables.Store) {
	ctx := context.Background()
	// Inserted out of order; the same CreatedAt is ordered by ID.
	c := mustCreate(t, s, newVar("u1", "C", 2))
	a := mustCreate(t, s, newVar("u1", "A", 0))
	b1 := newVar("u1", "B1", 1)
	b2 := newVar("u1", "B2", 1)
	if b1.ID > b2.ID {
		b1.ID, b2.ID = b2.ID, b1.ID
	}
	mustCreate(t, s, b2)
	mustCreate(t, s, b1)
	mustCreate(t, s, newVar("u2", "X", 0))
	list, err := s.ListByUser(ctx, "u1")
	mustNoError(t, err)
	var names []string
	for _, v := range list {
		names = append(names, v.Name)
		equal(t, "u1", v.UserID)
	}
	equal(t, []string{"A", "B1", "B2", "C"}, names)
	st.assertSame(t, a, list[0])
	st.assertSame(t, c, list[3])
}

func (st suite) testCopies(t *testing.T, s variables.Store) {
	ctx := context.Background()
	v := newVar("u1", "A", 0)
	v.DefaultFields = []string{"f1", "f2"}
	mustCreate(t, s, v)
	v.DefaultFields[0] = "changed after Create"
	got, err := s.Get(ctx, "u1", v.ID)
	mustNoError(t, err)
	got.DefaultFields[1] = "changed after Get"
	list, err := s.ListByUser(ctx, "u1")
	mustNoError(t, err)
	list[0].DefaultFields[0] = "changed after List"
	again, err := s.Get(ctx, "u1", v.ID)
	mustNoError(t, err)
	equal(t, []string{"f1", "f2"}, again.DefaultFields)
}

func (st suite) testUpdate(t *testing.T, s variables.Store) {
	ctx := context.Background()
	prev := mustCreate(t, s, newVar("u1", "A", 0))
	next := prev
	next.Name, next.Value, next.Type = "A2", "gAAAAAnew", variables.Credential
	next.DefaultFields = []string{"api_key"}
	next.UpdatedAt = base.Add(time.Minute)
	next.Origin = variables.OriginEnv
	// Fields that never change, even if the caller changes them.
	next.CreatedAt = base.Add(time.Hour)
	mustNoError(t, s.Update(ctx, prev, next))
	got, err := s.Get(ctx, "u1", prev.ID)
	mustNoError(t, err)
	want := next
	want.CreatedAt = prev.CreatedAt
	st.assertSame(t, want, got)
	_, err = s.GetByName(ctx, "u1", "A")
	errorIs(t, err, variables.ErrNotFound, "old name is free after a rename")

	missing := newVar("u1", "M", 0)
	errorIs(t, s.Update(ctx, missing, missing), variables.ErrNotFound)
	foreign := got
	foreign.UserID = "u2"
	errorIs(t, s.Update(ctx, got, foreign), variables.ErrNotFound, "another user's variable must look missing")
}

func (st suite) testUpdateConflict(t *testing.T, s variables.Store) {
	ctx := context.Background()
	prev := mustCreate(t, s, newVar("u1", "A", 0))
	edited := prev
	edited.Value = "edited"
	mustNoError(t, s.Update(ctx, prev, edited))

	stale := prev
	stale.Value = "stale write"
	errorIs(t, s.Update(ctx, prev, stale), variables.ErrConflict, "value changed since prev was read")

	imported := edited
	imported.Origin = variables.OriginEnv
	mustNoError(t, s.Update(ctx, edited, imported))
	if !st.o.NoOrigin {
		staleOrigin := edited // same value, origin changed meanwhile
		staleOrigin.Name = "B"
		errorIs(t, s.Update(ctx, edited, staleOrigin), variables.ErrConflict, "origin changed since prev was read")
	}

	touched := imported // same value and origin, updated meanwhile
	touched.DefaultFields = []string{"f"}
	touched.UpdatedAt = base.Add(time.Minute)
	mustNoError(t, s.Update(ctx, imported, touched))
	staleUpdatedAt := imported
	staleUpdatedAt.Name = "C"
	errorIs(t, s.Update(ctx, imported, staleUpdatedAt), variables.ErrConflict, "updated since prev was read")
	again := touched
	again.UpdatedAt = base.Add(2 * time.Minute)
	mustNoError(t, s.Update(ctx, touched, again), "a set UpdatedAt matches itself")

	got, err := s.Get(ctx, "u1", prev.ID)
	mustNoError(t, err)
	st.assertSame(t, again, got)
}

func (st suite) testUpdateRenameDuplicate(t *testing.T, s variables.Store) {
	ctx := context.Background()
	mustCreate(t, s, newVar("u1", "A", 0))
	b := mustCreate(t, s, newVar("u1", "B", 1))
	mustCreate(t, s, newVar("u2", "C", 2))
	next := b
	next.Name = "A"
	errorIs(t, s.Update(ctx, b, next), variables.ErrDuplicate)
	next.Name = "C" // only u2 has C
	noError(t, s.Update(ctx, b, next))
}

func (st suite) testDelete(t *testing.T, s variables.Store) {
	ctx := context.Background()
	v := mustCreate(t, s, newVar("u1", "A", 0))
	errorIs(t, s.Delete(ctx, "u2", v.ID), variables.ErrNotFound, "another user cannot delete it")
	mustNoError(t, s.Delete(ctx, "u1", v.ID))
	errorIs(t, s.Delete(ctx, "u1", v.ID), variables.ErrNotFound)
	_, err := s.Get(ctx, "u1", v.ID)
	errorIs(t, err, variables.ErrNotFound)
	// The name is free again.
	noError(t, s.Create(ctx, newVar("u1", "A", 1)))
}

func (st suite) testListCiphertexts(t *testing.T, s variables.Store) {
	ctx := context.Background()
	var want []secrets.Ciphertext
	for i := range 7 {
		v := newVar(fmt.Sprintf("user-%d", i%3), fmt.Sprintf("V%d", i), i)
		switch i % 3 {
		case 0, 1: // Credential tokens, and a Generic token written by old Langflow
			v.Value = fmt.Sprintf("gAAAAAtoken-%d", i)
			if i%3 == 0 {
				v.Type = variables.Credential
			}
			want = append(want, secrets.Ciphertext{ID: v.ID, Token: v.Value})
		case 2: // plaintext: not listed
			v.Value = fmt.Sprintf("GAAAAA plaintext %d", i)
		}
		mustCreate(t, s, v)
	}
	slices.SortFunc(want, func(a, b secrets.Ciphertext) int { return strings.Compare(a.ID, b.ID) })

	all, err := s.ListCiphertexts(ctx, "", 100)
	mustNoError(t, err)
	equal(t, want, all)

	var paged []secrets.Ciphertext
	after := ""
	for range 10 {
		page, err := s.ListCiphertexts(ctx, after, 2)
		mustNoError(t, err)
		isTrue(t, len(page) <= 2, "page of %d, limit 2", len(page))
		if len(page) == 0 {
			break
		}
		paged = append(paged, page...)
		after = page[len(page)-1].ID
	}
	equal(t, want, paged, "pages of 2 must add up to the whole list")
}

func (st suite) testSwap(t *testing.T, s variables.Store) {
	ctx := context.Background()
	v := newVar("u1", "A", 0)
	v.Type, v.Value, v.Origin = variables.Credential, "gAAAAAold", variables.OriginEnv
	v.UpdatedAt = base.Add(time.Minute)
	mustCreate(t, s, v)

	ok, err := s.SwapCiphertext(ctx, v.ID, "gAAAAAwrong", "gAAAAAnew")
	mustNoError(t, err)
	isFalse(t, ok, "swap with a stale token must not apply")

	ok, err = s.SwapCiphertext(ctx, v.ID, "gAAAAAold", "gAAAAAnew")
	mustNoError(t, err)
	isTrue(t, ok)
	got, err := s.Get(ctx, "u1", v.ID)
	mustNoError(t, err)
	want := v
	want.Value = "gAAAAAnew"
	st.assertSame(t, want, got) // timestamps and origin untouched

	ok, err = s.SwapCiphertext(ctx, ids.New(), "gAAAAAold", "gAAAAAx")
	mustNoError(t, err)
	isFalse(t, ok, "missing id")
}

func (st suite) testConcurrentCreate(t *testing.T, s variables.Store) {
	ctx := context.Background()
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { errs[i] = s.Create(ctx, newVar("u1", "SAME", i)) })
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		if err == nil {
			won++
		} else {
			errorIs(t, err, variables.ErrDuplicate)
		}
	}
	equal(t, 1, won, "exactly one concurrent create of a name succeeds")
}

func (st suite) testConcurrentUpdates(t *testing.T, s variables.Store) {
	ctx := context.Background()
	prev := mustCreate(t, s, newVar("u1", "A", 0))
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			next := prev
			next.Value = fmt.Sprintf("writer-%d", i)
			errs[i] = s.Update(ctx, prev, next)
		})
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		if err == nil {
			won++
		} else if !errors.Is(err, variables.ErrConflict) {
			t.Errorf("concurrent update: %v (want nil or ErrConflict)", err)
		}
	}
	equal(t, 1, won, "exactly one of several updates from the same prev succeeds")
}

// testCancelledContext: with ctx already cancelled, every method fails with
// an error that matches context.Canceled and changes nothing, although each
// call would succeed otherwise.
func (st suite) testCancelledContext(t *testing.T, s variables.Store) {
	v := mustCreate(t, s, newVar("u1", "A", 0))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	next := v
	next.Name = "B"
	calls := map[string]func() error{
		"Create":     func() error { return s.Create(ctx, newVar("u1", "C", 1)) },
		"Get":        func() error { _, err := s.Get(ctx, "u1", v.ID); return err },
		"GetByName":  func() error { _, err := s.GetByName(ctx, "u1", "A"); return err },
		"ListByUser": func() error { _, err := s.ListByUser(ctx, "u1"); return err },
		"Update":     func() error { return s.Update(ctx, v, next) },
		"Delete":     func() error { return s.Delete(ctx, "u1", v.ID) },
		"ListCiphertexts": func() error {
			_, err := s.ListCiphertexts(ctx, "", 10)
			return err
		},
		"SwapCiphertext": func() error {
			_, err := s.SwapCiphertext(ctx, v.ID, "value-A", "gAAAAAnew")
			return err
		},
	}
	for name, call := range calls {
		errorIs(t, call(), context.Canceled, name)
	}
	list, err := s.ListByUser(context.Background(), "u1")
	mustNoError(t, err)
	mustLen(t, list, 1, "nothing created or deleted")
	equal(t, "A", list[0].Name)
	equal(t, "value-A", list[0].Value)
}
