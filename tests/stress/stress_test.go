// Package stress runs keyflow's moving parts at once under the race
// detector: API keys created, verified (directly and through the
// middleware) and revoked, usage flushed in the background, variables
// updated while the master secret is rotated again and again with
// secrets.Reencrypt. Invariants are checked during the run and at the end.
//
//	go test -race ./tests/stress/                                  # 10 s (+ 5 s per SQL database)
//	KEYFLOW_STRESS_DURATION=2s go test -race ./tests/stress/       # shorter (or -short)
//	go test -race ./tests/stress/ -stress.duration=1m              # longer
package stress

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey"
	keysql "github.com/keyflow-dev/keyflow/apikey/sqlstore"
	"github.com/keyflow-dev/keyflow/keyflowtest/dbtest"
	"github.com/keyflow-dev/keyflow/middleware"
	"github.com/keyflow-dev/keyflow/secrets"
	"github.com/keyflow-dev/keyflow/sqldialect"
	"github.com/keyflow-dev/keyflow/variables"
	varsql "github.com/keyflow-dev/keyflow/variables/sqlstore"
)

var durationFlag = flag.Duration("stress.duration", 0,
	"how long the stress test runs (default: $KEYFLOW_STRESS_DURATION, else 10s; 2s with -short)")

func duration(t *testing.T) time.Duration {
	if *durationFlag > 0 {
		return *durationFlag
	}
	if v := os.Getenv("KEYFLOW_STRESS_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		require.NoError(t, err, "KEYFLOW_STRESS_DURATION")
		return d
	}
	if testing.Short() {
		return 2 * time.Second
	}
	return 10 * time.Second
}

// Key states, in order.
const (
	live int32 = iota
	revoking
	revoked
)

type trackedKey struct {
	key, id, user string
	state         atomic.Int32
	uses          atomic.Int64 // successful verifications
}

type keySet struct {
	mu   sync.RWMutex
	keys []*trackedKey
}

func (s *keySet) add(k *trackedKey) {
	s.mu.Lock()
	s.keys = append(s.keys, k)
	s.mu.Unlock()
}

func (s *keySet) pick(rng *rand.Rand) *trackedKey {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.keys) == 0 {
		return nil
	}
	return s.keys[rng.IntN(len(s.keys))]
}

func (s *keySet) all() []*trackedKey {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]*trackedKey(nil), s.keys...)
}

// trackedVar is a variable with one writer, so its last written value is
// known.
type trackedVar struct {
	user, id, name string
	mu             sync.Mutex
	last           string
}

// rotation holds the current Service (its keyring) and every secret used.
type rotation struct {
	mu      sync.RWMutex
	svc     *variables.Service
	keyring *secrets.Keyring
	secrets []string // the primary, then the previous one
}

func (r *rotation) current() (*variables.Service, *secrets.Keyring) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.svc, r.keyring
}

// TestStress runs the scenario on the memory stores for the whole duration,
// then on the SQL stores over SQLite (and PostgreSQL when
// KEYFLOW_TEST_POSTGRES_DSN is set) for half of it each.
func TestStress(t *testing.T) {
	d := duration(t)
	t.Run("memory", func(t *testing.T) {
		stress(t, d, apikey.NewMemoryStore(), variables.NewMemoryStore())
	})
	sqlRun := func(t *testing.T, db *sql.DB, pg bool) {
		ctx := context.Background()
		kd, vd := sqldialect.SQLite, sqldialect.SQLite
		if pg {
			kd, vd = sqldialect.Postgres, sqldialect.Postgres
		}
		ks, err := keysql.New(ctx, db, keysql.Config{Dialect: kd})
		require.NoError(t, err)
		vs, err := varsql.New(ctx, db, varsql.Config{Dialect: vd})
		require.NoError(t, err)
		stress(t, d/2, ks, vs)
	}
	t.Run("sqlite", func(t *testing.T) { sqlRun(t, dbtest.SQLite(t), false) })
	t.Run("postgres", func(t *testing.T) { sqlRun(t, dbtest.Postgres(t), true) })
}

