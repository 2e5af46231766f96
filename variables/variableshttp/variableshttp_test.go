package variableshttp_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/internal/ids"
	"github.com/keyflow-dev/keyflow/keyflowtest"
	"github.com/keyflow-dev/keyflow/middleware"
	"github.com/keyflow-dev/keyflow/secrets"
	"github.com/keyflow-dev/keyflow/variables"
	"github.com/keyflow-dev/keyflow/variables/variableshttp"
)

// server mounts the handler as a host would behind keyflow's middleware
// (User: middleware.FromRequest); requests carry their caller as the
// middleware would attach it (keyflowtest.AsUser).
type server struct {
	t   testing.TB
	svc *variables.Service
	h   http.Handler
}

func newServer(t testing.TB, store variables.Store) *server {
	t.Helper()
	k, err := secrets.NewKeyring("handler-test-secret-0123456789-abcdef")
	require.NoError(t, err)
	if store == nil {
		store = variables.NewMemoryStore()
	}
	svc, err := variables.NewService(variables.ServiceConfig{Store: store, Keyring: k})
	require.NoError(t, err)
	h, err := variableshttp.New(variableshttp.Config{Service: svc, User: middleware.FromRequest})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/api/v1/variables/", http.StripPrefix("/api/v1/variables", h))
	return &server{t: t, svc: svc, h: mux}
}

type response struct {
	code   int
	body   []byte
	header http.Header
}

func (r response) json(t testing.TB) any {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal(r.body, &v), string(r.body))
	return v
}

func (r response) detail(t testing.TB) string {
	t.Helper()
	m, ok := r.json(t).(map[string]any)
	require.True(t, ok, string(r.body))
	s, _ := m["detail"].(string)
	return s
}

func (s *server) do(method, path, user string, body io.Reader) response {
	req := httptest.NewRequest(method, path, body)
	if user != "" {
		req = keyflowtest.AsUser(req, user)
	}
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	s.h.ServeHTTP(rec, req)
	return response{rec.Code, rec.Body.Bytes(), rec.Header()}
}

func (s *server) create(user, body string) response {
	return s.do(http.MethodPost, "/api/v1/variables/", user, strings.NewReader(body))
}

func (s *server) createdID(user, body string) string {
	s.t.Helper()
	r := s.create(user, body)
	require.Equal(s.t, http.StatusCreated, r.code, string(r.body))
	return r.json(s.t).(map[string]any)["id"].(string)
}

