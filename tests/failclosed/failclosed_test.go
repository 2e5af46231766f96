// Package failclosed checks that keyflow fails closed when its stores fail:
// verification, the middleware, the management handlers, variables and
// re-encryption, each on stores wrapped by keyflowtest/faultstore.
package failclosed_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/apikey/apikeyhttp"
	"github.com/keyflow-dev/keyflow/keyflowtest"
	"github.com/keyflow-dev/keyflow/keyflowtest/faultstore"
	"github.com/keyflow-dev/keyflow/middleware"
	"github.com/keyflow-dev/keyflow/secrets"
	"github.com/keyflow-dev/keyflow/variables"
	"github.com/keyflow-dev/keyflow/variables/variableshttp"
)

// keySetup is a Manager over a faulty memory store, with a live, a revoked
// and a disabled key of user u1.
type keySetup struct {
	inj                     *faultstore.Injector
	store                   *faultstore.KeyStore
	m                       *apikey.Manager
	log                     *keyflowtest.LogBuffer
	live, revoked, disabled string
}

func newKeySetup(t *testing.T, cfg apikey.Config) *keySetup {
	t.Helper()
	ks := &keySetup{inj: faultstore.New(7)}
	ks.store = faultstore.Keys(apikey.NewMemoryStore(), ks.inj)
	var logger *slog.Logger
	logger, ks.log = keyflowtest.NewLogger()
	cfg.Store, cfg.Logger = ks.store, logger
	cfg.FlushInterval = -1
	m, err := apikey.NewManager(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })
	ks.m = m
	ctx := context.Background()
	ks.live, _, err = m.Create(ctx, "u1", "live", apikey.CreateOptions{})
	require.NoError(t, err)
	var rec apikey.Record
	ks.revoked, rec, err = m.Create(ctx, "u1", "revoked", apikey.CreateOptions{})
	require.NoError(t, err)
	require.NoError(t, m.Delete(ctx, "u1", rec.ID))
	ks.disabled, rec, err = m.Create(ctx, "u1", "disabled", apikey.CreateOptions{})
	require.NoError(t, err)
	require.NoError(t, m.SetActive(ctx, "u1", rec.ID, false))
	return ks
}

func (ks *keySetup) keys() []string { return []string{ks.live, ks.revoked, ks.disabled} }

// A store error never authenticates: with 30 % of reads failing and no cache,
// a revoked, disabled or unknown key is never accepted, the live key is
// either accepted or refused with ErrUnavailable, and nothing panics.
func TestVerifyFailsClosed(t *testing.T) {
	ks := newKeySetup(t, apikey.Config{CacheSize: -1})
	ks.inj.SetFailRate(0.3)
	unknown, err := apikey.Langflow.Generate()
	require.NoError(t, err)
	ctx := context.Background()
	var ok, unavailable int
	for i := range 3000 {
		for j, key := range append(ks.keys(), unknown) {
			p, err := ks.m.Verify(ctx, key)
			switch {
			case j == 0 && err == nil:
				ok++
				assert.Equal(t, "u1", p.UserID)
			case err == nil:
				t.Fatalf("call %d: key %d accepted", i, j)
			case errors.Is(err, apikey.ErrUnavailable):
				unavailable++
				assert.ErrorIs(t, err, faultstore.ErrInjected, "the cause is wrapped")
				assert.Empty(t, p, "no principal with an error")
				assert.NotContains(t, err.Error(), key)
			case j == 0:
				t.Fatalf("live key refused with %v", err)
			}
		}
	}
	assert.Positive(t, ok)
	assert.Positive(t, unavailable)
	assert.Positive(t, ks.inj.Failures())
}

