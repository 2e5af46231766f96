package apikey_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey"
)

func mustRate(t testing.TB, spec string) apikey.RateLimit {
	t.Helper()
	r, err := apikey.ParseRateLimit(spec)
	require.NoError(t, err)
	return r
}

func limitErr(t *testing.T, err error, kind error) *apikey.LimitError {
	t.Helper()
	require.ErrorIs(t, err, kind)
	var le *apikey.LimitError
	require.ErrorAs(t, err, &le)
	return le
}

func TestParseRateLimit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in     string
		limit  int64
		window time.Duration
		name   string
		str    string
	}{
		{"100/1m", 100, time.Minute, "minute", "100/1m"},
		{"10000/24h", 10000, 24 * time.Hour, "day", "10000/1d"},
		{"5/second", 5, time.Second, "second", "5/1s"},
		{"7/7d", 7, 7 * 24 * time.Hour, "week", "7/7d"},
		{"60/90s", 60, 90 * time.Second, "90s", "60/90s"},
		{" 3/1h30m", 3, 90 * time.Minute, "90m", "3/90m"},
		{"1/hour", 1, time.Hour, "hour", "1/1h"},
	} {
		r, err := apikey.ParseRateLimit(tc.in)
		require.NoError(t, err, tc.in)
		assert.Equal(t, apikey.RateLimit{Name: tc.name, Limit: tc.limit, Window: tc.window}, r, tc.in)
		assert.Equal(t, tc.str, r.String(), tc.in)
	}
	for _, bad := range []string{"", "100", "/1m", "100/", "0/1m", "-1/1m", "+1/1m", "1.5/1m", "100/0s", "100/500ms",
		"100/1.5s", "100/367d", "100/month", "100/-1m", "100/+1m", "100/+1d", "1000000000001/1m", "99999999999999999999/1m", "100/1x", "100/1m/2"} {
		_, err := apikey.ParseRateLimit(bad)
		assert.ErrorIs(t, err, apikey.ErrInvalidLimits, "%q", bad)
	}
}

func TestParseRefill(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]apikey.Refill{
		"10000/month": {Amount: 10000, Period: apikey.PeriodMonth},
		"5/daily":     {Amount: 5, Period: apikey.PeriodDay},
		"1/Weekly":    {Amount: 1, Period: apikey.PeriodWeek},
		"2/hour":      {Amount: 2, Period: apikey.PeriodHour},
	} {
		got, err := apikey.ParseRefill(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	f, _ := apikey.ParseRefill("10000/monthly")
	assert.Equal(t, "10000/month", f.String())
	for _, bad := range []string{"", "10/1m", "10/year", "0/month", "month", "10/"} {
		_, err := apikey.ParseRefill(bad)
		assert.ErrorIs(t, err, apikey.ErrInvalidLimits, "%q", bad)
	}
}

func TestPeriods(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 4, 15, 30, 0, 0, time.FixedZone("X", 3600)) // Wednesday 14:30 UTC
	for _, tc := range []struct {
		p           apikey.Period
		start, next time.Time
	}{
		{apikey.PeriodHour, time.Date(2026, 3, 4, 14, 0, 0, 0, time.UTC), time.Date(2026, 3, 4, 15, 0, 0, 0, time.UTC)},
		{apikey.PeriodDay, time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC)},
		{apikey.PeriodWeek, time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 9, 0, 0, 0, 0, time.UTC)},
		{apikey.PeriodMonth, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)},
	} {
		assert.Equal(t, tc.start, tc.p.Start(at), tc.p)
		assert.Equal(t, tc.next, tc.p.Next(at), tc.p)
	}
	// A Sunday belongs to the week that began on the Monday before.
	assert.Equal(t, time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), apikey.PeriodWeek.Start(time.Date(2026, 3, 8, 23, 0, 0, 0, time.UTC)))
}

