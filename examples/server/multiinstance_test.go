package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/examples/server/internal/config"
	"github.com/keyflow-dev/keyflow/examples/server/internal/flows"
	"github.com/keyflow-dev/keyflow/examples/server/internal/httpapi"
	"github.com/keyflow-dev/keyflow/examples/server/internal/httpserver"
	"github.com/keyflow-dev/keyflow/examples/server/internal/startup"
	"github.com/keyflow-dev/keyflow/keyflowtest/dbtest"
	"github.com/keyflow-dev/keyflow/keyflowtest/revoketest"
	"github.com/keyflow-dev/keyflow/middleware"
	"github.com/keyflow-dev/keyflow/variables"
)

// Several instances of the server on one PostgreSQL database, in this
// process: each has its own config dir, pool, caches and change feed, and
// all share LANGFLOW_SECRET_KEY, as the README's "Running several instances"
// asks.

const sharedSecret = "multi-instance-test-secret-0123456789"

// sharedDatabase returns the --database-url of a fresh PostgreSQL schema.
func sharedDatabase(t *testing.T) string {
	t.Helper()
	_, schema := dbtest.PostgresSchema(t)
	dsn := dbtest.PostgresDSN(t)
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + "search_path=" + schema
}

func instanceConfig(t *testing.T, dbURL string) config.Config {
	return config.Config{
		ConfigDir:    t.TempDir(),
		DatabaseURL:  dbURL,
		Host:         "127.0.0.1",
		Auth:         middleware.Config{AutoLogin: false},
		ChangeMaxLag: time.Second,
		Getenv: func(name string) string {
			if name == "LANGFLOW_SECRET_KEY" {
				return sharedSecret
			}
			return ""
		},
	}
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func startInstance(t *testing.T, dbURL string) (*startup.App, *httptest.Server) {
	t.Helper()
	a, err := openApp(context.Background(), instanceConfig(t, dbURL), quietLog())
	require.NoError(t, err)
	t.Cleanup(func() { _ = a.Close() })
	h, err := httpserver.Handler(a, nil)
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return a, srv
}

// TestInstancesStartTogether: instances starting at once on a fresh database
// (PostgreSQL, or one SQLite file) create every schema (the server's tables,
// API keys, variables), the superuser and the demo flow exactly once, without
// errors; and a key revoked on one is refused by the others within the bound.
func TestInstancesStartTogether(t *testing.T) {
	for _, tc := range []struct {
		name  string
		dbURL func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return "sqlite:///" + filepath.Join(t.TempDir(), "shared.db") }},
		{"postgres", sharedDatabase},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dbURL := tc.dbURL(t)
			const n = 4
			apps := make([]*startup.App, n)
			errs := make([]error, n)
			flows := make([]string, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Go(func() {
					<-start
					if apps[i], errs[i] = openApp(context.Background(), instanceConfig(t, dbURL), quietLog()); errs[i] != nil {
						return
					}
					unlock, err := apps[i].StartupLock(context.Background())
					if errs[i] = err; err != nil {
						return
					}
					f, _, err := apps[i].Flows.EnsureEcho(context.Background(), apps[i].Superuser.ID)
					unlock()
					flows[i], errs[i] = f.ID, err
				})
			}
			close(start)
			wg.Wait()
			for i := range n {
				if apps[i] != nil {
					t.Cleanup(func() { _ = apps[i].Close() })
				}
			}
			for i := range n {
				require.NoError(t, errs[i], "instance %d", i)
			}
			ctx := context.Background()
			users, err := apps[0].Users.Store.All(ctx)
			require.NoError(t, err)
			require.Len(t, users, 1)
			for i, a := range apps {
				assert.Equal(t, users[0].ID, a.Superuser.ID)
				assert.Equal(t, flows[0], flows[i], "one demo flow")
			}

			// Every instance has the key cached; revoked on the first, it is
			// refused by the others within the bound.
			key, rec, err := apps[0].Keys.Create(ctx, users[0].ID, "k", apikey.CreateOptions{})
			require.NoError(t, err)
			for _, a := range apps {
				_, err := a.Keys.Verify(ctx, key)
				require.NoError(t, err)
			}
			require.NoError(t, apps[0].Keys.Delete(ctx, users[0].ID, rec.ID))
			revoked := time.Now()
			for i, a := range apps[1:] {
				w := revoketest.Until(10*time.Second, func() bool {
					_, err := a.Keys.Verify(ctx, key)
					return errors.Is(err, apikey.ErrInvalid)
				})
				require.True(t, w.Refused, "instance %d", i+1)
				assert.Less(t, w.AcceptedAfter(revoked), time.Second, "instance %d", i+1)
			}
		})
	}
}