// Store down: a cache miss is ErrUnavailable; a cached verdict is served
// until its TTL (documented in apikey.Config.CacheTTL): a cached positive
// keeps working, a cached negative keeps being refused, and once the
// positive entry expires the key is refused with ErrUnavailable.
func TestVerifyStoreDownWithCache(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	ks := newKeySetup(t, apikey.Config{Now: clock, CacheTTL: 5 * time.Second, NegativeCacheTTL: time.Second})
	ctx := context.Background()
	unknown, _ := apikey.Langflow.Generate()
	_, err := ks.m.Verify(ctx, ks.live) // warm
	require.NoError(t, err)
	_, err = ks.m.Verify(ctx, unknown)
	require.ErrorIs(t, err, apikey.ErrInvalid)

	ks.inj.SetFailRate(1)
	_, err = ks.m.Verify(ctx, ks.live)
	assert.NoError(t, err, "cached positive within CacheTTL")
	_, err = ks.m.Verify(ctx, unknown)
	assert.ErrorIs(t, err, apikey.ErrInvalid, "cached negative")
	other, _ := apikey.Langflow.Generate()
	_, err = ks.m.Verify(ctx, other)
	assert.ErrorIs(t, err, apikey.ErrUnavailable, "cache miss")

	advance(5*time.Second + time.Millisecond)
	_, err = ks.m.Verify(ctx, ks.live)
	assert.ErrorIs(t, err, apikey.ErrUnavailable, "expired positive: fail closed")
	_, err = ks.m.Verify(ctx, unknown)
	assert.ErrorIs(t, err, apikey.ErrUnavailable)
}

// A slow store is bounded by the request's context.
func TestVerifyTimeout(t *testing.T) {
	ks := newKeySetup(t, apikey.Config{CacheSize: -1})
	ks.inj.SetDelay(1, time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := ks.m.Verify(ctx, ks.live)
	assert.ErrorIs(t, err, apikey.ErrUnavailable)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 10*time.Second)
}

// Management calls under failures: nothing half-done. A failed Create shows
// no key and stores nothing; a failed Delete leaves the key working (the
// caller was told it failed); usage counts survive failed flushes exactly.
func TestManagerWritesUnderFailure(t *testing.T) {
	ks := newKeySetup(t, apikey.Config{})
	ctx := context.Background()
	before, err := ks.m.List(ctx, "u1")
	require.NoError(t, err)

	ks.inj.Only("Insert")
	ks.inj.FailNext(1)
	key, rec, err := ks.m.Create(ctx, "u1", "x", apikey.CreateOptions{})
	assert.ErrorIs(t, err, apikey.ErrUnavailable)
	assert.Empty(t, key, "no key shown for a record that was not stored")
	assert.Empty(t, rec)
	after, err := ks.m.List(ctx, "u1")
	require.NoError(t, err)
	assert.Equal(t, before, after, "nothing stored")

	liveRec := before[0]
	ks.inj.Reset()
	ks.inj.Only("Delete", "SetActive")
	ks.inj.FailNext(2)
	assert.ErrorIs(t, ks.m.Delete(ctx, "u1", liveRec.ID), apikey.ErrUnavailable)
	assert.ErrorIs(t, ks.m.SetActive(ctx, "u1", liveRec.ID, false), apikey.ErrUnavailable)
	_, err = ks.m.Verify(ctx, ks.live)
	assert.NoError(t, err, "a failed revocation changed nothing")

	// Usage: 1+10 verifies, two failed flushes, then a good one: exactly 11.
	ks.inj.Reset()
	for range 10 {
		_, err := ks.m.Verify(ctx, ks.live)
		require.NoError(t, err)
	}
	ks.inj.Only("AddUsage")
	ks.inj.FailNext(2)
	require.ErrorIs(t, ks.m.Flush(ctx), apikey.ErrUnavailable)
	require.ErrorIs(t, ks.m.Flush(ctx), apikey.ErrUnavailable)
	require.NoError(t, ks.m.Flush(ctx))
	recs, err := ks.m.List(ctx, "u1")
	require.NoError(t, err)
	var uses int64
	for _, r := range recs {
		if r.ID == liveRec.ID {
			uses = r.TotalUses
		}
	}
	assert.EqualValues(t, 11+liveRec.TotalUses, uses)
	logs := ks.log.String()
	assert.Contains(t, logs, "usage flush failed")
	assert.Contains(t, logs, "injected failure", "the cause is logged")
	for _, k := range ks.keys() {
		assert.NotContains(t, logs, k)
	}
}