func TestLimitsValidate(t *testing.T) {
	t.Parallel()
	m := newManager(t, apikey.Config{})
	bad := []apikey.Limits{
		{Rate: []apikey.RateLimit{{Limit: 0, Window: time.Minute}}},
		{Rate: []apikey.RateLimit{{Limit: 1, Window: time.Millisecond}}},
		{Rate: []apikey.RateLimit{{Limit: 1, Window: time.Minute}, {Limit: 2, Window: time.Minute}}}, // both "minute"
		{Rate: []apikey.RateLimit{{Name: "quota", Limit: 1, Window: time.Minute}}},
		{Rate: []apikey.RateLimit{{Name: "a b", Limit: 1, Window: time.Minute}}},
		{Quota: &apikey.Quota{Limit: -1}},
		{Quota: &apikey.Quota{Limit: 1, Refill: apikey.Refill{Amount: 1, Period: "year"}}},
		{Quota: &apikey.Quota{Limit: 1, Refill: apikey.Refill{Period: apikey.PeriodDay}}},
	}
	for _, l := range bad {
		_, _, err := m.Create(context.Background(), "u", "k", apikey.CreateOptions{Limits: l})
		assert.ErrorIs(t, err, apikey.ErrInvalidLimits, "%+v", l)
	}
	recs, err := m.List(context.Background(), "u")
	require.NoError(t, err)
	assert.Empty(t, recs, "nothing is stored on error")
}

func TestRateLimitWindows(t *testing.T) {
	t.Parallel()
	clock := newFakeClock() // 12:00:00
	clock.Advance(10 * time.Second)
	m := newManager(t, apikey.Config{Now: clock.Now})
	ctx := context.Background()
	key, _ := create(t, m, "u", "limited", apikey.CreateOptions{Limits: apikey.Limits{Rate: []apikey.RateLimit{mustRate(t, "3/1m")}}})
	for range 3 {
		_, err := m.Verify(ctx, key)
		require.NoError(t, err)
	}
	_, err := m.Verify(ctx, key)
	le := limitErr(t, err, apikey.ErrRateLimited)
	assert.Equal(t, "minute", le.Policy)
	assert.Equal(t, 50*time.Second, le.RetryAfter)
	assert.Equal(t, []apikey.LimitStatus{{Name: "minute", Limit: 3, Window: time.Minute, Remaining: 0, Reset: 50 * time.Second}}, le.Status)
	assert.NotContains(t, err.Error(), key)

	clock.Advance(50 * time.Second) // 12:01:00: a new window
	_, c, err := m.VerifyCharge(ctx, key, 1)
	require.NoError(t, err)
	assert.True(t, c.Limited())
	assert.Equal(t, []apikey.LimitStatus{{Name: "minute", Limit: 3, Window: time.Minute, Remaining: 2, Reset: time.Minute}}, c.Status())

	// A cost larger than what is left is refused and takes nothing.
	_, _, err = m.VerifyCharge(ctx, key, 3)
	limitErr(t, err, apikey.ErrRateLimited)
	_, _, err = m.VerifyCharge(ctx, key, 2)
	require.NoError(t, err)
}

func TestSeveralRateLimits(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	m := newManager(t, apikey.Config{Now: clock.Now})
	ctx := context.Background()
	key, _ := create(t, m, "u", "k", apikey.CreateOptions{Limits: apikey.Limits{Rate: []apikey.RateLimit{mustRate(t, "2/1s"), mustRate(t, "3/1m")}}})
	ok := 0
	for range 10 {
		if _, err := m.Verify(ctx, key); err == nil {
			ok++
		} else {
			limitErr(t, err, apikey.ErrRateLimited)
		}
		clock.Advance(400 * time.Millisecond)
	}
	assert.Equal(t, 3, ok, "the minute limit caps what the second limit allows")
	// A refusal by the second limit does not spend the first.
	clock.Advance(time.Minute)
	for range 2 {
		_, err := m.Verify(ctx, key)
		require.NoError(t, err)
	}
	_, err := m.Verify(ctx, key)
	assert.Equal(t, "second", limitErr(t, err, apikey.ErrRateLimited).Policy)
	clock.Advance(time.Second)
	_, err = m.Verify(ctx, key)
	require.NoError(t, err, "the minute's third unit was not spent by the refusal")
}

