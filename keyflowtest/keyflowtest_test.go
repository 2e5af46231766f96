package keyflowtest_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/keyflowtest"
	"github.com/keyflow-dev/keyflow/middleware"
	"github.com/keyflow-dev/keyflow/variables"
)

// TestNewManagerClosesAtCleanup: the usage counted during a subtest reaches
// the store when the subtest ends, which only Close does before the hour-long
// flush interval.
func TestNewManagerClosesAtCleanup(t *testing.T) {
	t.Parallel()
	store := apikey.NewMemoryStore()
	t.Run("inner", func(t *testing.T) {
		m := keyflowtest.NewManagerConfig(t, apikey.Config{Store: store, FlushInterval: time.Hour})
		key := keyflowtest.NewKey(t, m, "user-1")
		_, err := m.Verify(context.Background(), key)
		require.NoError(t, err)
		recs, err := store.ListByUser(context.Background(), "user-1")
		require.NoError(t, err)
		require.Len(t, recs, 1)
		assert.Zero(t, recs[0].TotalUses, "not flushed yet")
	})
	recs, err := store.ListByUser(context.Background(), "user-1")
	require.NoError(t, err)
	require.Len(t, recs, 1)
	assert.EqualValues(t, 1, recs[0].TotalUses, "flushed by Close at cleanup")
}

func TestNewKey(t *testing.T) {
	t.Parallel()
	m := keyflowtest.NewManager(t)
	ctx := context.Background()

	plain := keyflowtest.NewKey(t, m, "user-1")
	p, err := m.Verify(ctx, plain)
	require.NoError(t, err)
	assert.Equal(t, "user-1", p.UserID)
	assert.Empty(t, p.Scopes)

	scoped := keyflowtest.NewKey(t, m, "user-2", "flows:run", "variables:read")
	p, err = m.Verify(ctx, scoped)
	require.NoError(t, err)
	assert.Equal(t, "user-2", p.UserID)
	assert.Equal(t, []string{"flows:run", "variables:read"}, p.Scopes)
}

// TestRequests: each request builder gets through the real middleware as
// the key's owner, and leaves the original request alone.
func TestRequests(t *testing.T) {
	t.Parallel()
	m := keyflowtest.NewManager(t)
	key := keyflowtest.NewKey(t, m, "user-1", "flows:run")
	auth, err := middleware.New(middleware.Config{Verifier: m})
	require.NoError(t, err)
	var got apikey.Principal
	var gotQuery string
	h := auth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = middleware.FromContext(r.Context())
		gotQuery = r.URL.RawQuery
	}))

	for _, tc := range []struct {
		name  string
		build func(*http.Request) *http.Request
		query string
	}{
		{"header", func(r *http.Request) *http.Request { return keyflowtest.WithKey(r, key) }, "stream=false"},
		{"query", func(r *http.Request) *http.Request { return keyflowtest.WithQueryKey(r, key) }, "stream=false"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			orig := httptest.NewRequest("POST", "/run?stream=false", nil)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, tc.build(orig))
			require.Equal(t, http.StatusOK, w.Code, w.Body.String())
			assert.Equal(t, "user-1", got.UserID)
			assert.Equal(t, []string{"flows:run"}, got.Scopes)
			assert.Equal(t, tc.query, gotQuery, "the key is stripped, the rest kept")
			assert.Empty(t, orig.Header.Get("x-api-key"), "original untouched")
			assert.Equal(t, "stream=false", orig.URL.RawQuery, "original untouched")
		})
	}

	t.Run("no key", func(t *testing.T) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("POST", "/run", nil))
		assert.Equal(t, http.StatusForbidden, w.Code)
	})
}

func TestAsUser(t *testing.T) {
	t.Parallel()
	r := keyflowtest.AsUser(httptest.NewRequest("GET", "/", nil), "user-3", "a")
	p, ok := middleware.FromContext(r.Context())
	require.True(t, ok)
	assert.Equal(t, "user-3", p.UserID)
	assert.Equal(t, []string{"a"}, p.Scopes)
	assert.True(t, p.HasScope("a"))
	assert.False(t, p.HasScope("b"))
}

func TestVerifier(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	v := keyflowtest.Verifier{Keys: map[string]apikey.Principal{"k1": {UserID: "u1"}}}
	p, err := v.Verify(ctx, "k1")
	require.NoError(t, err)
	assert.Equal(t, "u1", p.UserID)
	_, err = v.Verify(ctx, "k2")
	assert.ErrorIs(t, err, apikey.ErrInvalid)
	_, err = v.Verify(ctx, "")
	assert.ErrorIs(t, err, apikey.ErrMissing)

	down := keyflowtest.Verifier{Err: apikey.ErrUnavailable}
	_, err = down.Verify(ctx, "k1")
	assert.True(t, errors.Is(err, apikey.ErrUnavailable))

	// Through the middleware: a failing store answers 503, an unknown key 403.
	for _, tc := range []struct {
		v    keyflowtest.Verifier
		code int
	}{{v, http.StatusForbidden}, {down, http.StatusServiceUnavailable}} {
		auth, err := middleware.New(middleware.Config{Verifier: tc.v})
		require.NoError(t, err)
		w := httptest.NewRecorder()
		auth(http.NotFoundHandler()).ServeHTTP(w, keyflowtest.WithKey(httptest.NewRequest("GET", "/", nil), "k2"))
		assert.Equal(t, tc.code, w.Code)
	}
}

func TestNewVariables(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := map[string]string{"FROM_ENV": "e"}
	svc, res := keyflowtest.NewVariables(t, env)
	env["FROM_ENV"] = "changed later" // the Resolver keeps its own copy
	_, err := svc.Create(ctx, "u1", variables.CreateInput{Name: "STORED", Value: "s"})
	require.NoError(t, err)

	out, err := res.Resolve(ctx, "u1", []variables.Field{
		{Name: "a", Variable: "STORED"},
		{Name: "b", Variable: "FROM_ENV"},
		{Name: "c", Variable: "PATH"}, // set in the process, not in the map
	}, nil)
	require.NoError(t, err)
	require.Len(t, out, 3)
	assert.Equal(t, []variables.Layer{variables.LayerStored, variables.LayerEnvironment, variables.LayerNone},
		[]variables.Layer{out[0].Layer, out[1].Layer, out[2].Layer})
	assert.Equal(t, "s", out[0].Value)
	assert.Equal(t, "e", out[1].Value)

	_, off := keyflowtest.NewVariables(t, map[string]string{"FROM_ENV": "e", "LANGFLOW_FALLBACK_TO_ENV_VAR": "false"})
	out, err = off.Resolve(ctx, "u1", []variables.Field{{Name: "b", Variable: "FROM_ENV"}}, nil)
	require.NoError(t, err)
	assert.Equal(t, variables.LayerNone, out[0].Layer)
}
