package cli

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/keyflow-dev/keyflow/secrets"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mapStore is a CiphertextStore over a map; afterList runs after each
// ListCiphertexts call, outside the lock.
type mapStore struct {
	mu        sync.Mutex
	tokens    map[string]string
	lists     int
	afterList func(calls int)
}

func (s *mapStore) ListCiphertexts(_ context.Context, after string, limit int) ([]secrets.Ciphertext, error) {
	s.mu.Lock()
	var out []secrets.Ciphertext
	for id, tok := range s.tokens {
		if id > after {
			out = append(out, secrets.Ciphertext{ID: id, Token: tok})
		}
	}
	s.lists++
	calls := s.lists
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b secrets.Ciphertext) int { return strings.Compare(a.ID, b.ID) })
	if len(out) > limit {
		out = out[:limit]
	}
	if s.afterList != nil {
		s.afterList(calls)
	}
	return out, nil
}

func (s *mapStore) SwapCiphertext(_ context.Context, id, oldToken, newToken string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tokens[id] != oldToken {
		return false, nil
	}
	s.tokens[id] = newToken
	return true, nil
}

// TestReencryptAllVerifies: a value written under the old secret behind
// the first pass's back (here: into a row the pass has already visited, by
// a writer that holds no lock) is found by the verification pass, so the
// rotation does not end while anything is left under the old secret; a
// writer that never stops makes it fail instead of retiring the old secret.
// (A write landing on a row the final pass has just checked is beyond any
// pass: that is what the database-use lock is for.)
func TestReencryptAllVerifies(t *testing.T) {
	oldK, err := secrets.NewKeyring("old-secret-of-more-than-32-characters")
	require.NoError(t, err)
	newSecret := secrets.GenerateSecret()
	both, err := secrets.NewKeyring(newSecret, "old-secret-of-more-than-32-characters")
	require.NoError(t, err)
	newOnly, err := secrets.NewKeyring(newSecret)
	require.NoError(t, err)
	underOld := func(v string) string {
		tok, err := oldK.Encrypt(v)
		require.NoError(t, err)
		return tok
	}
	s := &mapStore{tokens: map[string]string{}}
	for i := range 10 {
		s.tokens[fmt.Sprintf("id-%02d", i)] = underOld("v")
	}
	late := underOld("late")
	s.afterList = func(calls int) {
		if calls == 2 { // the first pass's second batch: id-00 is behind it
			s.mu.Lock()
			s.tokens["id-00"] = late
			s.mu.Unlock()
		}
	}
	var progress bytes.Buffer
	rep, err := reencryptAll(context.Background(), both, s, 4, &progress)
	require.NoError(t, err)
	assert.Equal(t, 11, rep.Rotated, "ten, then the late one")
	assert.Equal(t, 0, rep.Current)
	assert.Contains(t, progress.String(), "pass 3:", "pass 2 rotated the late value, pass 3 verified")
	for id, tok := range s.tokens {
		_, err := newOnly.Decrypt(tok)
		assert.NoError(t, err, id)
	}

	s.afterList = func(int) { // a writer that keeps ahead of every pass
		s.mu.Lock()
		s.tokens["id-09"] = underOld("again")
		s.mu.Unlock()
	}
	_, err = reencryptAll(context.Background(), both, s, 4, &progress)
	require.ErrorContains(t, err, "values keep changing")
}
