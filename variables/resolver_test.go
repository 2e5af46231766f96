package variables_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/internal/ids"
	"github.com/keyflow-dev/keyflow/secrets"
	"github.com/keyflow-dev/keyflow/variables"
)

func newResolver(t testing.TB, s *variables.Service, fallback *bool, env envMap) *variables.Resolver {
	t.Helper()
	mode := variables.EnvFallbackFromEnv
	switch {
	case fallback == nil:
	case *fallback:
		mode = variables.EnvFallbackOn
	default:
		mode = variables.EnvFallbackOff
	}
	r, err := variables.NewResolver(variables.ResolverConfig{Service: s, EnvFallback: mode, LookupEnv: env.Lookup})
	require.NoError(t, err)
	return r
}

// TestPrecedenceMatrix checks every combination of the four sources, with
// the environment fallback on and off (docs/langflow-compatibility.md#variable-precedence): flow
// literal > request override > stored variable > environment > none. When the
// flow has a literal, the field is unbound: the bound sources must not leak
// into it, and a stored variable whose default fields name the field must
// not replace the literal either.
func TestPrecedenceMatrix(t *testing.T) {
	for mask := range 16 {
		flow, request, stored, env := mask&1 != 0, mask&2 != 0, mask&4 != 0, mask&8 != 0
		for _, fallback := range []bool{true, false} {
			name := fmt.Sprintf("flow=%t,request=%t,stored=%t,env=%t,fallback=%t", flow, request, stored, env, fallback)
			t.Run(name, func(t *testing.T) {
				ctx := context.Background()
				store := &countingStore{Store: variables.NewMemoryStore()}
				s := newService(t, store)
				if stored {
					_, err := s.Create(ctx, "u1", variables.CreateInput{Name: "K", Value: "from-store", DefaultFields: []string{"api_key"}})
					require.NoError(t, err)
				}
				e := envMap{variables.EnvFallbackToEnvVar: "true"} // ignored: EnvFallback is explicit
				if env {
					e["K"] = "from-env"
				}
				var overrides map[string]string
				if request {
					overrides = map[string]string{"K": "from-request"}
				}
				field := variables.Field{Name: "api_key", Variable: "K"}
				if flow {
					field = variables.Field{Name: "api_key", Value: "from-flow"}
				}

				want := variables.Resolution{Field: "api_key", Variable: "K", Layer: variables.LayerNone}
				switch {
				case flow:
					want = variables.Resolution{Field: "api_key", Value: "from-flow", Layer: variables.LayerFlow}
				case request:
					want.Value, want.Layer = "from-request", variables.LayerRequest
				case stored:
					want.Value, want.Layer = "from-store", variables.LayerStored
				case env && fallback:
					want.Value, want.Layer = "from-env", variables.LayerEnvironment
				}

				r := newResolver(t, s, &fallback, e)
				got, err := r.Resolve(ctx, "u1", []variables.Field{field}, overrides)
				require.NoError(t, err)
				require.Len(t, got, 1)
				assert.Equal(t, want, got[0])
				wantCalls := int64(1)
				if flow || request {
					wantCalls = 0
				}
				assert.Equal(t, wantCalls, store.calls.Load(), "store calls")
			})
		}
	}
}

// TestResolveOneStoreCallPerRun: one ListByUser per run, whatever the number
// of fields.
func TestResolveOneStoreCallPerRun(t *testing.T) {
	ctx := context.Background()
	store := &countingStore{Store: variables.NewMemoryStore()}
	s := newService(t, store)
	var fields []variables.Field
	for i := range 100 {
		name := fmt.Sprintf("V%d", i)
		if i%2 == 0 {
			_, err := s.Create(ctx, "u1", variables.CreateInput{Name: name, Value: "v" + name})
			require.NoError(t, err)
		}
		fields = append(fields, variables.Field{Name: "f" + name, Variable: name}, variables.Field{Name: "lit" + name, Value: "x"})
	}
	store.calls.Store(0)
	r := newResolver(t, s, ptr(true), envMap{"V1": "env"})
	got, err := r.Resolve(ctx, "u1", fields, nil)
	require.NoError(t, err)
	assert.Equal(t, int64(1), store.calls.Load())
	assert.Len(t, got, 200)
	assert.Equal(t, variables.LayerStored, got[0].Layer)
	assert.Equal(t, "vV0", got[0].Value)
	assert.Equal(t, variables.LayerEnvironment, got[2].Layer)
	assert.Equal(t, variables.LayerNone, got[6].Layer)
}

