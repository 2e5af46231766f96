package faultstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/apikey/storetest"
	"github.com/keyflow-dev/keyflow/keyflowtest/faultstore"
	"github.com/keyflow-dev/keyflow/variables"
	varstoretest "github.com/keyflow-dev/keyflow/variables/storetest"
)

// draw records, for n calls of op, whether each failed.
func draw(inj *faultstore.Injector, s *faultstore.KeyStore, n int) []bool {
	out := make([]bool, n)
	for i := range out {
		_, err := s.ListByUser(context.Background(), "u")
		out[i] = errors.Is(err, faultstore.ErrInjected)
	}
	return out
}

func TestInjector(t *testing.T) {
	newStore := func(seed uint64) (*faultstore.Injector, *faultstore.KeyStore) {
		inj := faultstore.New(seed)
		return inj, faultstore.Keys(apikey.NewMemoryStore(), inj)
	}

	t.Run("nothing injected by default", func(t *testing.T) {
		inj, s := newStore(1)
		assert.NotContains(t, draw(inj, s, 100), true)
		assert.Equal(t, 100, inj.Calls())
		assert.Zero(t, inj.Failures())
	})
	t.Run("a seeded rate is deterministic and about right", func(t *testing.T) {
		inj1, s1 := newStore(42)
		inj2, s2 := newStore(42)
		inj1.SetFailRate(0.2)
		inj2.SetFailRate(0.2)
		a, b := draw(inj1, s1, 2000), draw(inj2, s2, 2000)
		assert.Equal(t, a, b, "same seed, same sequence")
		assert.InDelta(t, 400, inj1.Failures(), 80)
		inj3, s3 := newStore(43)
		inj3.SetFailRate(0.2)
		assert.NotEqual(t, a, draw(inj3, s3, 2000), "another seed, another sequence")
	})
	t.Run("fail the next N", func(t *testing.T) {
		inj, s := newStore(1)
		inj.FailNext(3)
		assert.Equal(t, []bool{true, true, true, false, false}, draw(inj, s, 5))
	})
	t.Run("a function decides per call, and Only selects operations", func(t *testing.T) {
		inj, s := newStore(1)
		cause := errors.New("disk on fire")
		inj.SetDecide(func(op string) error {
			if op == "ByHash" {
				return cause
			}
			return nil
		})
		_, err := s.ListByUser(context.Background(), "u")
		require.NoError(t, err)
		_, err = s.ByHash(context.Background(), apikey.HashKey("x"))
		assert.ErrorIs(t, err, faultstore.ErrInjected)
		assert.ErrorIs(t, err, cause)

		inj.Reset()
		inj.Only("AddUsage")
		inj.SetFailRate(1)
		_, err = s.ByHash(context.Background(), apikey.HashKey("x"))
		assert.ErrorIs(t, err, apikey.ErrNotFound, "not selected: passes through")
		assert.ErrorIs(t, s.AddUsage(context.Background(), nil), faultstore.ErrInjected)
	})
	t.Run("fail before: the call does not run; fail after: it does", func(t *testing.T) {
		inj, s := newStore(1)
		rec := apikey.Record{ID: "00000000-0000-4000-8000-000000000001", UserID: "u", Hash: apikey.HashKey("k1"), Active: true, CreatedAt: time.Now().UTC().Truncate(time.Microsecond)}
		inj.FailNext(1)
		require.ErrorIs(t, s.Insert(context.Background(), rec), faultstore.ErrInjected)
		recs, err := s.ListByUser(context.Background(), "u")
		require.NoError(t, err)
		assert.Empty(t, recs)

		inj.SetFailAfter(true)
		inj.FailNext(1)
		require.ErrorIs(t, s.Insert(context.Background(), rec), faultstore.ErrInjected)
		recs, err = s.ListByUser(context.Background(), "u")
		require.NoError(t, err)
		assert.Len(t, recs, 1, "the write happened, the reply was lost")
	})
	t.Run("delays honour the context", func(t *testing.T) {
		inj, s := newStore(1)
		inj.SetDelay(1, time.Hour)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := s.ByHash(ctx, apikey.HashKey("x"))
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Less(t, time.Since(start), 5*time.Second)
	})
}

// With no fault configured, the wrappers are transparent: they pass the
// stores' conformance suites.
func TestWrappersConform(t *testing.T) {
	t.Run("apikey", func(t *testing.T) {
		storetest.Run(t, func(*testing.T) apikey.Store {
			return faultstore.Keys(apikey.NewMemoryStore(), faultstore.New(1))
		})
	})
	t.Run("variables", func(t *testing.T) {
		varstoretest.Run(t, func(*testing.T) variables.Store {
			return faultstore.Variables(variables.NewMemoryStore(), faultstore.New(1))
		})
	})
}