func TestQuotaRefillAcrossPeriodBoundary(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Date(2026, 1, 31, 23, 59, 59, 0, time.UTC)}
	m := newManager(t, apikey.Config{Now: clock.Now})
	ctx := context.Background()
	q := &apikey.Quota{Limit: 3, Refill: apikey.Refill{Amount: 2, Period: apikey.PeriodMonth}}
	key, rec := create(t, m, "u", "k", apikey.CreateOptions{Limits: apikey.Limits{Quota: q}})
	assert.Equal(t, int64(3), rec.Limits.Quota.Remaining)
	assert.Equal(t, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), rec.Limits.Quota.PeriodStart)
	for range 3 {
		_, err := m.Verify(ctx, key)
		require.NoError(t, err)
	}
	_, err := m.Verify(ctx, key)
	le := limitErr(t, err, apikey.ErrQuotaExhausted)
	assert.Equal(t, time.Second, le.RetryAfter, "until the 1st of February")
	assert.Equal(t, "quota", le.Policy)

	clock.Advance(time.Second) // 2026-02-01T00:00:00Z
	recs, err := m.List(ctx, "u")
	require.NoError(t, err)
	assert.Equal(t, int64(2), recs[0].Limits.Quota.Remaining, "the listing applies the refill that is due")
	_, c, err := m.VerifyCharge(ctx, key, 1)
	require.NoError(t, err)
	assert.Equal(t, []apikey.LimitStatus{{Name: "quota", Limit: 2, Window: 28 * 24 * time.Hour, Remaining: 1, Reset: 28 * 24 * time.Hour}}, c.Status())
	_, err = m.Verify(ctx, key)
	require.NoError(t, err)
	_, err = m.Verify(ctx, key)
	limitErr(t, err, apikey.ErrQuotaExhausted)
}

func TestQuotaWithoutRefill(t *testing.T) {
	t.Parallel()
	m := newManager(t, apikey.Config{})
	ctx := context.Background()
	key, _ := create(t, m, "u", "trial", apikey.CreateOptions{Limits: apikey.Limits{Quota: &apikey.Quota{Limit: 5}}})
	_, c, err := m.VerifyCharge(ctx, key, 3)
	require.NoError(t, err)
	assert.Equal(t, []apikey.LimitStatus{{Name: "quota", Limit: 5, Remaining: 2}}, c.Status())
	m.Refund(&c) // the server failed the request
	m.Refund(&c) // a second refund gives nothing more
	for range 5 {
		_, err := m.Verify(ctx, key)
		require.NoError(t, err)
	}
	_, err = m.Verify(ctx, key)
	le := limitErr(t, err, apikey.ErrQuotaExhausted)
	assert.Zero(t, le.RetryAfter, "never refilled")
	require.NoError(t, m.Close()) // returns the lease
	recs, err := m.List(ctx, "u")
	require.NoError(t, err)
	assert.Zero(t, recs[0].Limits.Quota.Remaining)
}