// TestResolveLoadingPort ports interface/initialize/test_loading.py.
func TestResolveLoadingPort(t *testing.T) {
	ctx := context.Background()
	s := newService(t, nil)
	_, err := s.Create(ctx, "u1", variables.CreateInput{Name: "DB_AND_ENV", Value: "db"})
	require.NoError(t, err)
	env := envMap{"DB_AND_ENV": "env", "ONLY_ENV": "env-only"}
	on := newResolver(t, s, ptr(true), env)
	off := newResolver(t, s, ptr(false), env)

	t.Run("the DB value wins over the env value", func(t *testing.T) {
		got, err := on.Resolve(ctx, "u1", []variables.Field{{Name: "api_key", Variable: "DB_AND_ENV"}}, nil)
		require.NoError(t, err)
		assert.Equal(t, "db", got[0].Value)
		assert.Equal(t, variables.LayerStored, got[0].Layer)
	})
	t.Run("fallback to env when the variable is not found", func(t *testing.T) {
		got, err := on.Resolve(ctx, "u1", []variables.Field{{Name: "api_key", Variable: "ONLY_ENV"}}, nil)
		require.NoError(t, err)
		assert.Equal(t, variables.Resolution{Field: "api_key", Variable: "ONLY_ENV", Value: "env-only", Layer: variables.LayerEnvironment}, got[0])
	})
	t.Run("a missing env value gives none", func(t *testing.T) {
		got, err := on.Resolve(ctx, "u1", []variables.Field{{Name: "api_key", Variable: "NOWHERE"}}, nil)
		require.NoError(t, err)
		assert.Equal(t, variables.LayerNone, got[0].Layer)
		assert.Empty(t, got[0].Value)
	})
	t.Run("not found with fallback off is reported, not raised", func(t *testing.T) {
		// Langflow raises "variable not found."; keyflow reports LayerNone
		// and leaves the decision to the caller.
		got, err := off.Resolve(ctx, "u1", []variables.Field{{Name: "api_key", Variable: "ONLY_ENV"}}, nil)
		require.NoError(t, err)
		assert.Equal(t, variables.LayerNone, got[0].Layer)
	})
	t.Run("user id is not set always fails", func(t *testing.T) {
		_, err := on.Resolve(ctx, "", []variables.Field{{Name: "api_key", Variable: "DB_AND_ENV"}}, nil)
		assert.ErrorIs(t, err, variables.ErrNoUser)
		// Nothing to look up: no user needed.
		got, err := on.Resolve(ctx, "", []variables.Field{{Name: "x", Value: "lit"}}, nil)
		require.NoError(t, err)
		assert.Equal(t, variables.LayerFlow, got[0].Layer)
	})
}