// Revocation whose reply is lost: the store deleted the record but the
// Manager saw an error, so it did not evict its cache; the admin's retry gets
// ErrNotFound. The key must not keep working on the revoking instance.
//
// This fails today (the key is served from the cache for up to CacheTTL):
// see the report, apikey.Manager.Delete/SetActive must evict the key's cache
// entry on every store error (and on ErrNotFound), not only on success.
func TestRevocationWithLostReply(t *testing.T) {
	ks := newKeySetup(t, apikey.Config{CacheTTL: time.Hour})
	ctx := context.Background()
	_, err := ks.m.Verify(ctx, ks.live) // cached
	require.NoError(t, err)
	recs, err := ks.m.List(ctx, "u1")
	require.NoError(t, err)
	id := recs[0].ID

	ks.inj.Only("Delete")
	ks.inj.SetFailAfter(true)
	ks.inj.FailNext(1)
	require.ErrorIs(t, ks.m.Delete(ctx, "u1", id), apikey.ErrUnavailable)
	ks.inj.Reset()
	require.ErrorIs(t, ks.m.Delete(ctx, "u1", id), apikey.ErrNotFound, "the record is gone")
	_, err = ks.m.Verify(ctx, ks.live)
	assert.Error(t, err, "a key whose record is deleted must not verify on the instance that deleted it")
}

type principalSeen struct {
	mu sync.Mutex
	n  int
}

