package secrets

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// memStore is an in-test CiphertextStore with fault injection.
type memStore struct {
	mu     sync.Mutex
	values map[string]string
	lists  int // ListCiphertexts calls so far
	swaps  int // SwapCiphertext calls so far

	failList int                         // fail the n-th list call (1-based); 0: never
	failSwap int                         // fail the n-th swap call (1-based); 0: never
	onList   func(batch []Ciphertext)    // runs after listing, before the caller sees the batch
	onSwap   func(id string)             // runs before each swap, without the lock
	list     func(after string) []string // overrides the IDs listed (for misbehaving stores)
}

var errInjected = errors.New("injected store failure")

func newMemStore(values map[string]string) *memStore {
	return &memStore{values: values}
}

func (s *memStore) ListCiphertexts(_ context.Context, after string, limit int) ([]Ciphertext, error) {
	s.mu.Lock()
	s.lists++
	if s.lists == s.failList {
		s.mu.Unlock()
		return nil, errInjected
	}
	var ids []string
	if s.list != nil {
		ids = s.list(after)
	} else {
		for id := range s.values {
			if after == "" || id > after {
				ids = append(ids, id)
			}
		}
		slices.Sort(ids)
	}
	if len(ids) > limit {
		ids = ids[:limit]
	}
	batch := make([]Ciphertext, len(ids))
	for i, id := range ids {
		batch[i] = Ciphertext{ID: id, Token: s.values[id]}
	}
	s.mu.Unlock()
	if s.onList != nil {
		s.onList(batch)
	}
	return batch, nil
}

func (s *memStore) SwapCiphertext(_ context.Context, id, oldToken, newToken string) (bool, error) {
	if s.onSwap != nil {
		s.onSwap(id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.swaps++
	if s.swaps == s.failSwap {
		return false, errInjected
	}
	cur, ok := s.values[id]
	if !ok || cur != oldToken {
		return false, nil
	}
	s.values[id] = newToken
	return true, nil
}

func (s *memStore) snapshot() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]string, len(s.values))
	for k, v := range s.values {
		m[k] = v
	}
	return m
}

// rotationFixture: 10 values under the old secret, 3 under the new one,
// 2 under Langflow's legacy derivation of the old short secret, and 2 that
// no key opens.
type rotationFixture struct {
	oldKR, newKR, both *Keyring
	plain              map[string]string // ID → plaintext, for values that open
	initial            map[string]string
}

const (
	fixtureOld = testShort   // Langflow ≤ 1.10.0 short secret: two derivations
	fixtureNew = testSecretA // a generated 43-character secret
)

func newRotationFixture(t testing.TB) *rotationFixture {
	f := &rotationFixture{
		oldKR:   mustKeyring(t, fixtureOld),
		newKR:   mustKeyring(t, fixtureNew),
		both:    mustKeyring(t, fixtureNew, fixtureOld),
		plain:   map[string]string{},
		initial: map[string]string{},
	}
	add := func(id, plain, tok string) {
		f.initial[id] = tok
		if plain != "" {
			f.plain[id] = plain
		}
	}
	for i := range 10 {
		tok, err := f.oldKR.Encrypt(fmt.Sprint("old value ", i))
		require.NoError(t, err)
		add(fmt.Sprintf("id-%02d", i), fmt.Sprint("old value ", i), tok)
	}
	for i := 10; i < 13; i++ {
		tok, err := f.newKR.Encrypt(fmt.Sprint("new value ", i))
		require.NoError(t, err)
		add(fmt.Sprintf("id-%02d", i), fmt.Sprint("new value ", i), tok)
	}
	for i := 13; i < 15; i++ {
		add(fmt.Sprintf("id-%02d", i), fmt.Sprint("legacy value ", i), seal(t, f.oldKR.keys[1], fmt.Sprint("legacy value ", i), 1600000000))
	}
	foreign, err := mustKeyring(t, testSecretB).Encrypt("foreign")
	require.NoError(t, err)
	add("id-15", "", foreign)
	add("id-16", "", "plaintext, never encrypted")
	return f
}