// Many goroutines on one key: exactly the limit and the quota are accepted.
func TestLimitsConcurrent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		limits apikey.Limits
		want   int64
	}{
		{"rate", apikey.Limits{Rate: []apikey.RateLimit{{Limit: 700, Window: 24 * time.Hour}}}, 700},
		{"quota", apikey.Limits{Quota: &apikey.Quota{Limit: 900}}, 900},
		{"both", apikey.Limits{Rate: []apikey.RateLimit{{Limit: 600, Window: 24 * time.Hour}}, Quota: &apikey.Quota{Limit: 500}}, 500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := newFakeClock()
			for _, lim := range []apikey.Limiter{nil, &sharedLimiter{}} {
				m := newManager(t, apikey.Config{Now: clock.Now, Limiter: lim})
				key, _ := create(t, m, "u", "k", apikey.CreateOptions{Limits: tc.limits})
				var ok, refused atomic.Int64
				var wg sync.WaitGroup
				for range 16 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for range 80 {
							_, err := m.Verify(context.Background(), key)
							switch {
							case err == nil:
								ok.Add(1)
							case errors.Is(err, apikey.ErrRateLimited), errors.Is(err, apikey.ErrQuotaExhausted):
								refused.Add(1)
							default:
								t.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				assert.Equal(t, tc.want, ok.Load())
				assert.Equal(t, 16*80-tc.want, refused.Load())
			}
		})
	}
}

// sharedLimiter is a MemoryLimiter seen as a shared one (leases in blocks),
// with an outage switch and a count of its calls.
type sharedLimiter struct {
	mem   apikey.MemoryLimiter
	down  atomic.Bool
	calls atomic.Int64
}

var errLimiterDown = errors.New("limiter down")

func (l *sharedLimiter) Take(ctx context.Context, w apikey.Window, n int64) (int64, int64, error) {
	l.calls.Add(1)
	if l.down.Load() {
		return 0, 0, errLimiterDown
	}
	return l.mem.Take(ctx, w, n)
}

// A shared Limiter is asked for blocks, not once per request.
func TestSharedLimiterLeases(t *testing.T) {
	t.Parallel()
	lim := &sharedLimiter{}
	m := newManager(t, apikey.Config{Limiter: lim})
	key, _ := create(t, m, "u", "k", apikey.CreateOptions{Limits: apikey.Limits{Rate: []apikey.RateLimit{mustRate(t, "100000/24h")}}})
	for range 2000 {
		_, err := m.Verify(context.Background(), key)
		require.NoError(t, err)
	}
	assert.LessOrEqual(t, lim.calls.Load(), int64(2000/500+1), "blocks of 0.5 %% of the limit")
}

func TestLimiterOutage(t *testing.T) {
	t.Parallel()
	for _, failOpen := range []bool{false, true} {
		lim := &sharedLimiter{}
		store := newFaultyStore()
		m := newManager(t, apikey.Config{Store: store, Limiter: lim, LimitsFailOpen: failOpen})
		ctx := context.Background()
		rated, _ := create(t, m, "u", "rated", apikey.CreateOptions{Limits: apikey.Limits{Rate: []apikey.RateLimit{mustRate(t, "10/1m")}}})
		quota, _ := create(t, m, "u", "quota", apikey.CreateOptions{Limits: apikey.Limits{Quota: &apikey.Quota{Limit: 10}}})
		free, _ := create(t, m, "u", "free", apikey.CreateOptions{})
		for _, k := range []string{rated, quota, free} {
			_, err := m.Verify(ctx, k) // cached
			require.NoError(t, err)
		}
		lim.down.Store(true)
		store.failWrites.Store(true) // TakeQuota fails
		_, err := m.Verify(ctx, free)
		require.NoError(t, err, "an unlimited key never depends on the limiter")
		// rated has a lease of the whole window? No: a shared limiter
		// leases 1 unit (0.5 % of 10, rounded up), so the next one fails.
		_, err = m.Verify(ctx, rated)
		_, err2 := m.Verify(ctx, quota)
		if failOpen {
			assert.NoError(t, err)
			assert.NoError(t, err2)
		} else {
			assert.ErrorIs(t, err, apikey.ErrUnavailable)
			assert.ErrorIs(t, err2, apikey.ErrUnavailable)
		}
		lim.down.Store(false)
		store.failWrites.Store(false)
		_, err = m.Verify(ctx, rated)
		require.NoError(t, err)
	}
}

