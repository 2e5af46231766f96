package apikey_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/observe"
)

// recorder is an observe.Hooks that keeps every event.
type recorder struct {
	observe.Nop
	mu       sync.Mutex
	verified []observe.Verification
	flushes  []observe.Flush
	polls    []observe.FeedPoll
	reads    []string // "start Op" / "end Op err"
}

type spanKey struct{}

func (r *recorder) Verified(_ context.Context, v observe.Verification) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.verified = append(r.verified, v)
}

func (r *recorder) Flushed(_ context.Context, f observe.Flush) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.flushes = append(r.flushes, f)
}

func (r *recorder) FeedPolled(_ context.Context, p observe.FeedPoll) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.polls = append(r.polls, p)
}

func (r *recorder) StoreReadStart(ctx context.Context, sr observe.StoreRead) context.Context {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reads = append(r.reads, "start "+sr.Store+" "+sr.Op)
	return context.WithValue(ctx, spanKey{}, sr.Op)
}

func (r *recorder) StoreReadEnd(ctx context.Context, sr observe.StoreRead, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reads = append(r.reads, fmt.Sprintf("end %s %v %v", ctx.Value(spanKey{}), err != nil, errors.Is(err, apikey.ErrNotFound)))
}

func (r *recorder) take() (v []observe.Verification, reads []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, reads = r.verified, r.reads
	r.verified, r.reads = nil, nil
	return v, reads
}

func TestHooksVerify(t *testing.T) {
	store := newFaultyStore()
	clock := newFakeClock()
	rec := &recorder{}
	m := newManager(t, apikey.Config{Store: store, Hooks: rec, Now: clock.Now, FlushInterval: -1})
	ctx := context.Background()
	key, r := create(t, m, "u", "k", apikey.CreateOptions{})
	expiry := clock.Now().Add(time.Minute)
	expiring, _ := create(t, m, "u", "e", apikey.CreateOptions{ExpiresAt: &expiry})
	disabled, dr := create(t, m, "u", "d", apikey.CreateOptions{})
	require.NoError(t, m.SetActive(ctx, "u", dr.ID, false))
	unknown := "sk-" + key[3:len(key)-4] + "AAAA"
	_, _ = rec.take()

	type want struct {
		outcome observe.Outcome
		cached  bool
		read    bool
	}
	for _, tc := range []struct {
		name   string
		key    string
		before func()
		want   want
	}{
		{"first use reads the store", key, nil, want{observe.OK, false, true}},
		{"second use is cached", key, nil, want{observe.OK, true, false}},
		{"no key", "", nil, want{observe.Missing, false, false}},
		{"malformed", "sk-short", nil, want{observe.Unknown, false, false}},
		{"unknown", unknown, nil, want{observe.Unknown, false, true}},
		{"unknown again, cached", unknown, nil, want{observe.Unknown, true, false}},
		{"disabled", disabled, nil, want{observe.Disabled, false, true}},
		{"expired", expiring, func() { clock.Advance(2 * time.Minute) }, want{observe.Expired, false, true}},
		{"store down", key, func() {
			m.Invalidate(r.Hash)
			store.failByHash.Store(true)
		}, want{observe.Unavailable, false, true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.before != nil {
				tc.before()
			}
			_, err := m.Verify(ctx, tc.key)
			assert.Equal(t, tc.want.outcome, apikey.OutcomeOf(err))
			got, reads := rec.take()
			require.Len(t, got, 1)
			assert.Equal(t, tc.want.outcome, got[0].Outcome)
			assert.Equal(t, tc.want.cached, got[0].Cached)
			if tc.want.read {
				assert.Positive(t, got[0].Duration, "a store read is timed")
			} else {
				assert.Zero(t, got[0].Duration, "no store read, no timing")
			}
			if tc.want.read {
				require.Len(t, reads, 2)
				assert.Equal(t, "start apikey ByHash", reads[0])
				assert.Contains(t, reads[1], "end ByHash", "the end sees the start's context")
			} else {
				assert.Empty(t, reads)
			}
		})
	}
}

func TestOutcomeOf(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want observe.Outcome
	}{
		{nil, observe.OK},
		{apikey.ErrMissing, observe.Missing},
		{apikey.ErrInvalid, observe.Unknown},
		{fmt.Errorf("x: %w", apikey.ErrInvalid), observe.Unknown},
		{apikey.ErrNotFound, observe.Unknown},
		{apikey.ErrExpired, observe.Expired},
		{apikey.ErrInactive, observe.Disabled},
		{fmt.Errorf("%w: %w", apikey.ErrUnavailable, errInjected), observe.Unavailable},
		{errors.New("anything else"), observe.Unavailable},
	} {
		assert.Equal(t, tc.want, apikey.OutcomeOf(tc.err), "%v", tc.err)
	}
}