// TestResolveSessionID: a Credential cannot feed a session_id field (docs/langflow-compatibility.md#variable-types,
// test_service.py), with Langflow's message.
func TestResolveSessionID(t *testing.T) {
	ctx := context.Background()
	s := newService(t, nil)
	_, err := s.Create(ctx, "u1", variables.CreateInput{Name: "CRED", Value: "secret", DefaultFields: []string{"session_id"}})
	require.NoError(t, err)
	_, err = s.Create(ctx, "u1", variables.CreateInput{Name: "GEN", Value: "sess-1", Type: variables.Generic})
	require.NoError(t, err)
	r := newResolver(t, s, ptr(true), envMap{})

	_, err = r.Resolve(ctx, "u1", []variables.Field{{Name: "session_id", Variable: "CRED"}}, nil)
	require.ErrorIs(t, err, variables.ErrCredentialSessionID)
	assert.Equal(t, "variable CRED of type 'Credential' cannot be used in a Session ID field because its purpose is to prevent the exposure of values.", err.Error())
	assert.NotContains(t, err.Error(), "secret")

	got, err := r.Resolve(ctx, "u1", []variables.Field{
		{Name: "session_id", Variable: "GEN"},
		{Name: "session_id"}, // default fields never apply a Credential to session_id
	}, nil)
	require.NoError(t, err)
	assert.Equal(t, "sess-1", got[0].Value)
	assert.Equal(t, variables.LayerNone, got[1].Layer)
}

// TestResolveDefaultFields: "Apply To Fields" on the server side (#11781).
func TestResolveDefaultFields(t *testing.T) {
	ctx := context.Background()
	s := newService(t, nil)
	mk := func(name, value string, fields ...string) {
		_, err := s.Create(ctx, "u1", variables.CreateInput{Name: name, Value: value, DefaultFields: fields})
		require.NoError(t, err)
	}
	mk("OPENAI_API_KEY", "sk-openai", "OpenAI", "api_key") // as imported from the environment
	mk("SERP", "serp-key", "serpapi_api_key", "SerpAPI Key")
	mk("FIRST", "first", "shared_field")
	mk("SECOND", "second", "shared_field")
	r := newResolver(t, s, ptr(true), envMap{})

	for _, tc := range []struct {
		name  string
		field variables.Field
		want  variables.Resolution
	}{
		{"provider variable fills its provider's field", variables.Field{Name: "api_key", Component: "OpenAI"},
			variables.Resolution{Field: "api_key", Variable: "OPENAI_API_KEY", Value: "sk-openai", Layer: variables.LayerStored}},
		{"but not another provider's", variables.Field{Name: "api_key", Component: "Anthropic"},
			variables.Resolution{Field: "api_key", Layer: variables.LayerNone}},
		{"nor a field of an unknown component", variables.Field{Name: "api_key"},
			variables.Resolution{Field: "api_key", Layer: variables.LayerNone}},
		{"by field name", variables.Field{Name: "serpapi_api_key"},
			variables.Resolution{Field: "serpapi_api_key", Variable: "SERP", Value: "serp-key", Layer: variables.LayerStored}},
		{"by display name, as Langflow's UI", variables.Field{Name: "key", DisplayName: "SerpAPI Key"},
			variables.Resolution{Field: "key", Variable: "SERP", Value: "serp-key", Layer: variables.LayerStored}},
		{"oldest variable wins", variables.Field{Name: "shared_field"},
			variables.Resolution{Field: "shared_field", Variable: "FIRST", Value: "first", Layer: variables.LayerStored}},
		{"a literal is kept", variables.Field{Name: "shared_field", Value: "typed"},
			variables.Resolution{Field: "shared_field", Value: "typed", Layer: variables.LayerFlow}},
		{"a bound field follows its binding", variables.Field{Name: "shared_field", Variable: "SECOND"},
			variables.Resolution{Field: "shared_field", Variable: "SECOND", Value: "second", Layer: variables.LayerStored}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := r.Resolve(ctx, "u1", []variables.Field{tc.field}, nil)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got[0])
		})
	}
}

