// Package keyflowtest helps a project that uses keyflow write its own unit
// tests: an API-key Manager in memory that closes itself when the test ends,
// a key for a user in one call, requests that carry a key or an
// authenticated caller, a fixed Verifier for handler tests, a key with usage
// limits and a Clock moved by hand (so that tests of 429s never sleep: see
// NewLimitedKey), and a variables Service and Resolver over an environment
// given as a map.
//
//	keys := keyflowtest.NewManager(t)
//	key := keyflowtest.NewKey(t, keys, "user-1", "flows:run")
//	auth, _ := middleware.New(middleware.Config{Verifier: keys})
//	r := keyflowtest.WithKey(httptest.NewRequest("POST", "/run", nil), key)
//
// Nothing here touches the process environment, the file system or the
// network, so tests that use it can run in parallel. A helper that cannot do
// its job ends the test with t.Fatal; none returns an error.
//
// It imports only the standard library and keyflow. Its subpackages are for
// tests that need more: dbtest opens real SQLite and PostgreSQL databases
// (and imports their drivers), faultstore wraps stores so that they fail or
// stall on purpose, and revoketest watches a revocation reach another
// instance.
package keyflowtest

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"testing"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/middleware"
	"github.com/keyflow-dev/keyflow/secrets"
	"github.com/keyflow-dev/keyflow/variables"
)

// Secret is the master secret of the Keyring that NewVariables uses. It is a
// test value: never use it to encrypt real data.
const Secret = "keyflowtest-master-secret-not-for-production-use"

// NewManager returns an *apikey.Manager on a new in-memory store, with the
// default settings, and closes it (flushing its usage counters) when the
// test and its subtests end.
func NewManager(t testing.TB) *apikey.Manager {
	t.Helper()
	return NewManagerConfig(t, apikey.Config{})
}

// NewManagerConfig is NewManager with cfg, for a test that needs a store of
// its own, a clock or other settings. A nil cfg.Store is a new in-memory
// store.
func NewManagerConfig(t testing.TB, cfg apikey.Config) *apikey.Manager {
	t.Helper()
	m, err := apikey.NewManager(cfg)
	if err != nil {
		t.Fatalf("keyflowtest: new manager: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("keyflowtest: close manager: %v", err)
		}
	})
	return m
}

// NewKey creates a key named "test" for userID on m, restricted to scopes
// when any are given, and returns it.
func NewKey(t testing.TB, m *apikey.Manager, userID string, scopes ...string) string {
	t.Helper()
	key, _ := NewKeyRecord(t, m, userID, scopes...)
	return key
}

// NewKeyRecord is NewKey that also returns the key's record, whose ID is
// what Manager.Delete (revoke) and Manager.SetActive take:
//
//	key, rec := keyflowtest.NewKeyRecord(t, keys, "user-1")
//	err := keys.Delete(ctx, "user-1", rec.ID) // key is refused from now on
func NewKeyRecord(t testing.TB, m *apikey.Manager, userID string, scopes ...string) (string, apikey.Record) {
	t.Helper()
	key, rec, err := m.Create(context.Background(), userID, "test", apikey.CreateOptions{Scopes: scopes})
	if err != nil {
		t.Fatalf("keyflowtest: create key for %q: %v", userID, err)
	}
	return key, rec
}

// WithKey returns a copy of r that carries key in the x-api-key header, as
// Langflow's clients send it. r is not modified.
func WithKey(r *http.Request, key string) *http.Request {
	r2 := r.Clone(r.Context())
	r2.Header.Set("x-api-key", key)
	return r2
}

// WithQueryKey returns a copy of r that carries key in the x-api-key query
// parameter (keeping the other parameters). r is not modified.
func WithQueryKey(r *http.Request, key string) *http.Request {
	r2 := r.Clone(r.Context())
	q := r2.URL.Query()
	q.Set("x-api-key", key)
	r2.URL.RawQuery = q.Encode()
	r2.RequestURI = r2.URL.RequestURI()
	return r2
}

// AsUser returns a copy of r whose context carries the principal of a key
// owned by userID (restricted to scopes when any are given), as if the
// middleware had verified one: a handler behind the middleware can be tested
// alone. For any other principal use middleware.NewContext.
func AsUser(r *http.Request, userID string, scopes ...string) *http.Request {
	return r.WithContext(middleware.NewContext(r.Context(), apikey.Principal{
		UserID: userID, KeyID: "keyflowtest-key", KeyName: "test", Scopes: scopes, Source: apikey.SourceDB,
	}))
}

// Verifier is a middleware.Verifier that accepts exactly the keys in Keys,
// for tests of a handler or a middleware configuration without a Manager.
// Any other key is refused with apikey.ErrInvalid. When Err is set, every
// call returns it instead, e.g. apikey.ErrUnavailable to test how a server
// answers a failing key store. A Verifier must not be modified while in use.
type Verifier struct {
	Keys map[string]apikey.Principal // key → the principal it verifies as
	Err  error                       // when set, every Verify returns it
}

// errUnknownKey is what Verifier returns for a key it does not have.
var errUnknownKey = fmt.Errorf("%w (keyflowtest: not in Verifier.Keys)", apikey.ErrInvalid)

// Verify implements middleware.Verifier.
func (v Verifier) Verify(_ context.Context, key string) (apikey.Principal, error) {
	if v.Err != nil {
		return apikey.Principal{}, v.Err
	}
	if key == "" {
		return apikey.Principal{}, apikey.ErrMissing
	}
	p, ok := v.Keys[key]
	if !ok {
		return apikey.Principal{}, errUnknownKey
	}
	return p, nil
}

// NewVariables returns a variables.Service on a new in-memory store, with a
// Keyring on Secret, and a Resolver on it whose environment is a copy of env
// (nil: an empty environment), never the process's. Set
// LANGFLOW_FALLBACK_TO_ENV_VAR in env to "false" to turn the environment
// layer off.
func NewVariables(t testing.TB, env map[string]string) (*variables.Service, *variables.Resolver) {
	t.Helper()
	k, err := secrets.NewKeyring(Secret)
	if err != nil {
		t.Fatalf("keyflowtest: keyring: %v", err)
	}
	svc, err := variables.NewService(variables.ServiceConfig{Keyring: k})
	if err != nil {
		t.Fatalf("keyflowtest: variables service: %v", err)
	}
	env = maps.Clone(env)
	res, err := variables.NewResolver(variables.ResolverConfig{
		Service:   svc,
		LookupEnv: func(name string) (string, bool) { v, ok := env[name]; return v, ok },
	})
	if err != nil {
		t.Fatalf("keyflowtest: resolver: %v", err)
	}
	return svc, res
}