// TestCreate ports api/v1/test_variable.py's create cases (docs/langflow-compatibility.md#variable-rules-and-messages).
func TestCreate(t *testing.T) {
	s := newServer(t, nil)
	require.Equal(t, http.StatusCreated, s.create("u1", `{"name":"TAKEN","value":"x","default_fields":[]}`).code)

	for _, tc := range []struct {
		name, body string
		code       int
		check      func(t *testing.T, r response)
	}{
		{"201 with the Generic value echoed", `{"name":"G","value":"plain","type":"Generic","default_fields":["f"]}`, 201, func(t *testing.T, r response) {
			m := r.json(t).(map[string]any)
			assert.Equal(t, "plain", m["value"])
			assert.Equal(t, "Generic", m["type"])
			assert.Equal(t, []any{"f"}, m["default_fields"])
			assert.True(t, ids.Valid(m["id"].(string)))
			assert.ElementsMatch(t, []string{"id", "name", "type", "value", "default_fields"}, keys(m))
		}},
		{"the default type is Credential and its value null", `{"name":"C","value":"sk-secret","default_fields":null,"category":"Global"}`, 201, func(t *testing.T, r response) {
			m := r.json(t).(map[string]any)
			assert.Equal(t, "Credential", m["type"])
			assert.Nil(t, m["value"])
			assert.Equal(t, []any{}, m["default_fields"])
			assert.NotContains(t, string(r.body), "sk-secret")
		}},
		{"both empty", `{"name":"","value":""}`, 400, detail("Variable name and value cannot be empty")},
		{"missing fields count as empty", `{}`, 400, detail("Variable name and value cannot be empty")},
		{"empty name", `{"name":"","value":"v"}`, 400, detail("Variable name cannot be empty")},
		{"empty value", `{"name":"N","value":""}`, 400, detail("Variable value cannot be empty")},
		{"name exists", `{"name":"TAKEN","value":"v"}`, 400, detail("Variable name already exists")},
		{"unknown type", `{"name":"N","value":"v","type":"Secret"}`, 400, detail("Variable type must be Credential or Generic")},
		{"malformed JSON", `{"name":`, 422, nil},
		{"wrong field type", `{"name":1,"value":"v"}`, 422, nil},
		{"trailing data", `{"name":"N","value":"v"} {}`, 422, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.create("u1", tc.body)
			assert.Equal(t, tc.code, r.code, string(r.body))
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
}

func detail(want string) func(t *testing.T, r response) {
	return func(t *testing.T, r response) { assert.Equal(t, want, r.detail(t)) }
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestBodyTooLarge(t *testing.T) {
	s := newServer(t, nil)
	big := `{"name":"N","value":"` + strings.Repeat("a", 1<<20) + `"}`
	r := s.create("u1", big)
	assert.Equal(t, http.StatusRequestEntityTooLarge, r.code)
	id := s.createdID("u1", `{"name":"K","value":"v"}`)
	r = s.do(http.MethodPatch, "/api/v1/variables/"+id, "u1", strings.NewReader(big))
	assert.Equal(t, http.StatusRequestEntityTooLarge, r.code)
}

// TestList ports the list cases (docs/langflow-compatibility.md#variable-types): Credential values null, Generic
// equal, "__x__" hidden, per user.
func TestList(t *testing.T) {
	s := newServer(t, nil)
	s.createdID("u1", `{"name":"CRED","value":"sk-1","default_fields":[]}`)
	s.createdID("u1", `{"name":"GEN","value":"g","type":"Generic","default_fields":[]}`)
	s.createdID("u1", `{"name":"__disabled_models__","value":"[]","type":"Generic"}`)
	s.createdID("u2", `{"name":"OTHER","value":"o"}`)

	r := s.do(http.MethodGet, "/api/v1/variables/", "u1", nil)
	require.Equal(t, http.StatusOK, r.code)
	list := r.json(t).([]any)
	require.Len(t, list, 2)
	assert.Equal(t, "CRED", list[0].(map[string]any)["name"])
	assert.Nil(t, list[0].(map[string]any)["value"])
	assert.Equal(t, "g", list[1].(map[string]any)["value"])
	assert.NotContains(t, string(r.body), "sk-1")

	r = s.do(http.MethodGet, "/api/v1/variables/", "nobody", nil)
	require.Equal(t, http.StatusOK, r.code)
	assert.JSONEq(t, `[]`, string(r.body))
}

// TestPatch ports the update cases (docs/langflow-compatibility.md#variable-endpoints).
func TestPatch(t *testing.T) {
	s := newServer(t, nil)
	id := s.createdID("u1", `{"name":"K","value":"one","type":"Generic","default_fields":["a"]}`)
	s.createdID("u1", `{"name":"OTHER","value":"x"}`)
	path := "/api/v1/variables/" + id

	for _, tc := range []struct {
		name, user, path, body string
		code                   int
		check                  func(t *testing.T, r response)
	}{
		{"value", "u1", path, `{"id":"` + id + `","value":"two"}`, 200, func(t *testing.T, r response) {
			assert.JSONEq(t, `{"id":"`+id+`","name":"K","type":"Generic","value":"two","default_fields":["a"]}`, string(r.body))
		}},
		{"upper-case id in path and body", "u1", "/api/v1/variables/" + strings.ToUpper(id), `{"id":"` + strings.ToUpper(id) + `","name":"K1"}`, 200, func(t *testing.T, r response) {
			assert.Equal(t, "K1", r.json(t).(map[string]any)["name"])
		}},
		{"name and default fields", "u1", path, `{"name":"K2","default_fields":["x","y"]}`, 200, func(t *testing.T, r response) {
			m := r.json(t).(map[string]any)
			assert.Equal(t, "K2", m["name"])
			assert.Equal(t, []any{"x", "y"}, m["default_fields"])
			assert.Equal(t, "two", m["value"])
		}},
		{"null default fields clear them", "u1", path, `{"default_fields":null}`, 200, func(t *testing.T, r response) {
			assert.Equal(t, []any{}, r.json(t).(map[string]any)["default_fields"])
		}},
		{"to Credential: value becomes null", "u1", path, `{"type":"Credential"}`, 200, func(t *testing.T, r response) {
			m := r.json(t).(map[string]any)
			assert.Equal(t, "Credential", m["type"])
			assert.Nil(t, m["value"])
		}},
		{"unknown id: 404", "u1", "/api/v1/variables/" + ids.New(), `{"value":"x"}`, 404, detail("Variable not found")},
		{"another user's id: 404", "u2", path, `{"value":"x"}`, 404, detail("Variable not found")},
		{"malformed id: 422", "u1", "/api/v1/variables/not-a-uuid", `{"value":"x"}`, 422, func(t *testing.T, r response) {
			d := r.json(t).(map[string]any)["detail"].([]any)[0].(map[string]any)
			assert.Equal(t, "uuid_parsing", d["type"])
			assert.Equal(t, []any{"path", "variable_id"}, d["loc"])
		}},
		{"body id differs from the path: 422", "u1", path, `{"id":"` + ids.New() + `","value":"x"}`, 422, nil},
		{"rename onto an existing name", "u1", path, `{"name":"OTHER"}`, 400, detail("Variable name already exists")},
		{"empty name", "u1", path, `{"name":""}`, 400, detail("Variable name cannot be empty")},
		{"bad type", "u1", path, `{"type":"x"}`, 400, detail("Variable type must be Credential or Generic")},
		{"malformed JSON", "u1", path, `nope`, 422, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.do(http.MethodPatch, tc.path, tc.user, strings.NewReader(tc.body))
			assert.Equal(t, tc.code, r.code, string(r.body))
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
	v, err := s.svc.Value(context.Background(), "u1", "K2")
	require.NoError(t, err)
	assert.Equal(t, "two", v, "the Generic → Credential change kept the value, now encrypted")
}

// TestCredentialToGeneric: PATCH {"type":"Generic"} on a Credential without
// a new value is refused (its decrypted value would be answered and listed);
// with a value it is allowed and answers the new value only.
func TestCredentialToGeneric(t *testing.T) {
	s := newServer(t, nil)
	id := s.createdID("u1", `{"name":"C","value":"credential-plaintext"}`)
	path := "/api/v1/variables/" + id
	for _, body := range []string{`{"type":"Generic"}`, `{"type":"Generic","name":"C2"}`, `{"type":"Generic","default_fields":["f"]}`} {
		r := s.do(http.MethodPatch, path, "u1", strings.NewReader(body))
		assert.Equal(t, http.StatusBadRequest, r.code, body)
		assert.Equal(t, variables.ErrCredentialToGeneric.Message, r.detail(t))
		assert.NotContains(t, string(r.body), "credential-plaintext")
	}
	r := s.do(http.MethodGet, "/api/v1/variables/", "u1", nil)
	require.Equal(t, http.StatusOK, r.code)
	assert.NotContains(t, string(r.body), "credential-plaintext")
	assert.Contains(t, string(r.body), `"type":"Credential"`)

	r = s.do(http.MethodPatch, path, "u1", strings.NewReader(`{"type":"Generic","value":"now public"}`))
	require.Equal(t, http.StatusOK, r.code, string(r.body))
	assert.JSONEq(t, `{"id":"`+id+`","name":"C","type":"Generic","value":"now public","default_fields":[]}`, string(r.body))
}

// TestDelete ports the delete cases (docs/langflow-compatibility.md#variable-endpoints), with 404 instead of
// Langflow's 500 for a missing variable.
func TestDelete(t *testing.T) {
	s := newServer(t, nil)
	id := s.createdID("u1", `{"name":"K","value":"v"}`)
	path := "/api/v1/variables/" + id

	r := s.do(http.MethodDelete, path, "u2", nil)
	assert.Equal(t, http.StatusNotFound, r.code, "another user's variable")
	r = s.do(http.MethodDelete, path, "u1", nil)
	assert.Equal(t, http.StatusNoContent, r.code)
	assert.Empty(t, r.body)
	r = s.do(http.MethodDelete, path, "u1", nil)
	assert.Equal(t, http.StatusNotFound, r.code, "Langflow answers 500 here")
	assert.Equal(t, "Variable not found", r.detail(t))
	r = s.do(http.MethodDelete, "/api/v1/variables/123", "u1", nil)
	assert.Equal(t, http.StatusUnprocessableEntity, r.code)
}

func TestRoutingAndAuth(t *testing.T) {
	s := newServer(t, nil)
	id := ids.New()
	for _, tc := range []struct {
		method, path, user string
		code               int
		allow, detail      string
	}{
		{http.MethodGet, "/api/v1/variables/", "", 401, "", "Not authenticated"},
		{http.MethodPost, "/api/v1/variables/", "", 401, "", "Not authenticated"},
		{http.MethodDelete, "/api/v1/variables/" + id, "", 401, "", "Not authenticated"},
		{http.MethodPut, "/api/v1/variables/", "u1", 405, "GET, POST", "Method Not Allowed"},
		{http.MethodGet, "/api/v1/variables/" + id, "u1", 405, "PATCH, DELETE", "Method Not Allowed"},
		// A trailing slash reaches the variable (FastAPI would redirect).
		{http.MethodDelete, "/api/v1/variables/" + id + "/", "u1", 404, "", "Variable not found"},
		{http.MethodDelete, "/api/v1/variables/" + id + "/extra", "u1", 404, "", "Not Found"},
	} {
		t.Run(tc.method+" "+tc.path+" "+tc.user, func(t *testing.T) {
			r := s.do(tc.method, tc.path, tc.user, nil)
			assert.Equal(t, tc.code, r.code, string(r.body))
			assert.Equal(t, tc.detail, r.detail(t))
			assert.Equal(t, tc.allow, r.header.Get("Allow"))
		})
	}
	// A UserFunc that reports an empty user ID as authenticated answers 401
	// (as apikeyhttp): "" is nobody, and must not become an account every
	// such request shares.
	for name, user := range map[string]middleware.UserFunc{
		"empty user ID": func(*http.Request) (apikey.Principal, bool) { return apikey.Principal{}, true },
		"no principal":  middleware.FromRequest,
	} {
		h, err := variableshttp.New(variableshttp.Config{Service: s.svc, User: user})
		require.NoError(t, err)
		for _, req := range []*http.Request{
			httptest.NewRequest(http.MethodGet, "/", nil),
			httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"name":"K","value":"v"}`)),
		} {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			assert.Equal(t, http.StatusUnauthorized, rec.Code, "%s: %s", name, req.Method)
		}
	}
	_, err := s.svc.Value(context.Background(), "", "K")
	assert.ErrorIs(t, err, variables.ErrNotFound, "nothing was stored for the empty user")
}

// brokenStore fails every read, to check store failures say nothing about
// the cause.
type brokenStore struct{ variables.Store }

func (brokenStore) ListByUser(context.Context, string) ([]variables.Variable, error) {
	return nil, errors.New("connection refused: postgres://admin:pw@db")
}

func TestStoreFailureIs503(t *testing.T) {
	s := newServer(t, brokenStore{variables.NewMemoryStore()})
	r := s.do(http.MethodGet, "/api/v1/variables/", "u1", nil)
	assert.Equal(t, http.StatusServiceUnavailable, r.code)
	assert.Equal(t, "Variable store unavailable", r.detail(t))
	assert.NotContains(t, string(r.body), "postgres")
}

// contendedStore loses every compare-and-swap, as if another writer changed
// the row each time between the service's read and its write.
type contendedStore struct{ variables.Store }

func (contendedStore) Update(context.Context, variables.Variable, variables.Variable) error {
	return variables.ErrConflict
}

func TestUpdateLosingEveryRaceIs409(t *testing.T) {
	s := newServer(t, contendedStore{variables.NewMemoryStore()})
	id := s.createdID("u1", `{"name":"K","value":"v1"}`)
	r := s.do(http.MethodPatch, "/api/v1/variables/"+id, "u1", strings.NewReader(`{"value":"v2"}`))
	assert.Equal(t, http.StatusConflict, r.code)
	assert.Equal(t, "Variable changed by another request; try again", r.detail(t))
	v, err := s.svc.Value(context.Background(), "u1", "K")
	require.NoError(t, err)
	assert.Equal(t, "v1", v, "nothing was written")
}

// FuzzHandlerBodies sends arbitrary bodies to POST and PATCH: the answer is
// always JSON with an expected status, never a 500, and a Credential value is
// never echoed.
func FuzzHandlerBodies(f *testing.F) {
	for _, b := range []string{
		`{"name":"N","value":"v"}`, `{"name":"N","value":"v","type":"Generic"}`, `{"name":"","value":""}`,
		`{"default_fields":null}`, `{"type":"Credential"}`, `{"name":"a\u0000b","value":"x","type":"Generic"}`,
		`{"name":"x","value":"\ud800"}`, `[]`, `null`, `"x"`, `{"default_fields":[1]}`, `{`, ``,
	} {
		f.Add(b)
	}
	s := newServer(f, nil)
	id := s.createdID("u1", `{"name":"EXISTING","value":"existing-secret"}`)
	f.Fuzz(func(t *testing.T, body string) {
		r := s.create("u1", body)
		switch r.code {
		case 201:
			m := r.json(t).(map[string]any)
			if m["type"] == "Credential" && m["value"] != nil {
				t.Fatalf("Credential value echoed: %s", r.body)
			}
			if s.do(http.MethodDelete, "/api/v1/variables/"+m["id"].(string), "u1", nil).code != 204 {
				t.Fatal("cannot delete what was created")
			}
		case 400, 413, 422:
			r.json(t)
		default:
			t.Fatalf("POST %q: status %d %s", body, r.code, r.body)
		}
		r = s.do(http.MethodPatch, "/api/v1/variables/"+id, "u1", strings.NewReader(body))
		switch r.code {
		case 200:
			if m := r.json(t).(map[string]any); m["type"] == "Credential" && m["value"] != nil {
				t.Fatalf("Credential value echoed: %s", r.body)
			}
		case 400, 413, 422:
			r.json(t)
		default:
			t.Fatalf("PATCH %q: status %d %s", body, r.code, r.body)
		}
	})
}

// TestNewRefusesMissingCollaborators: issue 13 item 10. New(nil, …) used to
// return a handler that panicked on every request; now New refuses a missing
// Service or UserFunc, and a Service not made by NewService answers 503.
func TestNewRefusesMissingCollaborators(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	for name, cfg := range map[string]variableshttp.Config{
		"no service":   {User: middleware.FromRequest},
		"no user func": {Service: s.svc},
	} {
		h, err := variableshttp.New(cfg)
		require.Error(t, err, name)
		assert.Nil(t, h, name)
	}
	var logs strings.Builder
	h, err := variableshttp.New(variableshttp.Config{
		Service: &variables.Service{},
		User:    func(*http.Request) (apikey.Principal, bool) { return apikey.Principal{UserID: "u"}, true },
		Logger:  slog.New(slog.NewTextHandler(&logs, nil)),
	})
	require.NoError(t, err)
	require.NotPanics(t, func() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	})
	assert.Contains(t, logs.String(), "err=", "logged to Config.Logger under the key err")
}

// TestBadNamesAndFields_Issue13: names and default_fields entries with
// control, invisible or bidi characters, unpaired surrogate escapes, too many
// or too long entries: a 4xx, and nothing stored.
func TestBadNamesAndFields_Issue13(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	many := make([]string, 20000)
	for i := range many {
		many[i] = "f"
	}
	manyJSON, err := json.Marshal(many)
	require.NoError(t, err)
	for _, tc := range []struct {
		body string
		code int
	}{
		{`{"name":"A\u0000B","value":"v"}`, 400},
		{`{"name":"\u001b[2J","value":"v"}`, 400},
		{`{"name":"OPENAI\u200b_API_KEY","value":"v"}`, 400},
		{`{"name":"OPENAI_\u202eYEK","value":"v"}`, 400},
		{`{"name":"A\ud800","value":"v"}`, 422},
		{`{"name":"K","value":"v","default_fields":["a\u0000"]}`, 400},
		{`{"name":"K","value":"v","default_fields":[""]}`, 400},
		{`{"name":"K","value":"v","default_fields":["` + strings.Repeat("f", 100<<10) + `"]}`, 400},
		{`{"name":"K","value":"v","default_fields":` + string(manyJSON) + `}`, 400},
		{`{"name":"K","value":"v","default_fields":["\udfff"]}`, 422},
	} {
		r := s.do(http.MethodPost, "/api/v1/variables/", "u1", strings.NewReader(tc.body))
		assert.Equal(t, tc.code, r.code, "%.80s: %s", tc.body, r.body)
	}
	r := s.do(http.MethodGet, "/api/v1/variables/", "u1", nil)
	assert.JSONEq(t, `[]`, string(r.body), "nothing stored")
}
