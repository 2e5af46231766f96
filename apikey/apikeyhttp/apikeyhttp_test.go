package apikeyhttp_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/apikey/apikeyhttp"
	"github.com/keyflow-dev/keyflow/internal/ids"
	"github.com/keyflow-dev/keyflow/keyflowtest"
	"github.com/keyflow-dev/keyflow/keyflowtest/faultstore"
	"github.com/keyflow-dev/keyflow/middleware"
)

// errDB is what the store fails with while the database is "down"; no
// answer may show it.
var errDB = errors.New("pq: password authentication failed for user admin at 10.0.0.7")

type env struct {
	m    *apikey.Manager
	inj  *faultstore.Injector
	h    http.Handler // the handler alone, user from the X-User test header
	srv  http.Handler // mounted as a host would, behind the middleware
	key1 string       // user-1's key
	rec1 apikey.Record
	key2 string // user-2's key
	rec2 apikey.Record
}

func newEnv(t *testing.T) *env {
	t.Helper()
	inj := faultstore.New(1)
	store := faultstore.Keys(apikey.NewMemoryStore(), inj)
	m := keyflowtest.NewManagerConfig(t, apikey.Config{Store: store})
	e := &env{m: m, inj: inj}
	ctx := context.Background()
	var err error
	e.key1, e.rec1, err = m.Create(ctx, "user-1", "first", apikey.CreateOptions{})
	require.NoError(t, err)
	e.key2, e.rec2, err = m.Create(ctx, "user-2", "theirs", apikey.CreateOptions{})
	require.NoError(t, err)
	e.h, err = apikeyhttp.New(apikeyhttp.Config{Manager: m, User: func(r *http.Request) (apikey.Principal, bool) {
		u := r.Header.Get("X-User")
		p := apikey.Principal{UserID: u}
		if sc := r.Header.Get("X-Scopes"); sc != "" {
			p.Scopes = strings.Split(sc, ",")
		}
		return p, u != ""
	}})
	require.NoError(t, err)
	auth, err := middleware.New(middleware.Config{Verifier: m})
	require.NoError(t, err)
	h, err := apikeyhttp.New(apikeyhttp.Config{Manager: m, User: middleware.FromRequest})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/api/v1/api_key/", auth(http.StripPrefix("/api/v1/api_key", h)))
	e.srv = mux
	return e
}

