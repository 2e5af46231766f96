package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/apikey/sqlstore"
	"github.com/keyflow-dev/keyflow/internal/ids"
	"github.com/keyflow-dev/keyflow/keyflowtest/dbtest"
	"github.com/keyflow-dev/keyflow/keyflowtest/revoketest"
	"github.com/keyflow-dev/keyflow/sqldialect"
)

// Several server instances on one PostgreSQL database: each instance is a
// Manager with its own *sql.DB (pool), sqlstore.Store and change feed, as
// separate processes would have. Caches are made long-lived (1 minute) so
// that only the change feed can explain a change being seen in time.

type instance struct {
	db     *sql.DB
	store  *sqlstore.Store
	m      *apikey.Manager
	byHash *atomic.Int64 // the Manager's store reads
	polls  *atomic.Int64 // the change feed's successful polls
}

// countingFeed counts successful polls of a change feed.
type countingFeed struct {
	apikey.ChangeFeed
	n *atomic.Int64
}

func (c countingFeed) Changes(ctx context.Context, cursor string) ([]apikey.Hash, string, error) {
	changed, next, err := c.ChangeFeed.Changes(ctx, cursor)
	if err == nil {
		c.n.Add(1)
	}
	return changed, next, err
}

// countingStore counts ByHash calls: the Manager's cache misses.
type countingStore struct {
	apikey.Store
	n *atomic.Int64
}

func (c countingStore) ByHash(ctx context.Context, h apikey.Hash) (apikey.Record, error) {
	c.n.Add(1)
	return c.Store.ByHash(ctx, h)
}

type cluster struct {
	dsn, schema, app string
	nodes            []*instance
}

// newCluster opens n instances on a fresh schema. Their connections carry
// application_name app (unique per test), so that the test can terminate
// exactly its own sessions. dial, when set, is the address instance i
// connects through (see cutProxy).
func newCluster(t *testing.T, n int, cfg apikey.Config, addr func(i int) string) *cluster {
	t.Helper()
	_, schema := dbtest.PostgresSchema(t)
	c := &cluster{dsn: dbtest.PostgresDSN(t), schema: schema, app: "kf_" + ids.New()[:8]}
	for i := range n {
		u, err := url.Parse(c.dsn)
		require.NoError(t, err)
		q := u.Query()
		q.Set("application_name", c.app)
		q.Set("connect_timeout", "2")
		u.RawQuery = q.Encode()
		if addr != nil {
			u.Host = addr(i)
		}
		db, err := dbtest.OpenPostgresSchema(u.String(), schema)
		require.NoError(t, err)
		db.SetMaxOpenConns(6)
		t.Cleanup(func() { _ = db.Close() })
		s, err := sqlstore.New(context.Background(), db, sqlstore.Config{Dialect: sqldialect.Postgres})
		require.NoError(t, err)
		icfg := cfg
		reads, polls := new(atomic.Int64), new(atomic.Int64)
		icfg.Store, icfg.Changes = countingStore{s, reads}, countingFeed{s, polls}
		if icfg.Logger == nil {
			icfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		}
		m, err := apikey.NewManager(icfg)
		require.NoError(t, err)
		t.Cleanup(func() { _ = m.Close() })
		c.nodes = append(c.nodes, &instance{db: db, store: s, m: m, byHash: reads, polls: polls})
	}
	return c
}

var longCache = apikey.Config{CacheTTL: time.Minute, NegativeCacheTTL: time.Minute}

// waitFor polls cond every millisecond until it is true or limit passes, and
// returns how long it took.
func waitFor(limit time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	for {
		if cond() {
			return time.Since(start), true
		}
		if time.Since(start) > limit {
			return time.Since(start), false
		}
		time.Sleep(time.Millisecond)
	}
}