func TestSetLimits(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	m := newManager(t, apikey.Config{Now: clock.Now})
	ctx := context.Background()
	key, rec := create(t, m, "u", "k", apikey.CreateOptions{Limits: apikey.Limits{Quota: &apikey.Quota{Limit: 3}}})
	_, err := m.Verify(ctx, key)
	require.NoError(t, err)

	// A new rate limit, the quota kept: 2 uses left.
	rec2, err := m.SetLimits(ctx, "u", rec.ID, apikey.Limits{Rate: []apikey.RateLimit{mustRate(t, "1/1h")}, Quota: &apikey.Quota{Limit: 3}}, false)
	require.NoError(t, err)
	assert.Equal(t, int64(2), rec2.Limits.Quota.Remaining)
	_, err = m.Verify(ctx, key)
	require.NoError(t, err)
	_, err = m.Verify(ctx, key)
	limitErr(t, err, apikey.ErrRateLimited)

	// Reset: a new grant of 10, no rate limit.
	rec3, err := m.SetLimits(ctx, "u", rec.ID, apikey.Limits{Quota: &apikey.Quota{Limit: 10}}, true)
	require.NoError(t, err)
	assert.Equal(t, int64(10), rec3.Limits.Quota.Remaining)
	for range 10 {
		_, err = m.Verify(ctx, key)
		require.NoError(t, err)
	}
	_, err = m.Verify(ctx, key)
	limitErr(t, err, apikey.ErrQuotaExhausted)

	// Removed: unlimited again.
	rec4, err := m.SetLimits(ctx, "u", rec.ID, apikey.Limits{}, false)
	require.NoError(t, err)
	assert.True(t, rec4.Limits.IsZero())
	_, c, err := m.VerifyCharge(ctx, key, 5)
	require.NoError(t, err)
	assert.False(t, c.Limited())

	_, err = m.SetLimits(ctx, "other", rec.ID, apikey.Limits{}, false)
	assert.ErrorIs(t, err, apikey.ErrNotFound)
	_, err = m.SetLimits(ctx, "u", rec.ID, apikey.Limits{Quota: &apikey.Quota{Limit: -5}}, false)
	assert.ErrorIs(t, err, apikey.ErrInvalidLimits)
}

// plainStore is a Store without the LimitStore capability.
type plainStore struct{ apikey.Store }

func TestLimitsUnsupported(t *testing.T) {
	t.Parallel()
	m := newManager(t, apikey.Config{Store: plainStore{apikey.NewMemoryStore()}})
	ctx := context.Background()
	_, _, err := m.Create(ctx, "u", "k", apikey.CreateOptions{Limits: apikey.Limits{Quota: &apikey.Quota{Limit: 1}}})
	assert.ErrorIs(t, err, apikey.ErrLimitsUnsupported)
	_, rec, err := m.Create(ctx, "u", "k", apikey.CreateOptions{})
	require.NoError(t, err)
	_, err = m.SetLimits(ctx, "u", rec.ID, apikey.Limits{Quota: &apikey.Quota{Limit: 1}}, false)
	assert.ErrorIs(t, err, apikey.ErrLimitsUnsupported)
}

// Several Managers on one store share a quota exactly, whatever their leases.
func TestQuotaSharedByManagers(t *testing.T) {
	t.Parallel()
	store := apikey.NewMemoryStore()
	ms := make([]*apikey.Manager, 4)
	for i := range ms {
		ms[i] = newManager(t, apikey.Config{Store: store, Limiter: &sharedLimiter{}})
	}
	key, _ := create(t, ms[0], "u", "k", apikey.CreateOptions{Limits: apikey.Limits{Quota: &apikey.Quota{Limit: 1000}}})
	var ok atomic.Int64
	var wg sync.WaitGroup
	for _, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 400 {
				if _, err := m.Verify(context.Background(), key); err == nil {
					ok.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	assert.LessOrEqual(t, ok.Load(), int64(1000), "never more than granted")
	assert.GreaterOrEqual(t, ok.Load(), int64(1000-4*5), "at most a block per other Manager held back")
}
