package redislimit_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/apikey/redislimit"
	"github.com/keyflow-dev/keyflow/apikey/storetest"
	"github.com/keyflow-dev/keyflow/internal/latency"
)

// client returns a client of the test Redis (KEYFLOW_TEST_REDIS_ADDR) and a
// random key prefix, whose keys are deleted when the test ends. Without the
// variable the test is skipped, or fails under CI.
func client(t testing.TB) (*redis.Client, string) {
	t.Helper()
	addr := os.Getenv("KEYFLOW_TEST_REDIS_ADDR")
	if addr == "" {
		const how = "set KEYFLOW_TEST_REDIS_ADDR=127.0.0.1:6379"
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set, so the Redis tests must run: %s", how)
		}
		t.Skip("Redis tests skipped: " + how)
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	prefix := "keyflowtest:" + hex.EncodeToString(b) + ":"
	t.Cleanup(func() {
		ctx := context.Background()
		keys, _ := rdb.Keys(ctx, prefix+"*").Result()
		if len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
		_ = rdb.Close()
	})
	require.NoError(t, rdb.Ping(context.Background()).Err())
	return rdb, prefix
}

func window(index int64) apikey.Window {
	return apikey.Window{KeyID: "k1", Name: "minute", Limit: 100, Length: time.Minute, Index: index}
}

func TestTake(t *testing.T) {
	rdb, prefix := client(t)
	lim, err := redislimit.New(rdb, redislimit.Config{Prefix: prefix})
	require.NoError(t, err)
	ctx := context.Background()
	idx := time.Now().UnixNano() / int64(time.Minute)

	taken, left, err := lim.Take(ctx, window(idx), 60)
	require.NoError(t, err)
	assert.Equal(t, [2]int64{60, 40}, [2]int64{taken, left})
	taken, left, err = lim.Take(ctx, window(idx), 60)
	require.NoError(t, err)
	assert.Equal(t, [2]int64{40, 0}, [2]int64{taken, left}, "never more than the limit")
	taken, left, err = lim.Take(ctx, window(idx), 1)
	require.NoError(t, err)
	assert.Equal(t, [2]int64{0, 0}, [2]int64{taken, left})
	// The next window starts from zero; the key expires after its window.
	taken, _, err = lim.Take(ctx, window(idx+1), 5)
	require.NoError(t, err)
	assert.Equal(t, int64(5), taken)
	ttl, err := rdb.PTTL(ctx, prefix+"rate:k1:minute:60:"+strconv.FormatInt(idx+1, 10)).Result()
	require.NoError(t, err)
	assert.Greater(t, ttl, time.Minute)
	assert.LessOrEqual(t, ttl, 3*time.Minute)
}

// Managers sharing a Redis never accept more than the limit between them.
func TestManagersShareTheLimit(t *testing.T) {
	rdb, prefix := client(t)
	lim, err := redislimit.New(rdb, redislimit.Config{Prefix: prefix})
	require.NoError(t, err)
	store := apikey.NewMemoryStore()
	ms := make([]*apikey.Manager, 4)
	for i := range ms {
		m, err := apikey.NewManager(apikey.Config{Store: store, Limiter: lim})
		require.NoError(t, err)
		t.Cleanup(func() { _ = m.Close() })
		ms[i] = m
	}
	r, err := apikey.ParseRateLimit("1000/24h")
	require.NoError(t, err)
	key, _, err := ms[0].Create(context.Background(), "u", "k", apikey.CreateOptions{Limits: apikey.Limits{Rate: []apikey.RateLimit{r}}})
	require.NoError(t, err)
	var ok, refused atomic.Int64
	var wg sync.WaitGroup
	for _, m := range ms {
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 200 {
					_, err := m.Verify(context.Background(), key)
					switch {
					case err == nil:
						ok.Add(1)
					case errors.Is(err, apikey.ErrRateLimited):
						refused.Add(1)
					default:
						t.Error(err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	assert.LessOrEqual(t, ok.Load(), int64(1000), "never more than the limit")
	assert.GreaterOrEqual(t, ok.Load(), int64(1000-4*5), "at most a block (0.5 %%) held back per Manager")
	assert.Equal(t, int64(1600), ok.Load()+refused.Load())
}

// A Redis that cannot be reached: limited keys fail closed, unlimited keys
// pass.
func TestOutage(t *testing.T) {
	client(t) // skip when there is no test Redis, like the others
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // nothing listens there now
	rdb := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	lim, err := redislimit.New(rdb, redislimit.Config{})
	require.NoError(t, err)
	m, err := apikey.NewManager(apikey.Config{Limiter: lim})
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })
	ctx := context.Background()
	r, _ := apikey.ParseRateLimit("10/1m")
	limited, _, err := m.Create(ctx, "u", "limited", apikey.CreateOptions{Limits: apikey.Limits{Rate: []apikey.RateLimit{r}}})
	require.NoError(t, err)
	free, _, err := m.Create(ctx, "u", "free", apikey.CreateOptions{})
	require.NoError(t, err)
	_, err = m.Verify(ctx, limited)
	assert.ErrorIs(t, err, apikey.ErrUnavailable)
	assert.NotContains(t, err.Error(), limited)
	_, err = m.Verify(ctx, free)
	assert.NoError(t, err)
}

func TestNewRefusesNil(t *testing.T) {
	_, err := redislimit.New(nil, redislimit.Config{})
	assert.Error(t, err)
}

// BenchmarkVerifyLimited: a warm verification of one key with the Redis
// Limiter: unlimited (the baseline) and with a large rate limit (blocks of
// 10 000 units: about one verification in 10 000 waits for Redis, which
// BenchmarkTake measures).
func BenchmarkVerifyLimited(b *testing.B) {
	rdb, prefix := client(b)
	lim, err := redislimit.New(rdb, redislimit.Config{Prefix: prefix})
	require.NoError(b, err)
	for _, tc := range []struct {
		name   string
		limits apikey.Limits
	}{
		{"unlimited", apikey.Limits{}},
		{"rate", apikey.Limits{Rate: []apikey.RateLimit{{Limit: apikey.MaxLimit, Window: time.Hour}}}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			m, err := apikey.NewManager(apikey.Config{Limiter: lim})
			require.NoError(b, err)
			b.Cleanup(func() { _ = m.Close() })
			ctx := context.Background()
			key, _, err := m.Create(ctx, "u", "bench", apikey.CreateOptions{Limits: tc.limits})
			require.NoError(b, err)
			latency.Measure(b, 100, func() error { _, err := m.Verify(ctx, key); return err })
		})
	}
}

// BenchmarkTake: one block reservation (one EVALSHA round trip).
func BenchmarkTake(b *testing.B) {
	rdb, prefix := client(b)
	lim, err := redislimit.New(rdb, redislimit.Config{Prefix: prefix})
	require.NoError(b, err)
	ctx := context.Background()
	w := apikey.Window{KeyID: "k", Name: "hour", Limit: apikey.MaxLimit, Length: time.Hour, Index: time.Now().Unix() / 3600}
	latency.Measure(b, 0, func() error { _, _, err := lim.Take(ctx, w, 50); return err })
}

func TestLimiterConformance(t *testing.T) {
	storetest.RunLimiter(t, func(t *testing.T) apikey.Limiter {
		rdb, prefix := client(t)
		lim, err := redislimit.New(rdb, redislimit.Config{Prefix: prefix})
		require.NoError(t, err)
		return lim
	})
}