func get(t *testing.T, srv *httptest.Server, method, path, key string) int {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	require.NoError(t, err)
	req.Header.Set("x-api-key", key)
	res, err := srv.Client().Do(req)
	require.NoError(t, err)
	_ = res.Body.Close()
	return res.StatusCode
}

// TestInstancesShareKeysAndVariables: a key created on A works on B at once
// and, revoked or disabled on A, is refused by B within 1 s (measured over
// 100 revocations); a stored
// variable created, changed or deleted on A is what B's resolver gives at
// once, because the resolver reads the store on every run (no cache).
func TestInstancesShareKeysAndVariables(t *testing.T) {
	ctx := context.Background()
	dbURL := sharedDatabase(t)
	a, srvA := startInstance(t, dbURL)
	b, srvB := startInstance(t, dbURL)

	key, rec, err := a.Keys.Create(ctx, a.Superuser.ID, "shared", apikey.CreateOptions{})
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, get(t, srvB, "GET", "/api/v1/flows/", key), "created on A, valid on B at once")
	assert.Equal(t, http.StatusOK, get(t, srvB, "GET", "/api/v1/flows/", key), "cached on B")

	require.Equal(t, http.StatusOK, get(t, srvA, "DELETE", "/api/v1/api_key/"+rec.ID, key))
	require.Eventually(t, func() bool {
		return get(t, srvB, "GET", "/api/v1/flows/", key) == http.StatusForbidden
	}, time.Second, 2*time.Millisecond, "revoked through A's API, refused by B within 1 s")

	// The bound over 100 revocations through A's API (half deleted, half
	// disabled), each watched on B, in 10 streams at random moments.
	const n = 100
	keys := make([]string, n)
	ids := make([]string, n)
	for i := range n {
		k, r, err := a.Keys.Create(ctx, a.Superuser.ID, "k", apikey.CreateOptions{})
		require.NoError(t, err)
		keys[i], ids[i] = k, r.ID
	}
	time.Sleep(300 * time.Millisecond) // B's feed reports the creations (dropping nothing cached yet)
	for _, k := range keys {
		require.Equal(t, http.StatusOK, get(t, srvB, "GET", "/api/v1/flows/", k))
	}
	lat := make([]time.Duration, n)
	var (
		mu   sync.Mutex
		late time.Duration // the latest an accepted request began after a revocation returned
		wg   sync.WaitGroup
	)
	for g := range 10 {
		wg.Go(func() {
			for i := g; i < n; i += 10 {
				time.Sleep(rand.N(250 * time.Millisecond))
				start := time.Now()
				if i%2 == 0 {
					assert.Equal(t, http.StatusOK, get(t, srvA, "DELETE", "/api/v1/api_key/"+ids[i], keys[i]))
				} else {
					assert.NoError(t, a.Keys.SetActive(ctx, a.Superuser.ID, ids[i], false))
				}
				revoked := time.Now()
				w := revoketest.Until(10*time.Second, func() bool { return get(t, srvB, "GET", "/api/v1/flows/", keys[i]) != http.StatusOK })
				assert.True(t, w.Refused, "key %d still accepted after 10 s", i)
				lat[i] = w.SeenAt.Sub(start)
				mu.Lock()
				late = max(late, w.AcceptedAfter(revoked))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(lat)
	t.Logf("100 revocations on A refused by B over HTTP: p50 %v, p99 %v, max %v; last acceptance begun %v after a revocation returned",
		lat[n/2].Round(time.Millisecond), lat[n*99/100].Round(time.Millisecond), lat[n-1].Round(time.Millisecond), late.Round(time.Millisecond))
	assert.Less(t, late, time.Second, "no request begun more than the bound after a revocation is accepted")

	// Variables: each instance caches a user's variables behind the
	// variable store's change log (pushed on PostgreSQL): a variable
	// created, changed or deleted on A is resolved so on A at once, and on
	// B by every run begun more than the 1 s bound after A's call returned.
	field := []variables.Field{{Name: "api_key", Variable: "SHARED_TOKEN"}}
	resolveOn := func(app *startup.App) variables.Resolution {
		res, err := app.Resolver.Resolve(ctx, app.Superuser.ID, field, nil)
		require.NoError(t, err)
		return res[0]
	}
	seenOnB := func(what string, changed time.Time, want func(variables.Resolution) bool) {
		t.Helper()
		assert.True(t, want(resolveOn(a)), "%s: on A at once", what)
		w := revoketest.Until(10*time.Second, func() bool { return want(resolveOn(b)) })
		require.True(t, w.Refused, "%s: never seen on B", what)
		assert.Less(t, w.AcceptedAfter(changed), time.Second, "%s: seen on B within the bound", what)
		t.Logf("variable %s on A seen on B %v after the call returned", what, w.SeenAt.Sub(changed).Round(time.Millisecond))
	}
	assert.Equal(t, variables.LayerNone, resolveOn(b).Layer)
	v, err := a.Vars.Create(ctx, a.Superuser.ID, variables.CreateInput{Name: "SHARED_TOKEN", Value: "one", Type: variables.Credential})
	require.NoError(t, err)
	seenOnB("created", time.Now(), func(r variables.Resolution) bool {
		return r.Layer == variables.LayerStored && r.Value == "one" // decrypted on B with the shared secret
	})
	two := "two"
	_, err = a.Vars.Update(ctx, a.Superuser.ID, v.ID, variables.Patch{Value: &two})
	require.NoError(t, err)
	seenOnB("changed", time.Now(), func(r variables.Resolution) bool { return r.Value == "two" })
	require.NoError(t, a.Vars.Delete(ctx, a.Superuser.ID, v.ID))
	seenOnB("deleted", time.Now(), func(r variables.Resolution) bool { return r.Layer == variables.LayerNone })

	// And through B's HTTP API: the flow A created runs on B at once (a
	// flow not in B's cache is read from the table), and B's list, cached
	// for 1 s, shows it within the bound.
	key2, _, err := a.Keys.Create(ctx, a.Superuser.ID, "runner", apikey.CreateOptions{})
	require.NoError(t, err)
	listOnB := func() string {
		req, err := http.NewRequest("GET", srvB.URL+"/api/v1/flows/", nil)
		require.NoError(t, err)
		req.Header.Set("x-api-key", key2)
		res, err := srvB.Client().Do(req)
		require.NoError(t, err)
		defer func() { _ = res.Body.Close() }()
		body, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, res.StatusCode, string(body))
		return string(body)
	}
	listOnB() // B caches the user's flows
	f, err := a.Flows.Create(ctx, a.Superuser.ID, "Shared", "", map[string]flows.Field{"api_key": {Variable: "SHARED_TOKEN"}})
	require.NoError(t, err)
	created := time.Now()
	w := revoketest.Until(10*time.Second, func() bool { return strings.Contains(listOnB(), f.ID) })
	require.True(t, w.Refused, "the flow never listed on B")
	assert.Less(t, w.AcceptedAfter(created), time.Second, "listed on B within the bound")
	_, err = a.Vars.Create(ctx, a.Superuser.ID, variables.CreateInput{Name: "SHARED_TOKEN", Value: "three", Type: variables.Credential})
	require.NoError(t, err)
	created = time.Now()
	runOnB := func() string {
		req, err := http.NewRequest("POST", srvB.URL+"/api/v1/run/"+f.ID, strings.NewReader(`{"inputs": {"text": "hi"}}`))
		require.NoError(t, err)
		req.Header.Set("x-api-key", key2)
		req.Header.Set("Content-Type", "application/json")
		res, err := srvB.Client().Do(req)
		require.NoError(t, err)
		defer func() { _ = res.Body.Close() }()
		require.Equal(t, http.StatusOK, res.StatusCode)
		var out struct {
			Fields map[string]struct{ Source string } `json:"fields"`
		}
		require.NoError(t, json.NewDecoder(res.Body).Decode(&out))
		return out.Fields["api_key"].Source
	}
	w = revoketest.Until(10*time.Second, func() bool { return runOnB() == "stored" })
	require.True(t, w.Refused, "the variable never reached B's runs")
	assert.Less(t, w.AcceptedAfter(created), time.Second, "B's runs see the variable within the bound")
}

// TestInstanceDatabaseOutage: instance B loses PostgreSQL for 2 s while A
// keeps it. B answers 503 for keys it has not cached at once, and for every
// key once the 1 s bound has passed — never 200 for a key it could not check
// — keeps running, recovers by itself, and writes the usage it counted
// meanwhile when the database is back.
func TestInstanceDatabaseOutage(t *testing.T) {
	ctx := context.Background()
	dbURL := sharedDatabase(t)
	proxy, viaProxy := dbtest.ProxyURL(t, dbURL)

	a, _ := startInstance(t, dbURL)
	bApp, err := openApp(ctx, instanceConfig(t, viaProxy), quietLog())
	require.NoError(t, err)
	t.Cleanup(func() { _ = bApp.Close() })
	h, err := httpserver.Handler(bApp, nil)
	require.NoError(t, err)
	srvB := httptest.NewServer(h)
	t.Cleanup(srvB.Close)

	key, rec, err := a.Keys.Create(ctx, a.Superuser.ID, "k", apikey.CreateOptions{})
	require.NoError(t, err)
	time.Sleep(300 * time.Millisecond) // B's feed has seen the creation
	ok := 0
	check := func(k string) int {
		req, err := http.NewRequest("GET", srvB.URL+"/api/v1/flows/", nil)
		require.NoError(t, err)
		req.Header.Set("x-api-key", k)
		res, err := srvB.Client().Do(req)
		require.NoError(t, err)
		var body struct {
			Detail string `json:"detail"`
		}
		_ = json.NewDecoder(res.Body).Decode(&body) // a list when 200
		_ = res.Body.Close()
		// 503 with the handler's message: authenticated (a use), then the
		// handler's own query failed. The middleware's 503 (key not
		// verified) says "Authentication service unavailable" and counts no use.
		handlerFailed := res.StatusCode == http.StatusServiceUnavailable && body.Detail == httpapi.MsgStoreUnavailable
		if (res.StatusCode == http.StatusOK || handlerFailed) && k == key {
			ok++
		}
		return res.StatusCode
	}
	require.Equal(t, http.StatusOK, check(key))

	proxy.Cut()
	cutAt := time.Now()
	newKey, _, err := a.Keys.Create(ctx, a.Superuser.ID, "new", apikey.CreateOptions{})
	require.NoError(t, err)
	unknown, err := apikey.Langflow.Generate()
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, check(newKey), "not cached: 503")
	assert.Equal(t, http.StatusServiceUnavailable, check(unknown), "unknown, unchecked: 503, not 403")
	for time.Since(cutAt) < 900*time.Millisecond {
		code := check(key)
		require.Contains(t, []int{http.StatusOK, http.StatusServiceUnavailable}, code)
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Until(cutAt.Add(1100 * time.Millisecond)))
	for range 5 {
		assert.Equal(t, http.StatusServiceUnavailable, check(key), "past the bound: cached keys are not trusted")
	}
	time.Sleep(time.Until(cutAt.Add(2 * time.Second)))
	proxy.Restore()

	require.Eventually(t, func() bool {
		return check(key) == http.StatusOK && check(newKey) == http.StatusOK
	}, 10*time.Second, 20*time.Millisecond, "B recovers by itself")
	assert.Equal(t, http.StatusForbidden, check(unknown))
	require.NoError(t, bApp.Close()) // flushes B's counts
	require.NoError(t, a.Keys.Flush(ctx))
	recs, err := a.Keys.List(ctx, a.Superuser.ID)
	require.NoError(t, err)
	for _, r := range recs {
		if r.ID == rec.ID {
			assert.Equal(t, int64(ok), r.TotalUses, "every use on B was counted")
		}
	}
	t.Logf("B authenticated the key %d times, all counted", ok)
}

// TestChangeMaxLagSetting: --change-max-lag over KEYFLOW_CHANGE_MAX_LAG over
// the default (1 s); 0 turns the feed off.
func TestChangeMaxLagSetting(t *testing.T) {
	for _, tc := range []struct {
		name, flag, env string
		want            time.Duration
		wantErr         bool
	}{
		{"default", "", "", time.Second, false},
		{"environment", "", "500ms", 500 * time.Millisecond, false},
		{"flag over environment", "2s", "500ms", 2 * time.Second, false},
		{"off", "0", "", 0, false},
		{"too short", "10ms", "", 0, true},
		{"negative", "-1s", "", 0, true},
		{"not a duration", "", "soon", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("KEYFLOW_CHANGE_MAX_LAG", tc.env)
			cfg, err := config.Load(config.Flags{ConfigDir: t.TempDir(), DefaultLevel: "info", ChangeMaxLag: tc.flag}, nil, nil)
			if tc.wantErr {
				require.Error(t, err)
				assert.Contains(t, err.Error(), "change max lag")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, cfg.ChangeMaxLag)
		})
	}
}