func (f *rotationFixture) store() *memStore {
	return newMemStore(f.snapshot())
}

func (f *rotationFixture) snapshot() map[string]string {
	m := make(map[string]string, len(f.initial))
	for k, v := range f.initial {
		m[k] = v
	}
	return m
}

// assertAllOpen checks that every value that opened before still opens with
// k and gives the same plaintext.
func (f *rotationFixture) assertAllOpen(t testing.TB, k *Keyring, values map[string]string) {
	t.Helper()
	for id, want := range f.plain {
		got, err := k.Decrypt(values[id])
		if assert.NoError(t, err, id) {
			assert.Equal(t, want, got, id)
		}
	}
}

func TestReencryptCounts(t *testing.T) {
	for _, batch := range []int{0, 1, 2, 3, 16, 17, 100} {
		t.Run(fmt.Sprint("batch ", batch), func(t *testing.T) {
			f := newRotationFixture(t)
			s := f.store()
			var progress []ReencryptReport
			rep, err := Reencrypt(context.Background(), f.both, s, ReencryptOptions{
				BatchSize: batch,
				Progress:  func(r ReencryptReport) { progress = append(progress, r) },
			})
			require.NoError(t, err)
			assert.Equal(t, ReencryptReport{Rotated: 12, Current: 3, Failed: 2, LastID: "id-16"}, rep)
			size := batch
			if size == 0 {
				size = DefaultReencryptBatchSize
			}
			assert.Len(t, progress, (17+size-1)/size, "one progress call per non-empty batch")
			assert.Equal(t, rep, progress[len(progress)-1])

			after := s.snapshot()
			f.assertAllOpen(t, f.newKR, after) // the old secret can go now
			for id, tok := range f.initial {
				if _, opens := f.plain[id]; !opens {
					assert.Equal(t, tok, after[id], "values that do not open are left alone")
				}
			}
			for i := 13; i < 15; i++ {
				id := fmt.Sprintf("id-%02d", i)
				assert.Equal(t, uint64(1600000000), tokenTime(after[id]), "timestamps are kept")
			}

			// Idempotent: a second run has nothing left to rotate.
			rep2, err := Reencrypt(context.Background(), f.both, s, ReencryptOptions{BatchSize: batch})
			require.NoError(t, err)
			assert.Equal(t, ReencryptReport{Current: 15, Failed: 2, LastID: "id-16"}, rep2)
			assert.Equal(t, after, s.snapshot(), "a second run changes nothing")
		})
	}
}

// An interruption at any point — any list call, any swap — loses nothing:
// every value opens with the new keyring that still lists the old secret,
// and a new run (from scratch or from LastID) finishes the job.
func TestReencryptInterruptedAnywhere(t *testing.T) {
	f := newRotationFixture(t)
	faults := []struct {
		call  string
		calls int // how many such calls a run makes
		fail  func(s *memStore, n int)
	}{
		{"swap", 12, func(s *memStore, n int) { s.failSwap = n }},
		{"list", 6, func(s *memStore, n int) { s.failList = n }}, // 17 values in batches of 4: 5 lists + 1 empty
	}
	for _, resumeFromLastID := range []bool{false, true} {
		for _, fault := range faults {
			for n := 1; n <= fault.calls; n++ {
				t.Run(fmt.Sprintf("%s %d/resume from LastID %v", fault.call, n, resumeFromLastID), func(t *testing.T) {
					s := f.store()
					fault.fail(s, n)
					rep, err := Reencrypt(context.Background(), f.both, s, ReencryptOptions{BatchSize: 4})
					require.ErrorIs(t, err, errInjected)
					if fault.call == "swap" {
						assert.Equal(t, n-1, rep.Rotated, "swaps done before the failure are counted")
					}
					f.assertAllOpen(t, f.both, s.snapshot())

					opts := ReencryptOptions{BatchSize: 4}
					if resumeFromLastID {
						opts.After = rep.LastID
					}
					rep2, err := Reencrypt(context.Background(), f.both, s, opts)
					require.NoError(t, err)
					assert.Equal(t, 12, rep.Rotated+rep2.Rotated, "every value rotated exactly once")
					f.assertAllOpen(t, f.newKR, s.snapshot())
				})
			}
		}
	}
}

