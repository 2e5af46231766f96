// Package storetest is the conformance suite of audit.Store: every store
// (the memory store, audit/sqlstore on SQLite and PostgreSQL, a third
// party's) runs it.
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) audit.Store { return newStore(t) })
//	}
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/audit"
)

// base is the time of the suite's first event.
var base = time.Date(2026, 5, 1, 10, 0, 0, 123456000, time.UTC)

// event returns a valid, prepared event number i, i minutes after base.
func event(t testing.TB, log *audit.Log, i int, action audit.Action, actor string) audit.Event {
	t.Helper()
	e, err := log.Prepare(audit.Event{
		Time:      base.Add(time.Duration(i) * time.Minute),
		Action:    action,
		Actor:     audit.Actor{UserID: actor, Username: "name-" + actor, KeyID: "key-" + actor, Session: "cli"},
		Target:    audit.Target{Type: "api_key", ID: fmt.Sprintf("target-%d", i), Name: "naïve “name” 🔑", OwnerID: "owner"},
		ClientIP:  "2001:db8::1",
		UserAgent: "test/1.0",
		Outcome:   audit.Success,
		Details:   map[string]string{"prefix": "sk-abcde", "n": fmt.Sprint(i)},
	})
	require.NoError(t, err)
	return e
}

// Run runs the conformance suite; newStore returns a new, empty store for
// each subtest.
func Run(t *testing.T, newStore func(t *testing.T) audit.Store) {
	log, err := audit.New(audit.Config{})
	require.NoError(t, err)
	ctx := context.Background()

	t.Run("EmptyHead", func(t *testing.T) {
		s := newStore(t)
		h, err := s.Head(ctx)
		require.NoError(t, err)
		assert.Equal(t, audit.Head{}, h)
		r, err := audit.Verify(ctx, s)
		require.NoError(t, err)
		assert.Zero(t, r.Events)
	})

	t.Run("AppendChains", func(t *testing.T) {
		s := newStore(t)
		var prev audit.Event
		for i := range 5 {
			in := event(t, log, i, audit.KeyCreated, "u1")
			got, err := s.Append(ctx, in)
			require.NoError(t, err)
			assert.EqualValues(t, i+1, got.Seq)
			assert.Equal(t, prev.Hash, got.PrevHash)
			assert.Equal(t, audit.ComputeHash(got), got.Hash)
			want := in
			want.Seq, want.PrevHash, want.Hash = got.Seq, got.PrevHash, got.Hash
			assert.Equal(t, want, got, "stored as given, times in UTC microseconds")
			prev = got
		}
		h, err := s.Head(ctx)
		require.NoError(t, err)
		assert.Equal(t, audit.Head{Last: audit.Link{Seq: 5, Hash: prev.Hash}}, h)
		r, err := audit.Verify(ctx, s)
		require.NoError(t, err)
		assert.Equal(t, 5, r.Events)
		assert.EqualValues(t, 1, r.First)
	})

	t.Run("RoundTrip", func(t *testing.T) {
		s := newStore(t)
		in := event(t, log, 0, audit.LoginFailed, "")
		in.Outcome, in.Reason, in.Details = audit.Failure, "invalid password", nil
		in.Actor = audit.Actor{Username: "mallory"}
		_, err := s.Append(ctx, in)
		require.NoError(t, err)
		var walked []audit.Event
		require.NoError(t, s.Walk(ctx, 0, func(e audit.Event) error { walked = append(walked, e); return nil }))
		require.Len(t, walked, 1)
		listed, err := s.List(ctx, audit.Filter{Limit: 10})
		require.NoError(t, err)
		require.Len(t, listed, 1)
		assert.Equal(t, walked[0], listed[0])
		assert.Nil(t, walked[0].Details, "no details read back as nil")
		assert.Equal(t, in.Time, walked[0].Time)
		assert.Equal(t, time.UTC, walked[0].Time.Location())
		assert.Equal(t, audit.ComputeHash(walked[0]), walked[0].Hash)
	})

	t.Run("NoSharedMemory", func(t *testing.T) {
		s := newStore(t)
		in := event(t, log, 0, audit.KeyCreated, "u1")
		got, err := s.Append(ctx, in)
		require.NoError(t, err)
		in.Details["n"], got.Details["n"] = "changed", "changed"
		listed, err := s.List(ctx, audit.Filter{Limit: 1})
		require.NoError(t, err)
		listed[0].Details["n"] = "changed"
		_, err = audit.Verify(ctx, s)
		require.NoError(t, err)
	})

	t.Run("Walk", func(t *testing.T) {
		s := newStore(t)
		for i := range 6 {
			_, err := s.Append(ctx, event(t, log, i, audit.KeyCreated, "u1"))
			require.NoError(t, err)
		}
		var seqs []int64
		require.NoError(t, s.Walk(ctx, 2, func(e audit.Event) error { seqs = append(seqs, e.Seq); return nil }))
		assert.Equal(t, []int64{3, 4, 5, 6}, seqs)
		stop := errors.New("stop")
		n := 0
		err := s.Walk(ctx, 0, func(audit.Event) error { n++; return stop })
		assert.ErrorIs(t, err, stop)
		assert.Equal(t, 1, n)
	})

	t.Run("ListFilters", func(t *testing.T) {
		s := newStore(t)
		actions := []audit.Action{audit.KeyCreated, audit.KeyDeleted, audit.Login}
		for i := range 12 {
			_, err := s.Append(ctx, event(t, log, i, actions[i%3], fmt.Sprintf("u%d", i%2)))
			require.NoError(t, err)
		}
		seqs := func(f audit.Filter) []int64 {
			t.Helper()
			if f.Limit == 0 {
				f.Limit = 100
			}
			evs, err := s.List(ctx, f)
			require.NoError(t, err)
			out := []int64{}
			for _, e := range evs {
				out = append(out, e.Seq)
			}
			return out
		}
		for _, tc := range []struct {
			name string
			f    audit.Filter
			want []int64
		}{
			{"all, newest first", audit.Filter{}, []int64{12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1}},
			{"limit", audit.Filter{Limit: 3}, []int64{12, 11, 10}},
			{"cursor", audit.Filter{Before: 10, Limit: 3}, []int64{9, 8, 7}},
			{"action", audit.Filter{Actions: []audit.Action{audit.Login}}, []int64{12, 9, 6, 3}},
			{"actions", audit.Filter{Actions: []audit.Action{audit.Login, audit.KeyDeleted}}, []int64{12, 11, 9, 8, 6, 5, 3, 2}},
			{"actor", audit.Filter{ActorID: "u1"}, []int64{12, 10, 8, 6, 4, 2}},
			{"actor and action", audit.Filter{ActorID: "u1", Actions: []audit.Action{audit.KeyCreated}}, []int64{10, 4}},
			{"since", audit.Filter{Since: base.Add(9 * time.Minute)}, []int64{12, 11, 10}},
			{"until", audit.Filter{Until: base.Add(2 * time.Minute)}, []int64{2, 1}},
			{"since and until", audit.Filter{Since: base.Add(3 * time.Minute), Until: base.Add(5 * time.Minute)}, []int64{5, 4}},
			{"nothing", audit.Filter{ActorID: "nobody"}, []int64{}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				assert.Equal(t, tc.want, seqs(tc.f))
			})
		}
	})

	t.Run("Prune", func(t *testing.T) {
		s := newStore(t)
		var evs []audit.Event
		for i := range 6 {
			e, err := s.Append(ctx, event(t, log, i, audit.KeyCreated, "u1"))
			require.NoError(t, err)
			evs = append(evs, e)
		}
		n, err := s.Prune(ctx, base.Add(-time.Hour))
		require.NoError(t, err)
		assert.Zero(t, n, "nothing that old")
		n, err = s.Prune(ctx, base.Add(2*time.Minute+time.Second))
		require.NoError(t, err)
		assert.EqualValues(t, 3, n)
		h, err := s.Head(ctx)
		require.NoError(t, err)
		assert.Equal(t, audit.Link{Seq: 3, Hash: evs[2].Hash}, h.Anchor)
		assert.Equal(t, audit.Link{Seq: 6, Hash: evs[5].Hash}, h.Last)
		r, err := audit.Verify(ctx, s)
		require.NoError(t, err, "verifiable from the anchor")
		assert.Equal(t, 3, r.Events)
		assert.EqualValues(t, 4, r.First)

		// Everything pruned: the chain goes on from the anchor.
		n, err = s.Prune(ctx, base.Add(time.Hour))
		require.NoError(t, err)
		assert.EqualValues(t, 3, n)
		h, err = s.Head(ctx)
		require.NoError(t, err)
		assert.Equal(t, h.Last, h.Anchor)
		next, err := s.Append(ctx, event(t, log, 100, audit.KeyDeleted, "u1"))
		require.NoError(t, err)
		assert.EqualValues(t, 7, next.Seq)
		assert.Equal(t, evs[5].Hash, next.PrevHash)
		_, err = audit.Verify(ctx, s)
		require.NoError(t, err)
	})

	t.Run("ConcurrentAppends", func(t *testing.T) {
		s := newStore(t)
		const workers, each = 6, 15
		var wg sync.WaitGroup
		errs := make(chan error, workers*each)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					e, err := log.Prepare(audit.Event{Action: audit.KeyCreated, Outcome: audit.Success, Actor: audit.Actor{UserID: fmt.Sprintf("w%d", w)}, Target: audit.Target{ID: fmt.Sprint(i)}})
					if err == nil {
						_, err = s.Append(ctx, e)
					}
					if err != nil {
						errs <- err
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		r, err := audit.Verify(ctx, s)
		require.NoError(t, err, "one chain, no fork")
		assert.Equal(t, workers*each, r.Events)
		assert.EqualValues(t, workers*each, r.Head.Last.Seq)
	})

	t.Run("ContextDone", func(t *testing.T) {
		s := newStore(t)
		done, cancel := context.WithCancel(ctx)
		cancel()
		_, err := s.Append(done, event(t, log, 0, audit.KeyCreated, "u1"))
		assert.Error(t, err)
		h, err := s.Head(ctx)
		require.NoError(t, err)
		assert.Zero(t, h.Last.Seq, "nothing appended")
	})
}