// The middleware over a failing store answers 503 with no internals, logs
// the cause (never the key), and never calls the protected handler.
func TestMiddlewareFailsClosed(t *testing.T) {
	ks := newKeySetup(t, apikey.Config{CacheSize: -1})
	logger, logs := keyflowtest.NewLogger()
	mw, err := middleware.New(middleware.Config{Verifier: ks.m, Logger: logger})
	require.NoError(t, err)
	var seen principalSeen
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := middleware.FromContext(r.Context())
		if !ok || p.UserID != "u1" {
			t.Errorf("handler reached without the right principal: %+v", p)
		}
		seen.mu.Lock()
		seen.n++
		seen.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	ks.inj.SetFailRate(0.5)
	codes := map[int]int{}
	for i := range 400 {
		key := ks.keys()[i%3]
		target := "/x"
		var r *http.Request
		if i%2 == 0 {
			r = httptest.NewRequest(http.MethodGet, target, nil)
			r.Header.Set("x-api-key", key)
		} else {
			r = httptest.NewRequest(http.MethodGet, target+"?x-api-key="+key, nil)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		codes[w.Code]++
		switch w.Code {
		case http.StatusNoContent:
			require.Equal(t, 0, i%3, "only the live key passes")
		case http.StatusServiceUnavailable:
			assert.JSONEq(t, `{"detail":"Authentication service unavailable"}`, w.Body.String())
		case http.StatusForbidden:
			require.NotEqual(t, 0, i%3, "the live key is never refused as invalid")
		default:
			t.Fatalf("status %d", w.Code)
		}
		assert.NotContains(t, w.Body.String(), key)
	}
	assert.Positive(t, codes[http.StatusServiceUnavailable])
	assert.Positive(t, codes[http.StatusNoContent])
	assert.Equal(t, codes[http.StatusNoContent], seen.n)
	out := logs.String()
	assert.Contains(t, out, "answering 503")
	assert.Contains(t, out, "injected failure", "the cause is in the log")
	for _, k := range ks.keys() {
		assert.NotContains(t, out, k, "no key in the log")
	}
}

// setDefaultLogger captures slog.Default (the handlers log there) for one
// test; tests in this package do not run in parallel.
func setDefaultLogger(t *testing.T) *keyflowtest.LogBuffer {
	logger, buf := keyflowtest.NewLogger()
	old := slog.Default()
	slog.SetDefault(logger)
	t.Cleanup(func() { slog.SetDefault(old) })
	return buf
}

// The management handlers over failing stores: 5xx with a fixed message, the
// cause logged, nothing stored, no secret in the answer or the log.
func TestHandlersUnderFailure(t *testing.T) {
	logs := setDefaultLogger(t)
	ks := newKeySetup(t, apikey.Config{})
	user := func(*http.Request) (apikey.Principal, bool) { return apikey.Principal{UserID: "u1"}, true }
	keysAPI, err := apikeyhttp.New(apikeyhttp.Config{Manager: ks.m, User: user})
	require.NoError(t, err)
	keysH := http.StripPrefix("/api/v1/api_key", keysAPI)

	k, err := secrets.NewKeyring("a-secret-for-the-fault-tests-0123456789")
	require.NoError(t, err)
	vinj := faultstore.New(3)
	svc, err := variables.NewService(variables.ServiceConfig{Store: faultstore.Variables(variables.NewMemoryStore(), vinj), Keyring: k})
	require.NoError(t, err)
	varsAPI, err := variableshttp.New(variableshttp.Config{Service: svc, User: user})
	require.NoError(t, err)
	varsH := http.StripPrefix("/api/v1/variables", varsAPI)
	const credential = "credential-value-never-logged-42"
	v, err := svc.Create(context.Background(), "u1", variables.CreateInput{Name: "EXISTING", Value: credential})
	require.NoError(t, err)

	do := func(h http.Handler, method, path, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	ks.inj.SetFailRate(1)
	vinj.SetFailRate(1)
	for _, tc := range []struct {
		h                  http.Handler
		method, path, body string
		code               int
		detail             string
	}{
		{keysH, "GET", "/api/v1/api_key/", "", 503, apikeyhttp.MsgUnavailable},
		{keysH, "POST", "/api/v1/api_key/", `{"name":"x"}`, 503, apikeyhttp.MsgUnavailable},
		{keysH, "DELETE", "/api/v1/api_key/" + v.ID, "", 503, apikeyhttp.MsgUnavailable},
		{varsH, "GET", "/api/v1/variables/", "", 503, "Variable store unavailable"},
		{varsH, "POST", "/api/v1/variables/", `{"name":"NEW","value":"` + credential + `"}`, 503, "Variable store unavailable"},
		{varsH, "PATCH", "/api/v1/variables/" + v.ID, `{"value":"` + credential + `-2"}`, 503, "Variable store unavailable"},
		{varsH, "DELETE", "/api/v1/variables/" + v.ID, "", 503, "Variable store unavailable"},
	} {
		w := do(tc.h, tc.method, tc.path, tc.body)
		assert.Equal(t, tc.code, w.Code, "%s %s: %s", tc.method, tc.path, w.Body)
		var got struct{ Detail string }
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &got))
		assert.Equal(t, tc.detail, got.Detail)
		assert.NotContains(t, w.Body.String(), credential)
	}
	ks.inj.Reset()
	vinj.Reset()
	recs, err := ks.m.List(context.Background(), "u1")
	require.NoError(t, err)
	assert.Len(t, recs, 2, "no key created (live and disabled remain)")
	vars, err := svc.List(context.Background(), "u1")
	require.NoError(t, err)
	require.Len(t, vars, 1, "no variable created or deleted")
	got, err := svc.Value(context.Background(), "u1", "EXISTING")
	require.NoError(t, err)
	assert.Equal(t, credential, got, "not updated")

	out := logs.String()
	assert.Contains(t, out, "injected failure", "causes are logged")
	assert.NotContains(t, out, credential)
	for _, key := range ks.keys() {
		assert.NotContains(t, out, key)
	}
}