func TestHooksFlush(t *testing.T) {
	store := newFaultyStore()
	rec := &recorder{}
	m := newManager(t, apikey.Config{Store: store, Hooks: rec, FlushInterval: -1})
	ctx := context.Background()
	k1, _ := create(t, m, "u", "a", apikey.CreateOptions{})
	k2, _ := create(t, m, "u", "b", apikey.CreateOptions{})
	for _, k := range []string{k1, k1, k2} {
		_, err := m.Verify(ctx, k)
		require.NoError(t, err)
	}
	store.failAddUsage.Store(true)
	require.Error(t, m.Flush(ctx))
	store.failAddUsage.Store(false)
	require.NoError(t, m.Flush(ctx))

	rec.mu.Lock()
	defer rec.mu.Unlock()
	require.Len(t, rec.flushes, 2)
	failed, ok := rec.flushes[0], rec.flushes[1]
	assert.ErrorIs(t, failed.Err, apikey.ErrUnavailable)
	assert.Equal(t, 2, failed.Keys)
	assert.NoError(t, ok.Err)
	assert.Equal(t, 2, ok.Keys, "the kept counts go out with the next flush")
	assert.EqualValues(t, 3, ok.Uses)
	assert.GreaterOrEqual(t, ok.Lag, failed.Lag, "a failed flush does not reset the lag")
	assert.Positive(t, ok.Duration)
}

func TestHooksChangeFeed(t *testing.T) {
	feed := &fakeFeed{}
	rec := &recorder{}
	m := newManager(t, apikey.Config{Hooks: rec, Changes: feed, ChangesMaxLag: time.Second, ChangesPollInterval: 10 * time.Millisecond})
	key, r := create(t, m, "u", "k", apikey.CreateOptions{})
	polls := func() []observe.FeedPoll {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return append([]observe.FeedPoll(nil), rec.polls...)
	}
	seen := func(pred func(observe.FeedPoll) bool) func() bool {
		return func() bool {
			_, _ = m.Verify(context.Background(), key) // keeps the poller awake
			for _, p := range polls() {
				if pred(p) {
					return true
				}
			}
			return false
		}
	}
	require.Eventually(t, seen(func(p observe.FeedPoll) bool { return p.Err == nil }), 5*time.Second, 5*time.Millisecond)
	feed.set(func(f *fakeFeed) { f.pending = []apikey.Hash{r.Hash, r.Hash} })
	require.Eventually(t, seen(func(p observe.FeedPoll) bool { return p.Changed == 2 }), 5*time.Second, 5*time.Millisecond)
	feed.set(func(f *fakeFeed) { f.fail = true })
	require.Eventually(t, seen(func(p observe.FeedPoll) bool { return errors.Is(p.Err, errInjected) && p.Lag > p.Duration }), 5*time.Second, 5*time.Millisecond)
	feed.set(func(f *fakeFeed) { f.fail, f.lost = false, true })
	require.Eventually(t, seen(func(p observe.FeedPoll) bool { return p.Lost }), 5*time.Second, 5*time.Millisecond)
}

// TestHooksNoAllocs: a warm verification allocates nothing, with or
// without hooks.
func TestHooksNoAllocs(t *testing.T) {
	for _, h := range []observe.Hooks{nil, observe.Nop{}} {
		m := newManager(t, apikey.Config{Hooks: h, FlushInterval: -1})
		key, _ := create(t, m, "u", "k", apikey.CreateOptions{})
		ctx := context.Background()
		_, err := m.Verify(ctx, key)
		require.NoError(t, err)
		allocs := testing.AllocsPerRun(100, func() { _, _ = m.Verify(ctx, key) })
		assert.Zero(t, allocs, "hooks %T", h)
	}
}

// BenchmarkVerifyHooks: BenchmarkVerify/langflow (warm cache, 1024 keys)
// without hooks, and with hooks that do nothing (what the Manager's own
// reporting costs on a cache hit: the call, no clock read). The
// Prometheus adapter's figure is BenchmarkVerifyPrometheus in
// observe/promhooks.
func BenchmarkVerifyHooks(b *testing.B) {
	for _, tc := range []struct {
		name  string
		hooks observe.Hooks
	}{
		{"none", nil},
		{"nop", observe.Nop{}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			m := newBenchManager(b, apikey.Config{Hooks: tc.hooks})
			keys := benchKeys(b, m, 1024)
			warm(b, m, keys)
			ctx := context.Background()
			i := 0
			b.ReportAllocs()
			cpu0 := hooksCPU()
			for b.Loop() {
				if _, err := m.Verify(ctx, keys[i&1023]); err != nil {
					b.Fatal(err)
				}
				i++
			}
			if cpu := hooksCPU() - cpu0; cpu0 > 0 {
				b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
			}
		})
	}
}
