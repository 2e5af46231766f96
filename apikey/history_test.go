package apikey_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/observe"
)

// historyStore is a MemoryStore whose history writes can fail.
type historyStore struct {
	*apikey.MemoryStore
	fail bool
}

func (s *historyStore) AddUsageHistory(ctx context.Context, b []apikey.UsageBucket) error {
	if s.fail {
		return errInjected
	}
	return s.MemoryStore.AddUsageHistory(ctx, b)
}

func buckets(bs []apikey.UsageBucket) string {
	s := ""
	for _, b := range bs {
		s += fmt.Sprintf("[%s %s %d]", b.Hour.Format("15"), b.Outcome, b.Count)
	}
	return s
}

// TestUsageHistory: successful verifications reach the hour of their use at
// the flush, refusals of known keys too; a failed write is retried.
func TestUsageHistory(t *testing.T) {
	clock := newFakeClock() // 12:00
	store := &historyStore{MemoryStore: apikey.NewMemoryStore()}
	m := newManager(t, apikey.Config{Store: store, Now: clock.Now, FlushInterval: -1})
	ctx := context.Background()
	key, rec := create(t, m, "u", "k", apikey.CreateOptions{})
	off, offRec := create(t, m, "u", "off", apikey.CreateOptions{})
	require.NoError(t, m.SetActive(ctx, "u", offRec.ID, false))
	verify := func(k string, n int) {
		for range n {
			_, _ = m.Verify(ctx, k)
		}
	}
	verify(key, 3)
	verify(off, 2)
	require.NoError(t, m.Flush(ctx))
	clock.Advance(time.Hour) // 13:00
	verify(key, 1)
	store.fail = true
	require.ErrorIs(t, m.Flush(ctx), apikey.ErrUnavailable)
	store.fail = false
	verify(key, 2)
	require.NoError(t, m.Flush(ctx))

	day := clock.Now().Add(-24 * time.Hour)
	got, err := m.UsageHistory(ctx, rec.ID, day, clock.Now().Add(time.Hour))
	require.NoError(t, err)
	assert.Equal(t, "[12 ok 3][13 ok 3]", buckets(got), "the count of the failed write kept and sent again")
	got, err = m.UsageHistory(ctx, offRec.ID, day, clock.Now().Add(time.Hour))
	require.NoError(t, err)
	assert.Equal(t, "[12 disabled 2]", buckets(got))
	for _, b := range got {
		assert.Equal(t, observe.Disabled, b.Outcome)
	}
}

func TestUsageHistoryUnsupported(t *testing.T) {
	m := newManager(t, apikey.Config{Store: newFaultyStore(), FlushInterval: -1})
	_, err := m.UsageHistory(context.Background(), "id", time.Now().Add(-time.Hour), time.Now())
	assert.ErrorIs(t, err, apikey.ErrNoUsageHistory)
	m = newManager(t, apikey.Config{UsageHistoryRetention: -1, FlushInterval: -1})
	_, err = m.UsageHistory(context.Background(), "id", time.Now().Add(-time.Hour), time.Now())
	assert.ErrorIs(t, err, apikey.ErrNoUsageHistory, "turned off")
}

// TestRateLimitedObserved: a key over its rate limit is reported as
// rate_limited to the hooks and counted so in the usage history.
func TestRateLimitedObserved(t *testing.T) {
	rec := &recorder{}
	m := newManager(t, apikey.Config{Hooks: rec, FlushInterval: -1})
	ctx := context.Background()
	rl, err := apikey.ParseRateLimit("1/1m")
	require.NoError(t, err)
	key, r := create(t, m, "u", "limited", apikey.CreateOptions{Limits: apikey.Limits{Rate: []apikey.RateLimit{rl}}})
	_, err = m.Verify(ctx, key)
	require.NoError(t, err)
	_, err = m.Verify(ctx, key)
	require.ErrorIs(t, err, apikey.ErrRateLimited)
	assert.Equal(t, observe.RateLimited, apikey.OutcomeOf(err))
	got, _ := rec.take()
	require.Len(t, got, 2)
	assert.Equal(t, observe.OK, got[0].Outcome)
	assert.Equal(t, observe.RateLimited, got[1].Outcome)
	require.NoError(t, m.Flush(ctx))
	now := time.Now()
	bs, err := m.UsageHistory(ctx, r.ID, now.Add(-2*time.Hour), now.Add(time.Hour))
	require.NoError(t, err)
	var ok, limited int64
	for _, b := range bs {
		switch b.Outcome {
		case observe.OK:
			ok += b.Count
		case observe.RateLimited:
			limited += b.Count
		}
	}
	assert.EqualValues(t, 1, ok)
	assert.EqualValues(t, 1, limited)
}