// The variables service and resolver over a failing store: errors, never a
// wrong value, never a silent fall-back to the environment, and every
// variable decrypts to a value that was written (old or new), whether the
// write failed before or after it took effect.
func TestVariablesUnderFailure(t *testing.T) {
	k, err := secrets.NewKeyring("a-secret-for-the-fault-tests-0123456789")
	require.NoError(t, err)
	inj := faultstore.New(11)
	logger, logs := keyflowtest.NewLogger()
	svc, err := variables.NewService(variables.ServiceConfig{
		Store: faultstore.Variables(variables.NewMemoryStore(), inj), Keyring: k, Logger: logger,
	})
	require.NoError(t, err)
	res, err := variables.NewResolver(variables.ResolverConfig{
		Service: svc, EnvFallback: variables.EnvFallbackOn,
		LookupEnv: func(name string) (string, bool) { return "from-the-environment", true },
	})
	require.NoError(t, err)
	ctx := context.Background()
	v, err := svc.Create(ctx, "u1", variables.CreateInput{Name: "TOKEN", Value: "value-0"})
	require.NoError(t, err)

	inj.SetFailRate(1)
	_, err = svc.Value(ctx, "u1", "TOKEN")
	assert.ErrorIs(t, err, faultstore.ErrInjected)
	out, err := res.Resolve(ctx, "u1", []variables.Field{{Name: "api_key", Variable: "TOKEN"}}, nil)
	assert.ErrorIs(t, err, faultstore.ErrInjected)
	assert.Nil(t, out, "no environment value in place of the stored one")
	_, err = svc.Create(ctx, "u1", variables.CreateInput{Name: "OTHER", Value: "x"})
	assert.ErrorIs(t, err, faultstore.ErrInjected)

	written := map[string]bool{"value-0": true}
	for i := 1; i <= 200; i++ {
		inj.Reset()
		inj.SetFailRate(0.4)
		inj.SetFailAfter(i%2 == 0)
		val := "value-" + string(rune('a'+i%26)) + strings.Repeat("x", i%7)
		written[val] = true
		_, _ = svc.Update(ctx, "u1", v.ID, variables.Patch{Value: &val})

		inj.Reset()
		got, err := svc.Value(ctx, "u1", "TOKEN")
		require.NoError(t, err)
		require.True(t, written[got], "decrypts to a written value, got %q", got)
		out, err := res.Resolve(ctx, "u1", []variables.Field{{Name: "api_key", Variable: "TOKEN"}}, nil)
		require.NoError(t, err)
		assert.Equal(t, variables.LayerStored, out[0].Layer)
		assert.Equal(t, got, out[0].Value)
	}
	list, err := svc.List(ctx, "u1")
	require.NoError(t, err)
	assert.Len(t, list, 1, "nothing half-created")
	for val := range written {
		assert.NotContains(t, logs.String(), val)
	}
}

// Master-secret rotation over a failing store: Reencrypt stops on an error
// and loses nothing; rerun until it succeeds, every value opens with the new
// secret alone.
func TestReencryptUnderFailure(t *testing.T) {
	oldK, err := secrets.NewKeyring("the-old-master-secret-0123456789abcdef")
	require.NoError(t, err)
	inj := faultstore.New(5)
	store := faultstore.Variables(variables.NewMemoryStore(), inj)
	svc, err := variables.NewService(variables.ServiceConfig{Store: store, Keyring: oldK})
	require.NoError(t, err)
	ctx := context.Background()
	want := map[string]string{}
	for i := range 60 {
		name := "VAR_" + string(rune('A'+i%26)) + string(rune('A'+i/26))
		val := "plain-" + name
		_, err := svc.Create(ctx, "u1", variables.CreateInput{Name: name, Value: val})
		require.NoError(t, err)
		want[name] = val
	}
	newK, err := secrets.NewKeyring("the-new-master-secret-0123456789abcdef", "the-old-master-secret-0123456789abcdef")
	require.NoError(t, err)
	onlyNew, err := secrets.NewKeyring("the-new-master-secret-0123456789abcdef")
	require.NoError(t, err)
	both, err := variables.NewService(variables.ServiceConfig{Store: store, Keyring: newK})
	require.NoError(t, err)

	runs := 0
	for ; runs < 200; runs++ {
		inj.Reset()
		inj.SetFailRate(0.1)
		inj.SetFailAfter(runs%2 == 1)
		rep, err := secrets.Reencrypt(ctx, newK, store, secrets.ReencryptOptions{BatchSize: 7})
		inj.Reset()
		// At every stop, every value opens with the union keyring.
		for name, val := range want {
			got, verr := both.Value(ctx, "u1", name)
			require.NoError(t, verr)
			require.Equal(t, val, got)
		}
		if err == nil {
			assert.Zero(t, rep.Failed)
			break
		}
		assert.ErrorIs(t, err, faultstore.ErrInjected)
	}
	require.Less(t, runs, 200, "never completed")
	assert.Positive(t, runs, "some runs failed on the way")
	final, err := variables.NewService(variables.ServiceConfig{Store: store, Keyring: onlyNew})
	require.NoError(t, err)
	for name, val := range want {
		got, err := final.Value(ctx, "u1", name)
		require.NoError(t, err, name)
		assert.Equal(t, val, got)
	}
}