func stress(t *testing.T, d time.Duration, keyStore apikey.Store, store variables.Store) {
	ctx := context.Background()

	keys, err := apikey.NewManager(apikey.Config{Store: keyStore, FlushInterval: 50 * time.Millisecond, CacheTTL: time.Second})
	require.NoError(t, err)
	mw, err := middleware.New(middleware.Config{Verifier: keys})
	require.NoError(t, err)
	handler := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := middleware.FromContext(r.Context())
		w.Header().Set("X-User", p.UserID)
		w.Header().Set("X-Key", p.KeyID)
	}))

	rot := &rotation{secrets: []string{secrets.GenerateSecret()}}
	rot.keyring, err = secrets.NewKeyring(rot.secrets[0])
	require.NoError(t, err)
	rot.svc, err = variables.NewService(variables.ServiceConfig{Store: store, Keyring: rot.keyring})
	require.NoError(t, err)

	users := []string{"u0", "u1", "u2", "u3"}
	var vars []*trackedVar
	for _, u := range users {
		for i := range 6 {
			typ := variables.Credential
			if i%3 == 2 {
				typ = variables.Generic
			}
			name := fmt.Sprintf("VAR_%d", i)
			val := fmt.Sprintf("%s-%s-initial", u, name)
			v, err := rot.svc.Create(ctx, u, variables.CreateInput{Name: name, Value: val, Type: typ})
			require.NoError(t, err)
			vars = append(vars, &trackedVar{user: u, id: v.ID, name: name, last: val})
		}
	}

	set := &keySet{}
	var (
		stop       atomic.Bool
		wg         sync.WaitGroup
		violations atomic.Int64
		created    atomic.Int64
		verified   atomic.Int64
		updates    atomic.Int64
		conflicts  atomic.Int64
		rotations  atomic.Int64
	)
	violate := func(format string, args ...any) {
		violations.Add(1)
		t.Errorf(format, args...)
	}
	worker := func(seed uint64, fn func(rng *rand.Rand)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, seed))
			for !stop.Load() {
				fn(rng)
			}
		}()
	}

	// Creator.
	worker(1, func(rng *rand.Rand) {
		u := users[rng.IntN(len(users))]
		key, rec, err := keys.Create(ctx, u, "stress", apikey.CreateOptions{})
		if err != nil {
			violate("create: %v", err)
			return
		}
		set.add(&trackedKey{key: key, id: rec.ID, user: u})
		created.Add(1)
		time.Sleep(time.Millisecond)
	})
	// Revoker: about one key in three.
	worker(2, func(rng *rand.Rand) {
		k := set.pick(rng)
		if k == nil || rng.IntN(3) != 0 || !k.state.CompareAndSwap(live, revoking) {
			time.Sleep(time.Millisecond)
			return
		}
		if err := keys.Delete(ctx, k.user, k.id); err != nil {
			violate("delete: %v", err)
		}
		k.state.Store(revoked)
		time.Sleep(2 * time.Millisecond)
	})
	// Verifiers: the state before and after the call decides what is
	// allowed. Revoked before the call: must fail. Live throughout: must pass.
	check := func(k *trackedKey, before int32, ok bool, user, keyID string, err error) {
		after := k.state.Load()
		switch {
		case ok && (user != k.user || keyID != k.id):
			violate("key %s verified as %s/%s", k.id, user, keyID)
		case ok && before == revoked:
			violate("revoked key %s accepted", k.id)
		case !ok && before == live && after == live:
			violate("live key %s refused: %v", k.id, err)
		}
		if ok {
			k.uses.Add(1)
			verified.Add(1)
		}
	}
	for i := range 2 {
		worker(uint64(10+i), func(rng *rand.Rand) {
			k := set.pick(rng)
			if k == nil {
				time.Sleep(time.Millisecond)
				return
			}
			before := k.state.Load()
			p, err := keys.Verify(ctx, k.key)
			if err != nil && !errors.Is(err, apikey.ErrInvalid) {
				violate("verify: unexpected error %v", err)
			}
			check(k, before, err == nil, p.UserID, p.KeyID, err)
		})
	}
	worker(12, func(rng *rand.Rand) {
		k := set.pick(rng)
		if k == nil {
			time.Sleep(time.Millisecond)
			return
		}
		before := k.state.Load()
		r := httptest.NewRequest(http.MethodGet, "/x?x-api-key="+k.key, nil)
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, r)
		if w.Code != http.StatusOK && w.Code != http.StatusForbidden {
			violate("middleware answered %d", w.Code)
		}
		check(k, before, w.Code == http.StatusOK, w.Header().Get("X-User"), w.Header().Get("X-Key"), fmt.Errorf("status %d", w.Code))
	})
	// Variable writers: each owns half of the variables.
	for i := range 2 {
		owned := []*trackedVar{}
		for j, v := range vars {
			if j%2 == i {
				owned = append(owned, v)
			}
		}
		seq := 0
		worker(uint64(20+i), func(rng *rand.Rand) {
			v := owned[rng.IntN(len(owned))]
			seq++
			val := fmt.Sprintf("%s-%s-%d-%d", v.user, v.name, i, seq)
			// An operation holds the read lock: the rotator publishes a new
			// keyring only when no operation still uses the old one, as the
			// runbook has every instance know the new secret before any value
			// is re-encrypted under it (secrets package doc).
			rot.mu.RLock()
			defer rot.mu.RUnlock()
			svc := rot.svc
			_, err := svc.Update(ctx, v.user, v.id, variables.Patch{Value: &val})
			switch {
			case err == nil:
				v.mu.Lock()
				v.last = val
				v.mu.Unlock()
				updates.Add(1)
			case errors.Is(err, variables.ErrConflict):
				conflicts.Add(1) // five concurrent rotations in a row: nothing written
			default:
				violate("update %s: %v", v.name, err)
			}
			// Readers see a value that was written at some point.
			if got, err := svc.Value(ctx, v.user, v.name); err != nil || got == "" {
				violate("value %s: %q, %v", v.name, got, err)
			}
		})
	}
	// Rotator: a new master secret every 200 ms, with the previous one kept
	// for decryption; Reencrypt under it. The secret before the previous one
	// is dropped: the last Reencrypt moved every value off it, so a value
	// still under it would be a lost rotation and fail to open.
	worker(30, func(rng *rand.Rand) {
		time.Sleep(200 * time.Millisecond)
		rot.mu.Lock()
		next := []string{secrets.GenerateSecret(), rot.secrets[0]}
		k, err := secrets.NewKeyring(next[0], next[1:]...)
		if err != nil {
			rot.mu.Unlock()
			violate("keyring: %v", err)
			return
		}
		svc, err := variables.NewService(variables.ServiceConfig{Store: store, Keyring: k})
		if err != nil {
			rot.mu.Unlock()
			violate("service: %v", err)
			return
		}
		rot.svc, rot.keyring, rot.secrets = svc, k, next
		rot.mu.Unlock()
		rep, err := secrets.Reencrypt(ctx, k, store, secrets.ReencryptOptions{BatchSize: 1 + rng.IntN(10)})
		if err != nil || rep.Failed != 0 {
			violate("reencrypt: %+v, %v", rep, err)
		}
		rotations.Add(1)
	})

	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	require.NoError(t, keys.Close())
	t.Logf("%v: %d keys created, %d successful verifications, %d variable updates (%d gave up on conflicts), %d rotations",
		d, created.Load(), verified.Load(), updates.Load(), conflicts.Load(), rotations.Load())
	require.Zero(t, violations.Load())
	require.Positive(t, created.Load())
	require.Positive(t, verified.Load())
	require.Positive(t, updates.Load())
	require.Positive(t, rotations.Load())

	// Keys: every revoked key refused, every live key verifies, and the
	// usage totals written by Close equal the successful verifications.
	byUser := map[string]map[string]apikey.Record{}
	for _, u := range users {
		recs, err := keys.List(ctx, u)
		require.NoError(t, err)
		byUser[u] = map[string]apikey.Record{}
		for _, r := range recs {
			byUser[u][r.ID] = r
		}
	}
	for _, k := range set.all() {
		rec, stored := byUser[k.user][k.id]
		_, err := keys.Verify(ctx, k.key)
		if k.state.Load() == revoked {
			assert.False(t, stored, "revoked key %s still stored", k.id)
			assert.ErrorIs(t, err, apikey.ErrInvalid, "revoked key %s", k.id)
			continue
		}
		require.True(t, stored, "live key %s lost", k.id)
		assert.NoError(t, err, "live key %s", k.id)
		assert.Equal(t, k.uses.Load(), rec.TotalUses, "usage of key %s", k.id)
	}

	// Variables: every value opens with the final keyring to its last
	// written value; after a quiet Reencrypt, with the final secret alone.
	svc, k := rot.current()
	for _, v := range vars {
		got, err := svc.Value(ctx, v.user, v.name)
		require.NoError(t, err)
		assert.Equal(t, v.last, got, "variable %s of %s", v.name, v.user)
	}
	rep, err := secrets.Reencrypt(ctx, k, store, secrets.ReencryptOptions{})
	require.NoError(t, err)
	assert.Zero(t, rep.Failed+rep.Skipped)
	alone, err := secrets.NewKeyring(rot.secrets[0])
	require.NoError(t, err)
	final, err := variables.NewService(variables.ServiceConfig{Store: store, Keyring: alone})
	require.NoError(t, err)
	for _, v := range vars {
		got, err := final.Value(ctx, v.user, v.name)
		require.NoError(t, err, "variable %s of %s does not open with the final secret alone", v.name, v.user)
		assert.Equal(t, v.last, got)
	}
}