func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// TestMultiInstanceRevocation: 100 keys cached as valid on B and C are
// revoked on A (half deleted, half disabled); each is refused by B and C
// within 1 s. Keys created on A verify on B at once, and a key that B had
// cached as unknown verifies on B within 1 s once A imports it.
func TestMultiInstanceRevocation(t *testing.T) {
	c := newCluster(t, 3, longCache, nil)
	ctx := context.Background()
	a, b, cc := c.nodes[0].m, c.nodes[1].m, c.nodes[2].m

	const n = 100
	keys := make([]string, n)
	recs := make([]apikey.Record, n)
	for i := range n {
		var err error
		keys[i], recs[i], err = a.Create(ctx, "user", fmt.Sprintf("k%d", i), apikey.CreateOptions{})
		require.NoError(t, err)
		for _, m := range []*apikey.Manager{b, cc} { // created on A: valid on B and C at once
			_, err := m.Verify(ctx, keys[i])
			require.NoError(t, err)
		}
	}
	// The feeds report the creations too (which drops B's and C's entries
	// once); then cache every key as valid on B and C, and check that they
	// are served from the cache.
	// Wait for a poll that began after the creations, then until every
	// key is served from the cache.
	for _, nd := range c.nodes[1:] {
		p := nd.polls.Load()
		_, ok := waitFor(10*time.Second, func() bool {
			_, _ = nd.m.Verify(ctx, keys[0]) // keeps the poller awake
			return nd.polls.Load() >= p+2
		})
		require.True(t, ok, "the change feed polls")
		_, ok = waitFor(10*time.Second, func() bool {
			before := nd.byHash.Load()
			for _, k := range keys {
				_, err := nd.m.Verify(ctx, k)
				require.NoError(t, err)
			}
			return nd.byHash.Load() == before
		})
		require.True(t, ok, "B and C serve the keys from their caches")
	}

	// Revoke in 10 parallel streams of 10, measuring each key on B and C.
	lat := make([]time.Duration, 0, 2*n)
	var late time.Duration // the latest an accepting verification began after a revocation returned
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := range 10 {
		wg.Go(func() {
			for i := g; i < n; i += 10 {
				// A random moment, not in step with the feeds' polls.
				time.Sleep(rand.N(250 * time.Millisecond))
				start := time.Now()
				if i%2 == 0 {
					assert.NoError(t, a.Delete(ctx, "user", recs[i].ID))
				} else {
					assert.NoError(t, a.SetActive(ctx, "user", recs[i].ID, false))
				}
				revoked := time.Now()
				for _, m := range []*apikey.Manager{b, cc} {
					w := revoketest.Until(10*time.Second, func() bool {
						_, err := m.Verify(ctx, keys[i])
						return errors.Is(err, apikey.ErrInvalid) || errors.Is(err, apikey.ErrInactive)
					})
					assert.True(t, w.Refused, "key %d still accepted after 10 s", i)
					mu.Lock()
					lat = append(lat, w.SeenAt.Sub(start))
					late = max(late, w.AcceptedAfter(revoked))
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	p50, worst := percentile(lat, 0.5), slices.Max(lat)
	t.Logf("revocation on A refused on B and C: %d measurements, p50 %v, p99 %v, max %v; last acceptance begun %v after a revocation returned",
		len(lat), p50.Round(time.Millisecond), percentile(lat, 0.99).Round(time.Millisecond), worst.Round(time.Millisecond), late.Round(time.Millisecond))
	assert.Less(t, late, time.Second, "no verification begun more than the bound after a revocation accepts the key")

	// A negative entry on B does not outlive an import on A by more than 1 s.
	key, err := apikey.Langflow.Generate()
	require.NoError(t, err)
	_, err = b.Verify(ctx, key)
	require.ErrorIs(t, err, apikey.ErrInvalid) // now cached as unknown on B for a minute
	_, err = a.Import(ctx, "user", "imported", key, apikey.CreateOptions{})
	require.NoError(t, err)
	imported := time.Now()
	w := revoketest.Until(10*time.Second, func() bool { _, err := b.Verify(ctx, key); return err == nil })
	require.True(t, w.Refused, "accepted in the end")
	t.Logf("import on A accepted on B after %v", w.SeenAt.Sub(imported).Round(time.Millisecond))
	assert.Less(t, w.AcceptedAfter(imported), time.Second, "no verification begun more than the bound after the import refuses the key")
}

// TestMultiInstanceUsageCounts: concurrent verifications through three
// instances add up exactly in the store, and last_used_at is the latest use.
func TestMultiInstanceUsageCounts(t *testing.T) {
	cfg := longCache
	cfg.FlushInterval = 50 * time.Millisecond
	c := newCluster(t, 3, cfg, nil)
	ctx := context.Background()
	const nkeys = 20
	keys := make([]string, nkeys)
	keyIDs := make([]string, nkeys)
	for i := range nkeys {
		k, r, err := c.nodes[i%3].m.Create(ctx, "user", "k", apikey.CreateOptions{})
		require.NoError(t, err)
		keys[i], keyIDs[i] = k, r.ID
	}
	var counts [nkeys]atomic.Int64
	start := time.Now().UTC()
	var wg sync.WaitGroup
	for _, node := range c.nodes {
		for range 4 {
			wg.Go(func() {
				for range 3000 {
					i := rand.IntN(nkeys)
					if _, err := node.m.Verify(ctx, keys[i]); assert.NoError(t, err) {
						counts[i].Add(1)
					}
				}
			})
		}
	}
	wg.Wait()
	end := time.Now().UTC()
	for _, node := range c.nodes {
		require.NoError(t, node.m.Close())
	}
	recs, err := c.nodes[0].store.ListByUser(ctx, "user")
	require.NoError(t, err)
	var total int64
	for _, r := range recs {
		i := slices.Index(keyIDs, r.ID)
		require.GreaterOrEqual(t, i, 0)
		assert.Equal(t, counts[i].Load(), r.TotalUses, "key %d", i)
		total += r.TotalUses
		if counts[i].Load() > 0 {
			require.NotNil(t, r.LastUsedAt)
			assert.False(t, r.LastUsedAt.Before(start.Add(-time.Millisecond)) || r.LastUsedAt.After(end.Add(time.Millisecond)))
		}
	}
	t.Logf("%d verifications through 3 instances, all counted", total)
	assert.Equal(t, int64(3*4*3000), total)
}

// TestMultiInstanceOutage: under load on two instances, (1) every session of
// this test is killed with pg_terminate_backend, repeatedly; (2) PostgreSQL
// becomes unreachable for instance B for 2 s (longer than the 1 s bound)
// while A revokes a key B has cached. Throughout, no verification of an
// unknown or revoked key succeeds (store errors are ErrUnavailable); during
// the long outage B refuses everything with ErrUnavailable once the bound
// has passed; both recover by themselves; and no usage count is lost.
func TestMultiInstanceOutage(t *testing.T) {
	ctx := context.Background()
	u, err := url.Parse(dbtest.PostgresDSN(t))
	require.NoError(t, err)
	proxy := dbtest.NewProxy(t, u.Host)
	cfg := longCache
	cfg.FlushInterval = 100 * time.Millisecond
	c := newCluster(t, 2, cfg, func(i int) string {
		if i == 1 {
			return proxy.Addr()
		}
		return u.Host
	})
	a, b := c.nodes[0].m, c.nodes[1].m
	admin, err := dbtest.OpenPostgresSchema(c.dsn, c.schema) // another application_name
	require.NoError(t, err)
	t.Cleanup(func() { _ = admin.Close() })

	const nkeys = 10
	keys := make([]string, nkeys)
	recIDs := make([]string, nkeys)
	for i := range nkeys {
		k, r, err := a.Create(ctx, "user", "k", apikey.CreateOptions{})
		require.NoError(t, err)
		keys[i], recIDs[i] = k, r.ID
	}
	revokedKey, revoked, err := a.Create(ctx, "user", "revoked-during-outage", apikey.CreateOptions{})
	require.NoError(t, err)
	_, err = b.Verify(ctx, revokedKey)
	require.NoError(t, err) // cached as valid on B
	unknown, err := apikey.Langflow.Generate()
	require.NoError(t, err)

	var (
		counts                [nkeys]atomic.Int64
		unavailable, accepted atomic.Int64
		violations            atomic.Int64
		revokedGone           atomic.Bool // set once A's revocation committed
		stop                  = make(chan struct{})
		wg                    sync.WaitGroup
	)
	for _, m := range []*apikey.Manager{a, b} {
		for range 3 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					i := rand.IntN(nkeys)
					_, err := m.Verify(ctx, keys[i])
					switch {
					case err == nil:
						counts[i].Add(1)
						accepted.Add(1)
					case errors.Is(err, apikey.ErrUnavailable):
						unavailable.Add(1)
					default:
						t.Errorf("valid key refused with %v", err)
					}
					if _, err := m.Verify(ctx, unknown); err == nil || !errors.Is(err, apikey.ErrInvalid) && !errors.Is(err, apikey.ErrUnavailable) {
						violations.Add(1)
					}
					gone := revokedGone.Load()
					if _, err := m.Verify(ctx, revokedKey); err == nil && gone && m == a {
						violations.Add(1)
					}
					time.Sleep(100 * time.Microsecond)
				}
			})
		}
	}

	// (1) Kill this test's sessions (and only them) ten times, 50 ms apart.
	time.Sleep(200 * time.Millisecond)
	killed := 0
	for range 10 {
		var n int
		require.NoError(t, admin.QueryRowContext(ctx,
			"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1", c.app).Scan(&n))
		killed += n
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("terminated %d sessions of this test", killed)
	assert.Positive(t, killed)

	// (2) B loses the database for 2 s; meanwhile A revokes a key B cached.
	time.Sleep(300 * time.Millisecond)
	proxy.Cut()
	cutAt := time.Now()
	require.NoError(t, a.Delete(ctx, "user", revoked.ID))
	revokedGone.Store(true)
	time.Sleep(1100 * time.Millisecond) // past the bound
	for range 20 {
		_, err := b.Verify(ctx, keys[rand.IntN(nkeys)])
		require.ErrorIs(t, err, apikey.ErrUnavailable, "B is cut off for %v: it must fail closed", time.Since(cutAt))
		_, err = b.Verify(ctx, revokedKey)
		require.ErrorIs(t, err, apikey.ErrUnavailable)
	}
	newKey, _, err := a.Create(ctx, "user", "new-during-outage", apikey.CreateOptions{})
	require.NoError(t, err)
	_, err = b.Verify(ctx, newKey)
	require.ErrorIs(t, err, apikey.ErrUnavailable)
	time.Sleep(time.Until(cutAt.Add(2 * time.Second)))
	proxy.Restore()

	d, ok := waitFor(10*time.Second, func() bool {
		_, err1 := b.Verify(ctx, keys[0])
		if err1 == nil {
			counts[0].Add(1)
		}
		_, err2 := b.Verify(ctx, newKey)
		return err1 == nil && err2 == nil
	})
	require.True(t, ok, "B did not recover")
	t.Logf("B recovered %v after the database came back", d.Round(time.Millisecond))
	_, err = b.Verify(ctx, revokedKey)
	assert.ErrorIs(t, err, apikey.ErrInvalid, "the key revoked during the outage stays revoked on B")
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()

	assert.Zero(t, violations.Load(), "an unknown or revoked key was accepted")
	t.Logf("%d accepted, %d answered ErrUnavailable", accepted.Load(), unavailable.Load())
	assert.Positive(t, unavailable.Load())
	require.NoError(t, a.Close())
	require.Eventually(t, func() bool { return b.Close() == nil }, 10*time.Second, 100*time.Millisecond)
	recs, err := c.nodes[0].store.ListByUser(ctx, "user")
	require.NoError(t, err)
	var counted, stored int64
	for _, r := range recs {
		if i := slices.Index(recIDs, r.ID); i >= 0 {
			// No count is lost, and none counted twice (a flush whose
			// COMMIT reply was cut off is resent under the same batch ID).
			assert.Equal(t, counts[i].Load(), r.TotalUses, "key %d: usage counted during the outages", i)
			counted += counts[i].Load()
			stored += r.TotalUses
		}
	}
	t.Logf("uses: %d verified, %d stored", counted, stored)
}

// TestMultiInstanceSQLite: two processes on one SQLite file (each its own
// *sql.DB, Store and Manager) see each other's revocations within the bound,
// through the change log alone.
func TestMultiInstanceSQLite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "shared.db")
	var ms []*apikey.Manager
	var reads []*atomic.Int64
	for range 2 {
		db, err := dbtest.OpenSQLite(path)
		require.NoError(t, err)
		t.Cleanup(func() { _ = db.Close() })
		s, err := sqlstore.New(ctx, db, sqlstore.Config{Dialect: sqldialect.SQLite})
		require.NoError(t, err)
		cfg := longCache
		n := new(atomic.Int64)
		cfg.Store, cfg.Changes, cfg.Logger = countingStore{s, n}, s, slog.New(slog.NewTextHandler(io.Discard, nil))
		m, err := apikey.NewManager(cfg)
		require.NoError(t, err)
		t.Cleanup(func() { _ = m.Close() })
		ms, reads = append(ms, m), append(reads, n)
	}
	a, b := ms[0], ms[1]
	const n = 50
	keys := make([]string, n)
	recs := make([]apikey.Record, n)
	for i := range n {
		var err error
		keys[i], recs[i], err = a.Create(ctx, "user", "k", apikey.CreateOptions{})
		require.NoError(t, err)
	}
	// B's feed reports the creations (dropping what B cached of them): wait
	// until every key is served from B's cache.
	_, ok := waitFor(10*time.Second, func() bool {
		before := reads[1].Load()
		for _, k := range keys {
			_, err := b.Verify(ctx, k)
			require.NoError(t, err)
		}
		time.Sleep(50 * time.Millisecond)
		return reads[1].Load() == before
	})
	require.True(t, ok)
	lat := make([]time.Duration, 0, n)
	var late time.Duration
	for i := range n {
		time.Sleep(rand.N(50 * time.Millisecond))
		start := time.Now()
		if i%2 == 0 {
			require.NoError(t, a.Delete(ctx, "user", recs[i].ID))
		} else {
			require.NoError(t, a.SetActive(ctx, "user", recs[i].ID, false))
		}
		revoked := time.Now()
		w := revoketest.Until(10*time.Second, func() bool {
			_, err := b.Verify(ctx, keys[i])
			return errors.Is(err, apikey.ErrInvalid) || errors.Is(err, apikey.ErrInactive)
		})
		require.True(t, w.Refused, "key %d still accepted after 10 s", i)
		lat = append(lat, w.SeenAt.Sub(start))
		late = max(late, w.AcceptedAfter(revoked))
	}
	t.Logf("SQLite, two processes: revocation on A refused on B: p50 %v, max %v; last acceptance begun %v after a revocation returned",
		percentile(lat, 0.5).Round(time.Millisecond), slices.Max(lat).Round(time.Millisecond), late.Round(time.Millisecond))
	assert.Less(t, late, time.Second, "no verification begun more than the bound after a revocation accepts the key")
}