func TestReencryptCancelled(t *testing.T) {
	f := newRotationFixture(t)
	s := f.store()
	ctx, cancel := context.WithCancel(context.Background())
	s.onSwap = func(string) {
		if s.swaps == 4 { // cancel mid-batch
			cancel()
		}
	}
	rep, err := Reencrypt(ctx, f.both, s, ReencryptOptions{BatchSize: 10})
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, 5, rep.Rotated)
	f.assertAllOpen(t, f.both, s.snapshot())

	_, err = Reencrypt(ctx, f.both, s, ReencryptOptions{})
	require.ErrorIs(t, err, context.Canceled, "a cancelled context does nothing")
}

// A value changed between list and swap is not overwritten.
func TestReencryptSkipsValuesChangedMeanwhile(t *testing.T) {
	f := newRotationFixture(t)
	s := f.store()
	concurrent, err := f.newKR.Encrypt("written meanwhile")
	require.NoError(t, err)
	s.onList = func([]Ciphertext) {
		s.mu.Lock()
		s.values["id-03"] = concurrent // a user edits the variable
		delete(s.values, "id-04")      // and deletes another
		s.mu.Unlock()
	}
	rep, err := Reencrypt(context.Background(), f.both, s, ReencryptOptions{})
	require.NoError(t, err)
	assert.Equal(t, ReencryptReport{Rotated: 10, Current: 3, Failed: 2, Skipped: 2, LastID: "id-16"}, rep)
	after := s.snapshot()
	assert.Equal(t, concurrent, after["id-03"])
	_, exists := after["id-04"]
	assert.False(t, exists, "a deleted value is not recreated")
}

func TestReencryptMisbehavingStore(t *testing.T) {
	f := newRotationFixture(t)
	ids := slices.Sorted(func(yield func(string) bool) {
		for id := range f.initial {
			if !yield(id) {
				return
			}
		}
	})
	tests := map[string]func(after string) []string{
		"ignores after":       func(string) []string { return ids },
		"includes the cursor": func(after string) []string { i, _ := slices.BinarySearch(ids, after); return ids[i:] },
	}
	for name, list := range tests {
		t.Run(name, func(t *testing.T) {
			s := f.store()
			s.list = list
			_, err := Reencrypt(context.Background(), f.both, s, ReencryptOptions{BatchSize: 5})
			require.Error(t, err, "an error, not an endless loop")
			f.assertAllOpen(t, f.both, s.snapshot())
		})
	}
}

func TestReencryptBadArguments(t *testing.T) {
	f := newRotationFixture(t)
	_, err := Reencrypt(context.Background(), nil, f.store(), ReencryptOptions{})
	assert.ErrorIs(t, err, ErrNoKeyring)
	_, err = Reencrypt(context.Background(), f.both, nil, ReencryptOptions{})
	assert.Error(t, err)
	assert.NotPanics(t, func() {
		_, err = Reencrypt(context.Background(), f.both, (*memStore)(nil), ReencryptOptions{})
	})
	assert.ErrorContains(t, err, "nil store", "a typed nil is refused like a nil")
	_, err = Reencrypt(context.Background(), f.both, f.store(), ReencryptOptions{BatchSize: -1})
	assert.Error(t, err)
}

// Errors name IDs, never tokens or plaintexts.
func TestReencryptErrorsHoldNoValues(t *testing.T) {
	f := newRotationFixture(t)
	s := f.store()
	s.failSwap = 1
	_, err := Reencrypt(context.Background(), f.both, s, ReencryptOptions{})
	require.Error(t, err)
	for _, tok := range f.initial {
		assert.NotContains(t, err.Error(), tok)
	}
	for _, p := range f.plain {
		assert.NotContains(t, err.Error(), p)
	}
}
