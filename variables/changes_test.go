package variables_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/variables"
)

// fakeFeed is a ChangeFeed driven by the test: report queues users for the
// next poll, fail makes polls fail. Its cursor counts polls.
type fakeFeed struct {
	mu      sync.Mutex
	pending []string
	failing bool
	polls   int
}

func (f *fakeFeed) Changes(_ context.Context, cursor string) ([]string, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.polls++
	if f.failing {
		return nil, "", errors.New("feed down")
	}
	users := f.pending
	f.pending = nil
	return users, strconv.Itoa(f.polls), nil
}

func (f *fakeFeed) report(users ...string) {
	f.mu.Lock()
	f.pending = append(f.pending, users...)
	f.mu.Unlock()
}

func (f *fakeFeed) fail(on bool) {
	f.mu.Lock()
	f.failing = on
	f.mu.Unlock()
}

func (f *fakeFeed) pollCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.polls
}

// TestServiceCache: with a change feed, the Resolver reads a user's
// variables from the store once and then from the cache; a write through
// the Service, the feed naming the user, and a feed down for longer than
// its bound each send the next run to the store; other users' entries stay.
func TestServiceCache(t *testing.T) {
	ctx := context.Background()
	mem := variables.NewMemoryStore()
	store := &countingStore{Store: mem}
	feed := &fakeFeed{}
	svc, err := variables.NewService(variables.ServiceConfig{Store: store, Keyring: keyring(t), Changes: feed,
		ChangesMaxLag: 200 * time.Millisecond, ChangesPollInterval: 10 * time.Millisecond})
	require.NoError(t, err)
	defer func() { require.NoError(t, svc.Close()) }()
	r, err := variables.NewResolver(variables.ResolverConfig{Service: svc, EnvFallback: variables.EnvFallbackOff})
	require.NoError(t, err)
	v, err := svc.Create(ctx, "u1", variables.CreateInput{Name: "KEY", Value: "secret-1"})
	require.NoError(t, err)
	_, err = svc.Create(ctx, "u2", variables.CreateInput{Name: "KEY", Value: "other"})
	require.NoError(t, err)
	fields := []variables.Field{{Name: "api_key", Variable: "KEY"}}
	resolve := func(user string) string {
		t.Helper()
		res, err := r.Resolve(ctx, user, fields, nil)
		require.NoError(t, err)
		return res[0].Value
	}
	// reads counts the store reads of one resolution of user.
	reads := func(user, want string) int64 {
		t.Helper()
		before := store.calls.Load()
		assert.Equal(t, want, resolve(user))
		return store.calls.Load() - before
	}
	require.Eventually(t, func() bool { resolve("u1"); return reads("u1", "secret-1") == 0 }, 5*time.Second, time.Millisecond,
		"runs are served from the cache once the feed has been read")
	require.Eventually(t, func() bool { resolve("u2"); return reads("u2", "other") == 0 }, 5*time.Second, time.Millisecond)

	_, err = svc.Update(ctx, "u1", v.ID, variables.Patch{Value: ptr("secret-2")})
	require.NoError(t, err)
	assert.Equal(t, int64(1), reads("u1", "secret-2"), "a write through the Service is seen at once")
	assert.Equal(t, int64(0), reads("u1", "secret-2"))
	assert.Equal(t, int64(0), reads("u2", "other"), "another user's entry stays")

	// A change made behind the Service's back, reported by the feed.
	cur, err := mem.Get(ctx, "u1", v.ID)
	require.NoError(t, err)
	next := cur
	next.Value, next.Type, next.UpdatedAt = "written elsewhere", variables.Generic, cur.UpdatedAt.Add(time.Second)
	require.NoError(t, mem.Update(ctx, cur, next))
	feed.report("u1")
	require.Eventually(t, func() bool { return resolve("u1") == "written elsewhere" }, 5*time.Second, time.Millisecond)

	// The feed down for longer than its bound: every run reads the store.
	feed.fail(true)
	require.Eventually(t, func() bool { return reads("u2", "other") == 1 }, 5*time.Second, time.Millisecond)
	assert.Equal(t, int64(1), reads("u2", "other"), "nothing is cached while the feed is down")
	feed.fail(false)
	require.Eventually(t, func() bool { resolve("u2"); return reads("u2", "other") == 0 }, 5*time.Second, time.Millisecond,
		"the cache serves again once the feed recovers")

	// Deleted through the Service: at once.
	require.NoError(t, svc.Delete(ctx, "u1", v.ID))
	res, err := r.Resolve(ctx, "u1", fields, nil)
	require.NoError(t, err)
	assert.Equal(t, variables.LayerNone, res[0].Layer)

	// After Close every run reads the store.
	require.NoError(t, svc.Close())
	assert.Equal(t, int64(1), reads("u2", "other"))
	assert.Equal(t, int64(1), reads("u2", "other"))
}

// TestServiceCacheIdle: a Service whose cache is not used stops polling its
// feed, and the next run wakes it.
func TestServiceCacheIdle(t *testing.T) {
	feed := &fakeFeed{}
	svc, err := variables.NewService(variables.ServiceConfig{Keyring: keyring(t), Changes: feed,
		ChangesMaxLag: 50 * time.Millisecond, ChangesPollInterval: time.Millisecond})
	require.NoError(t, err)
	defer func() { _ = svc.Close() }()
	r, err := variables.NewResolver(variables.ResolverConfig{Service: svc, EnvFallback: variables.EnvFallbackOff})
	require.NoError(t, err)
	var last int
	require.Eventually(t, func() bool {
		n := feed.pollCount()
		quiet := n == last
		last = n
		return quiet && n > 0
	}, 10*time.Second, 100*time.Millisecond, "the poller never went to sleep")
	_, err = r.Resolve(context.Background(), "u1", []variables.Field{{Name: "f", Variable: "V"}}, nil)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return feed.pollCount() > last }, 5*time.Second, time.Millisecond, "a run wakes the poller")
}

func TestServiceCacheConfig(t *testing.T) {
	var nilFeed *fakeFeed
	for _, cfg := range []variables.ServiceConfig{
		{Changes: nilFeed},
		{Changes: &fakeFeed{}, ChangesMaxLag: time.Second, ChangesPollInterval: time.Second},
		{Changes: &fakeFeed{}, ChangesMaxLag: -time.Second},
	} {
		cfg.Keyring = keyring(t)
		_, err := variables.NewService(cfg)
		assert.Error(t, err, "%+v", cfg)
	}
	svc, err := variables.NewService(variables.ServiceConfig{Keyring: keyring(t)})
	require.NoError(t, err)
	assert.NoError(t, svc.Close(), "Close without a cache")
}