func TestResolveEnvironmentDetails(t *testing.T) {
	ctx := context.Background()
	store := variables.NewMemoryStore()
	s := newService(t, store)
	// A stored variable with an empty value counts as missing, as in Langflow.
	require.NoError(t, store.Create(ctx, variables.Variable{ID: ids.New(), UserID: "u1", Name: "EMPTY", Type: variables.Generic, Origin: variables.OriginUser}))
	env := envMap{"EMPTY": "env-empty", "BLANK": "", "LANGFLOW_SECRET_KEY": "master", "langflow_api_key": "k"}
	r := newResolver(t, s, ptr(true), env)
	got, err := r.Resolve(ctx, "u1", []variables.Field{
		{Name: "a", Variable: "EMPTY"},
		{Name: "b", Variable: "BLANK"},
		{Name: "c", Variable: "LANGFLOW_SECRET_KEY"},
		{Name: "d", Variable: "langflow_api_key"},
	}, nil)
	require.NoError(t, err)
	assert.Equal(t, variables.LayerEnvironment, got[0].Layer)
	assert.Equal(t, "env-empty", got[0].Value)
	assert.Equal(t, variables.LayerNone, got[1].Layer, "an empty environment variable counts as unset")
	assert.Equal(t, variables.LayerNone, got[2].Layer, "the master secret is never handed to a flow")
	assert.Equal(t, variables.LayerNone, got[3].Layer)
}

func TestNewResolverFallbackSetting(t *testing.T) {
	s := newService(t, nil)
	_, err := variables.NewResolver(variables.ResolverConfig{})
	assert.Error(t, err, "Service is required")
	for _, tc := range []struct {
		env     envMap
		want    variables.Layer
		wantErr bool
	}{
		{envMap{"K": "e"}, variables.LayerEnvironment, false},
		{envMap{"K": "e", variables.EnvFallbackToEnvVar: "false"}, variables.LayerNone, false},
		{envMap{"K": "e", variables.EnvFallbackToEnvVar: "TRUE"}, variables.LayerEnvironment, false},
		{envMap{"K": "e", variables.EnvFallbackToEnvVar: "nope"}, "", true},
	} {
		r, err := variables.NewResolver(variables.ResolverConfig{Service: s, LookupEnv: tc.env.Lookup})
		if tc.wantErr {
			assert.ErrorIs(t, err, variables.ErrInvalidSetting)
			continue
		}
		require.NoError(t, err)
		got, err := r.Resolve(context.Background(), "u1", []variables.Field{{Name: "f", Variable: "K"}}, nil)
		require.NoError(t, err)
		assert.Equal(t, tc.want, got[0].Layer, tc.env)
	}
}

func TestResolveErrors(t *testing.T) {
	ctx := context.Background()
	store := variables.NewMemoryStore()
	s := newService(t, store)
	other, err := secrets.NewKeyring("another-secret-0123456789-abcdefghij")
	require.NoError(t, err)
	token, err := other.Encrypt("foreign plaintext")
	require.NoError(t, err)
	require.NoError(t, store.Create(ctx, variables.Variable{ID: ids.New(), UserID: "u1", Name: "FOREIGN", Type: variables.Credential, Value: token, DefaultFields: []string{"x"}, Origin: variables.OriginUser}))
	r := newResolver(t, s, ptr(true), envMap{"FOREIGN": "env"})
	for _, f := range []variables.Field{{Name: "f", Variable: "FOREIGN"}, {Name: "x"}} {
		_, err = r.Resolve(ctx, "u1", []variables.Field{f}, nil)
		require.ErrorIs(t, err, secrets.ErrInvalidToken, "a Credential that does not open fails the run rather than falling back")
		assert.NotContains(t, err.Error(), "foreign plaintext")
		assert.NotContains(t, err.Error(), token)
	}

	broken := newResolver(t, newService(t, failingStore{variables.NewMemoryStore()}), ptr(true), envMap{})
	_, err = broken.Resolve(ctx, "u1", []variables.Field{{Name: "f", Variable: "K"}}, nil)
	assert.ErrorIs(t, err, errBroken)
}