func do(h http.Handler, method, target, body string, hdr ...string) *httptest.ResponseRecorder {
	var r *http.Request
	if body == "" {
		r = httptest.NewRequest(method, target, nil)
	} else {
		r = httptest.NewRequest(method, target, strings.NewReader(body))
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func decode(t *testing.T, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &m), w.Body.String())
	return m
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

var isoUTC = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$`)

// TestList_Langflow35: GET /api/v1/api_key/ answers Langflow's list shape with
// masked keys, only the caller's.
func TestList_Langflow35(t *testing.T) {
	e := newEnv(t)
	w := do(e.h, "GET", "/", "", "X-User", "user-1")
	require.Equal(t, 200, w.Code, w.Body.String())
	assert.Equal(t, "application/json", w.Header().Get("Content-Type"))
	body := decode(t, w)
	assert.Equal(t, []string{"api_keys", "total_count", "user_id"}, keys(body))
	assert.EqualValues(t, 1, body["total_count"])
	assert.Equal(t, "user-1", body["user_id"])
	list := body["api_keys"].([]any)
	require.Len(t, list, 1)
	k := list[0].(map[string]any)
	assert.Equal(t, []string{"api_key", "created_at", "expires_at", "id", "is_active", "last_used_at", "name", "total_uses", "user_id"}, keys(k))
	assert.Equal(t, e.key1[:8]+strings.Repeat("*", 38), k["api_key"], "mask: first 8 characters, then *")
	assert.Len(t, k["api_key"], 46)
	assert.Equal(t, e.rec1.ID, k["id"])
	assert.Equal(t, "first", k["name"])
	assert.Equal(t, "user-1", k["user_id"])
	assert.Equal(t, true, k["is_active"])
	assert.EqualValues(t, 0, k["total_uses"])
	assert.Nil(t, k["last_used_at"])
	assert.Nil(t, k["expires_at"])
	assert.Regexp(t, isoUTC, k["created_at"])
	assert.NotContains(t, w.Body.String(), e.key1)
	assert.NotContains(t, w.Body.String(), e.key2)

	w = do(e.h, "GET", "/", "", "X-User", "user-without-keys")
	require.Equal(t, 200, w.Code)
	assert.JSONEq(t, `{"total_count":0,"user_id":"user-without-keys","api_keys":[]}`, w.Body.String())
}

// TestCreate_Langflow35: POST answers 200 (not 201) with UnmaskedApiKeyRead,
// the only time the key is shown.
func TestCreate_Langflow35(t *testing.T) {
	e := newEnv(t)
	future := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	tests := []struct {
		name    string
		body    string
		status  int
		detail  string
		keyName any
		expires any
		scopes  []any
	}{
		{name: "name", body: `{"name":"CI"}`, status: 200, keyName: "CI"},
		{name: "no name: null, as in Langflow", body: `{}`, status: 200, keyName: nil},
		{name: "ignored ApiKeyCreate fields", body: `{"name":"x","api_key":"sk-mine","user_id":"user-2","total_uses":9,"is_active":false}`, status: 200, keyName: "x"},
		{name: "expiry and scopes", body: `{"name":"s","expires_at":"` + future.Format(time.RFC3339) + `","scopes":["runs:read"]}`, status: 200, keyName: "s",
			expires: future.Format("2006-01-02T15:04:05+00:00"), scopes: []any{"runs:read"}},
		{name: "naive expiry is UTC", body: `{"name":"n","expires_at":"` + future.Format("2006-01-02T15:04:05.000000") + `"}`, status: 200, keyName: "n",
			expires: future.Format("2006-01-02T15:04:05+00:00")},
		{name: "expiry in the past: 400", body: `{"name":"p","expires_at":"2001-01-01T00:00:00Z"}`, status: 400, detail: "expiry time is not in the future"},
		{name: "bad expiry: 422", body: `{"expires_at":"tomorrow"}`, status: 422, detail: "expires_at"},
		{name: "bad scope: 400", body: `{"scopes":["a b"]}`, status: 400, detail: "scope"},
		{name: "malformed JSON: 422", body: `{"name":`, status: 422, detail: "Malformed JSON body"},
		{name: "wrong type: 422", body: `{"name":3}`, status: 422, detail: "Invalid type for field 'name'"},
		{name: "not an object: 422", body: `["x"]`, status: 422, detail: "Invalid type"},
		{name: "null: 422", body: `null`, status: 422, detail: "JSON object"},
		{name: "empty body: 422", body: ``, status: 422, detail: "unexpected end of input"},
		{name: "over 1 MiB: 413", body: `{"name":"` + strings.Repeat("a", 1<<20) + `"}`, status: 413, detail: "Request body too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := do(e.h, "POST", "/", tt.body, "X-User", "user-1", "Content-Type", "application/json")
			require.Equal(t, tt.status, w.Code, w.Body.String())
			body := decode(t, w)
			if tt.status != 200 {
				assert.Contains(t, body["detail"], tt.detail)
				return
			}
			want := []string{"api_key", "expires_at", "id", "is_active", "last_used_at", "name", "total_uses", "user_id"}
			if tt.scopes != nil {
				want = append(want, "scopes")
				sort.Strings(want)
				assert.Equal(t, tt.scopes, body["scopes"])
			}
			assert.Equal(t, want, keys(body), "UnmaskedApiKeyRead: no created_at")
			assert.Equal(t, "no-store", w.Header().Get("Cache-Control"))
			assert.Equal(t, tt.keyName, body["name"])
			assert.Equal(t, "user-1", body["user_id"])
			assert.Equal(t, true, body["is_active"])
			assert.EqualValues(t, 0, body["total_uses"])
			assert.Nil(t, body["last_used_at"])
			assert.Equal(t, tt.expires, body["expires_at"])
			assert.True(t, ids.Valid(body["id"].(string)))
			key := body["api_key"].(string)
			assert.Regexp(t, `^sk-[A-Za-z0-9_-]{43}$`, key)
			p, err := e.m.Verify(context.Background(), key)
			require.NoError(t, err, "the key shown works")
			assert.Equal(t, "user-1", p.UserID)
		})
	}
}

// TestDelete_Langflow35: DELETE answers 200 "API Key deleted", and 400 "API
// Key not found" for a missing key or another user's (existence not revealed).
func TestDelete_Langflow35(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name   string
		user   string
		id     string
		status int
		detail string
	}{
		{"another user's key: 400, not revealed", "user-1", e.rec2.ID, 400, "API Key not found"},
		{"missing key: 400", "user-1", ids.New(), 400, "API Key not found"},
		{"malformed id: 422", "user-1", "not-a-uuid", 422, apikeyhttp.MsgInvalidID},
		{"id with a slash: 404", "user-1", e.rec1.ID + "/x", 404, "Not Found"},
		{"own key, upper-case id", "user-1", strings.ToUpper(e.rec1.ID), 200, "API Key deleted"},
		{"again: 400", "user-1", e.rec1.ID, 400, "API Key not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := do(e.h, "DELETE", "/"+tt.id, "", "X-User", tt.user)
			require.Equal(t, tt.status, w.Code, w.Body.String())
			assert.Equal(t, tt.detail, decode(t, w)["detail"])
		})
	}
	_, err := e.m.Verify(context.Background(), e.key1)
	assert.ErrorIs(t, err, apikey.ErrInvalid, "deleted key refused")
	_, err = e.m.Verify(context.Background(), e.key2)
	assert.NoError(t, err, "the other user's key survived")
}

// TestErrors covers the answers common to every route: no user 401, wrong
// method 405, unknown path 404, store failure 503 without internals.
func TestErrors(t *testing.T) {
	e := newEnv(t)
	var logs strings.Builder
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))
	defer slog.SetDefault(prev)
	id := e.rec1.ID
	tests := []struct {
		name   string
		method string
		target string
		body   string
		user   string
		failDB bool
		status int
		detail string
		allow  string
	}{
		{name: "no user: list", method: "GET", target: "/", status: 401, detail: "Not authenticated"},
		{name: "no user: create", method: "POST", target: "/", body: `{"name":"x"}`, status: 401, detail: "Not authenticated"},
		{name: "no user: delete", method: "DELETE", target: "/" + id, status: 401, detail: "Not authenticated"},
		{name: "PUT /: 405", method: "PUT", target: "/", user: "user-1", status: 405, detail: "Method Not Allowed", allow: "GET, POST"},
		{name: "DELETE /: 405", method: "DELETE", target: "/", user: "user-1", status: 405, allow: "GET, POST"},
		{name: "GET /{id}: 405", method: "GET", target: "/" + id, user: "user-1", status: 405, allow: "DELETE, PATCH"},
		{name: "PUT /{id}: 405 before 401", method: "PUT", target: "/" + id, status: 405, allow: "DELETE, PATCH"},
		{name: "no user: patch", method: "PATCH", target: "/" + id, status: 401, detail: "Not authenticated"},
		{name: "deeper path: 404", method: "GET", target: "/a/b", user: "user-1", status: 404, detail: "Not Found"},
		{name: "store down: list 503", method: "GET", target: "/", user: "user-1", failDB: true, status: 503, detail: apikeyhttp.MsgUnavailable},
		{name: "store down: create 503", method: "POST", target: "/", body: `{"name":"x"}`, user: "user-1", failDB: true, status: 503, detail: apikeyhttp.MsgUnavailable},
		{name: "store down: delete 503", method: "DELETE", target: "/" + id, user: "user-1", failDB: true, status: 503, detail: apikeyhttp.MsgUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.failDB {
				e.inj.FailAll(errDB)
				defer e.inj.Reset()
			}
			hdr := []string{}
			if tt.user != "" {
				hdr = append(hdr, "X-User", tt.user)
			}
			w := do(e.h, tt.method, tt.target, tt.body, hdr...)
			require.Equal(t, tt.status, w.Code, w.Body.String())
			assert.Equal(t, "application/json", w.Header().Get("Content-Type"))
			if tt.detail != "" {
				assert.Equal(t, tt.detail, decode(t, w)["detail"])
			}
			assert.Equal(t, tt.allow, w.Header().Get("Allow"))
			assert.NotContains(t, w.Body.String(), "10.0.0.7")
			assert.NotContains(t, w.Body.String(), "password")
			if tt.failDB {
				assert.Contains(t, logs.String(), "10.0.0.7", "the cause goes to the log")
			}
		})
	}
	for _, k := range []string{e.key1, e.key2} {
		assert.NotContains(t, logs.String(), k)
	}
	t.Run("empty user ID: 401", func(t *testing.T) {
		h, err := apikeyhttp.New(apikeyhttp.Config{Manager: e.m, User: func(*http.Request) (apikey.Principal, bool) { return apikey.Principal{}, true }})
		require.NoError(t, err)
		assert.Equal(t, 401, do(h, "GET", "/", "").Code)
	})
	t.Run("empty path (mounted without the trailing slash) is the root", func(t *testing.T) {
		w := do(http.StripPrefix("/api/v1/api_key/", e.h), "GET", "/api/v1/api_key/", "", "X-User", "user-1")
		assert.Equal(t, 200, w.Code)
	})
}

// TestMounted_Langflow35 drives the handler as a host mounts it, behind the
// middleware at /api/v1/api_key/: create with one key, use the new one,
// revoke it and see it refused at once.
func TestMounted_Langflow35(t *testing.T) {
	e := newEnv(t)
	w := do(e.srv, "POST", "/api/v1/api_key/", `{"name":"deploy"}`, "x-api-key", e.key1)
	require.Equal(t, 200, w.Code, w.Body.String())
	created := decode(t, w)
	newKey := created["api_key"].(string)

	w = do(e.srv, "GET", "/api/v1/api_key/?x-api-key="+newKey, "")
	require.Equal(t, 200, w.Code)
	list := decode(t, w)
	assert.EqualValues(t, 2, list["total_count"])
	assert.NotContains(t, w.Body.String(), newKey)

	w = do(e.srv, "DELETE", "/api/v1/api_key/"+created["id"].(string), "", "x-api-key", e.key1)
	require.Equal(t, 200, w.Code)
	assert.JSONEq(t, `{"detail":"API Key deleted"}`, w.Body.String())

	w = do(e.srv, "GET", "/api/v1/api_key/", "", "x-api-key", newKey)
	assert.Equal(t, 403, w.Code, "revocation is immediate")
	assert.JSONEq(t, `{"detail":"Invalid or missing API key"}`, w.Body.String())

	w = do(e.srv, "GET", "/api/v1/api_key/", "")
	assert.Equal(t, 403, w.Code)
	assert.JSONEq(t, `{"detail":"An API key must be passed as query or header"}`, w.Body.String())

	w = do(e.srv, "GET", "/api/v1/api_key", "", "x-api-key", e.key1)
	assert.Equal(t, http.StatusTemporaryRedirect, w.Code, "ServeMux redirects to the trailing slash (307, as FastAPI)")
}

// TestNewRefusesMissingCollaborators: issue 13 item 10. A nil Manager or
// UserFunc is refused by New (it used to answer 500 on every request); a
// Manager not made by NewManager answers 503 and logs, never panics.
func TestNewRefusesMissingCollaborators(t *testing.T) {
	t.Parallel()
	m, err := apikey.NewManager(apikey.Config{})
	require.NoError(t, err)
	defer m.Close()
	for name, cfg := range map[string]apikeyhttp.Config{
		"no manager":        {User: middleware.FromRequest},
		"typed-nil manager": {Manager: (*apikey.Manager)(nil), User: middleware.FromRequest},
		"no user func":      {Manager: m},
	} {
		h, err := apikeyhttp.New(cfg)
		require.Error(t, err, name)
		assert.Nil(t, h, name)
	}

	var logs strings.Builder
	h, err := apikeyhttp.New(apikeyhttp.Config{
		Manager: &apikey.Manager{},
		User:    func(*http.Request) (apikey.Principal, bool) { return apikey.Principal{UserID: "u"}, true },
		Logger:  slog.New(slog.NewTextHandler(&logs, nil)),
	})
	require.NoError(t, err)
	for _, c := range []struct{ method, target, body string }{{"GET", "/", ""}, {"POST", "/", `{"name":"k"}`}, {"DELETE", "/" + ids.New(), ""}} {
		require.NotPanics(t, func() {
			w := do(h, c.method, c.target, c.body)
			assert.Equal(t, 503, w.Code, c.method)
		})
	}
	assert.Contains(t, logs.String(), "err=", "the cause goes to Config.Logger under the key err")
}

// TestCreateScopeSubset_Issue13: a key with scopes can create only keys
// whose scopes are a non-empty subset of its own (403 otherwise); a key
// without scopes keeps full access, as in Langflow.
func TestCreateScopeSubset_Issue13(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	keysOnly, _, err := e.m.Create(context.Background(), "user-1", "keys only", apikey.CreateOptions{Scopes: []string{"keys", "run"}})
	require.NoError(t, err)
	for _, tc := range []struct {
		name, key, body string
		status          int
	}{
		{"scoped key, unrestricted new key: 403", keysOnly, `{"name":"x"}`, 403},
		{"scoped key, empty scopes: 403", keysOnly, `{"name":"x","scopes":[]}`, 403},
		{"scoped key, wider scopes: 403", keysOnly, `{"name":"x","scopes":["run","variables:write"]}`, 403},
		{"scoped key, subset: 200", keysOnly, `{"name":"x","scopes":["run"]}`, 200},
		{"unrestricted key, unrestricted new key: 200", e.key1, `{"name":"x"}`, 200},
		{"unrestricted key, any scopes: 200", e.key1, `{"name":"x","scopes":["anything"]}`, 200},
	} {
		w := do(e.srv, "POST", "/api/v1/api_key/", tc.body, "x-api-key", tc.key)
		require.Equal(t, tc.status, w.Code, "%s: %s", tc.name, w.Body.String())
		if tc.status == 403 {
			assert.Equal(t, apikeyhttp.MsgScopeNotAllowed, decode(t, w)["detail"])
		}
	}
	recs, err := e.m.List(context.Background(), "user-1")
	require.NoError(t, err)
	assert.Len(t, recs, 1+1+3, "refused keys are not stored")
}

// TestCreateBadNames_Issue13: names with control, invisible or bidi
// characters, or an unpaired surrogate escape, answer 4xx and store nothing.
func TestCreateBadNames_Issue13(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tc := range []struct {
		body   string
		status int
	}{
		{`{"name":"a\u0000b"}`, 400},
		{`{"name":"\u001b[31mred"}`, 400},
		{`{"name":"OPENAI\u200b_API_KEY"}`, 400},
		{`{"name":"\u202eyek"}`, 400},
		{`{"name":"a\ufffd"}`, 400},
		{`{"name":"a\ud800"}`, 422},
		{`{"name":"a\udc00b"}`, 422},
		{`{"name":"` + strings.Repeat("n", 256) + `"}`, 400},
	} {
		w := do(e.h, "POST", "/", tc.body, "X-User", "user-9")
		assert.Equal(t, tc.status, w.Code, "%s: %s", tc.body, w.Body.String())
	}
	recs, err := e.m.List(context.Background(), "user-9")
	require.NoError(t, err)
	assert.Empty(t, recs, "nothing stored")
	w := do(e.h, "POST", "/", `{"name":"ok \ud83d\udd11"}`, "X-User", "user-9")
	assert.Equal(t, 200, w.Code, "a paired surrogate escape is a character: %s", w.Body.String())
}
