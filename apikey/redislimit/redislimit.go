// Package redislimit is an apikey.Limiter on Redis, for server instances
// that share rate limits through a Redis they already run (or that run no
// shared database). It is a module of its own, so that importers of package
// apikey never pull in the Redis client.
//
//	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
//	lim, err := redislimit.New(rdb, redislimit.Config{Prefix: "myapp:"})
//	keys, err := apikey.NewManager(apikey.Config{Store: store, Limiter: lim})
//
// Each window of each rate limit of each key is one Redis string, a count of
// the units taken, named "<Prefix>rate:<key ID>:<limit name>:<window
// seconds>:<window index>" and expiring a minute after its window ends. A
// Lua script takes min(n, limit − count) units atomically in one round
// trip, so instances sharing the Redis never take more than the limit
// between them; a Manager takes units in blocks (see apikey.Limiter), so
// most requests of a limited key do not reach Redis at all.
//
// The algorithm is the fixed window of package apikey, not the GCRA of
// github.com/go-redis/redis_rate: GCRA with a burst of L and a rate of L per
// window accepts up to 2·L within one window (the burst, then the window's
// refill), and with a small burst it refuses well-spaced bursts; a fixed
// window accepts at most L in each window, exactly, and is what the
// RateLimit header fields describe (what remains, and when it resets).
//
// Quotas are not kept here: they live in the key store
// (apikey.LimitStore), which is durable, while a Redis that is restarted
// without persistence forgets its counts (then each rate-limit window in
// progress starts again from zero: at most one extra window's worth).
//
// Outages: Take returns the client's error; the Manager then fails closed
// (503) for limited keys, or admits them uncounted with
// apikey.Config.LimitsFailOpen. Unlimited keys never reach the Limiter. Set
// the client's timeouts (redis.Options.ReadTimeout, DialTimeout) to bound
// how long a limited request waits for an unreachable Redis.
package redislimit

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keyflow-dev/keyflow/apikey"
)

// Config configures New.
type Config struct {
	// Prefix starts the name of every Redis key the Limiter writes, to keep
	// them apart from other data in the same database. "": "keyflow:".
	Prefix string
}

// Limiter is an apikey.Limiter on Redis. It is safe for concurrent use.
type Limiter struct {
	client redis.Scripter
	prefix string
}

var _ apikey.Limiter = (*Limiter)(nil)

// New returns a Limiter on client (a *redis.Client, *redis.ClusterClient
// or *redis.Ring: in a cluster each window is one key, so one slot). It does
// not contact Redis.
func New(client redis.Scripter, cfg Config) (*Limiter, error) {
	if client == nil {
		return nil, errors.New("redislimit: client is nil")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "keyflow:"
	}
	return &Limiter{client: client, prefix: cfg.Prefix}, nil
}

// take takes min(n, limit - count) units of the window KEYS[1]: ARGV n,
// limit, and the key's lifetime in milliseconds (set when it is created).
// It returns {taken, left}.
var take = redis.NewScript(`
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local n, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = limit - used
if t > n then t = n end
if t < 0 then t = 0 end
if t > 0 then
  used = redis.call('INCRBY', KEYS[1], t)
  if used == t then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
end
return {t, limit - used}
`)

// Take implements apikey.Limiter: one round trip (EVALSHA).
func (l *Limiter) Take(ctx context.Context, w apikey.Window, n int64) (taken, left int64, err error) {
	key := l.prefix + "rate:" + w.KeyID + ":" + w.Name + ":" + strconv.FormatInt(int64(w.Length/time.Second), 10) +
		":" + strconv.FormatInt(w.Index, 10)
	// The key outlives its window by a minute, so clocks a little apart
	// still find it.
	ttl := time.Until(w.End()) + time.Minute
	if ttl < time.Minute {
		ttl = time.Minute
	}
	res, err := take.Run(ctx, l.client, []string{key}, max(n, 0), w.Limit, ttl.Milliseconds()).Int64Slice()
	if err != nil {
		return 0, 0, fmt.Errorf("redislimit: take: %w", err)
	}
	if len(res) != 2 {
		return 0, 0, fmt.Errorf("redislimit: take: unexpected reply of %d values", len(res))
	}
	return res[0], res[1], nil
}