// TestOverridesFromRequest ports the header normalisation (docs/langflow-compatibility.md#variable-precedence).
func TestOverridesFromRequest(t *testing.T) {
	for _, tc := range []struct {
		name    string
		headers [][2]string
		want    map[string]string
	}{
		{"none", nil, nil},
		{"upper-cased, dashes kept", [][2]string{{"X-LANGFLOW-GLOBAL-VAR-API-KEY", "v"}}, map[string]string{"API-KEY": "v"}},
		{"lower-case header", [][2]string{{"x-langflow-global-var-openai_api_key", "sk"}}, map[string]string{"OPENAI_API_KEY": "sk"}},
		{"several", [][2]string{{"X-Langflow-Global-Var-A", "1"}, {"X-Langflow-Global-Var-B", "2"}, {"X-Other", "3"}}, map[string]string{"A": "1", "B": "2"}},
		{"repeated: last wins", [][2]string{{"X-Langflow-Global-Var-A", "1"}, {"X-Langflow-Global-Var-A", "2"}}, map[string]string{"A": "2"}},
		{"prefix only", [][2]string{{"X-Langflow-Global-Var-", "1"}}, nil},
		{"empty value ignored", [][2]string{{"X-Langflow-Global-Var-A", ""}}, nil},
		{"value kept as sent", [][2]string{{"X-Langflow-Global-Var-A", "Mixed Case=="}}, map[string]string{"A": "Mixed Case=="}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/api/v1/run/x", nil)
			for _, h := range tc.headers {
				r.Header.Add(h[0], h[1])
			}
			assert.Equal(t, tc.want, variables.OverridesFromRequest(r))
		})
	}
	assert.Nil(t, variables.OverridesFromRequest(nil))
}

func FuzzOverridesFromRequest(f *testing.F) {
	f.Add("X-LANGFLOW-GLOBAL-VAR-API-KEY", "v")
	f.Add("x-langflow-global-var-", "v")
	f.Add("X-Langflow-Global-Var-\u212a", "k")
	f.Add("X-LANGFLOW-GLOBAL-VAR-é", "")
	f.Add("Content-Type", "x")
	f.Fuzz(func(t *testing.T, name, value string) {
		r := &http.Request{Header: http.Header{name: {value}}}
		got := variables.OverridesFromRequest(r)
		isOverride := len(name) > len("x-langflow-global-var-") &&
			strings.EqualFold(name[:len("x-langflow-global-var-")], "x-langflow-global-var-") && value != ""
		if !isOverride {
			if got != nil {
				t.Fatalf("%q: %q gave %v", name, value, got)
			}
			return
		}
		if len(got) != 1 {
			t.Fatalf("%q: want one override, got %v", name, got)
		}
		for k, v := range got {
			if v != value {
				t.Fatalf("value changed: %q → %q", value, v)
			}
			if k == "" || k != strings.ToUpper(k) {
				t.Fatalf("name %q is not upper-case", k)
			}
		}
	})
}

func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"", "OPENAI_API_KEY", "a b", "\x00", "\xff", "ü", strings.Repeat("x", 300), "__x__", "tab\there"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := variables.ValidateName(name)
		if err != nil {
			if !errors.Is(err, variables.ErrEmptyName) && !errors.Is(err, variables.ErrInvalidName) {
				t.Fatalf("%q: unexpected error %v", name, err)
			}
			if len(name) > 3 && strings.Contains(err.Error(), name) {
				t.Fatalf("error %q echoes the name", err)
			}
			return
		}
		// A valid name survives a create/resolve round trip.
		ctx := context.Background()
		s := newService(t, nil)
		if _, err := s.Create(ctx, "u1", variables.CreateInput{Name: name, Value: "v"}); err != nil {
			t.Fatalf("%q: valid name refused by Create: %v", name, err)
		}
		got, err := s.Value(ctx, "u1", name)
		if err != nil || got != "v" {
			t.Fatalf("%q: round trip: %q, %v", name, got, err)
		}
	})
}
