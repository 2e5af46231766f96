package middleware_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/keyflowtest"
	"github.com/keyflow-dev/keyflow/keyflowtest/faultstore"
	"github.com/keyflow-dev/keyflow/middleware"
)

// errDB is what the store fails with while the database is "down"; no
// answer may show it.
var errDB = errors.New("dial tcp 10.0.0.7:5432: connection refused (internal detail)")

// fixture is a real apikey.Manager over a memory store that can fail, with keys in
// every state.
type fixture struct {
	m        *apikey.Manager
	inj      *faultstore.Injector
	valid    string // user-1, "primary"
	other    string // user-2, "other"
	scoped   string // user-1, scopes runs:read
	expired  string
	inactive string
	revoked  string
	validRec apikey.Record
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	inj := faultstore.New(1)
	store := faultstore.Keys(apikey.NewMemoryStore(), inj)
	var clock atomic.Int64 // extra time, so a key can expire after creation
	m, err := apikey.NewManager(apikey.Config{Store: store, Now: func() time.Time { return time.Now().Add(time.Duration(clock.Load())) }})
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })
	f := &fixture{m: m, inj: inj}
	f.valid, f.validRec, err = m.Create(ctx, "user-1", "primary", apikey.CreateOptions{})
	require.NoError(t, err)
	f.other, _, err = m.Create(ctx, "user-2", "other", apikey.CreateOptions{})
	require.NoError(t, err)
	f.scoped, _, err = m.Create(ctx, "user-1", "scoped", apikey.CreateOptions{Scopes: []string{"runs:read"}})
	require.NoError(t, err)
	soon := time.Now().Add(time.Minute)
	f.expired, _, err = m.Create(ctx, "user-1", "expired", apikey.CreateOptions{ExpiresAt: &soon})
	require.NoError(t, err)
	clock.Store(int64(time.Hour))
	var rec apikey.Record
	f.inactive, rec, err = m.Create(ctx, "user-1", "inactive", apikey.CreateOptions{})
	require.NoError(t, err)
	require.NoError(t, m.SetActive(ctx, "user-1", rec.ID, false))
	f.revoked, rec, err = m.Create(ctx, "user-1", "revoked", apikey.CreateOptions{})
	require.NoError(t, err)
	require.NoError(t, m.Delete(ctx, "user-1", rec.ID))
	return f
}

// seen records what the downstream handler received.
type seen struct {
	called     bool
	principal  apikey.Principal
	ok         bool
	rawQuery   string
	requestURI string
	stream     string
}

func recorder(s *seen) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.called = true
		s.principal, s.ok = middleware.FromContext(r.Context())
		s.rawQuery = r.URL.RawQuery
		s.requestURI = r.RequestURI
		s.stream = r.URL.Query().Get("stream")
		w.WriteHeader(http.StatusOK)
	})
}

type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func debugLogger(buf *logBuf) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func detail(t *testing.T, body string) string {
	t.Helper()
	var d struct {
		Detail string `json:"detail"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &d), body)
	return d.Detail
}

const malformedKey = "not-a-key"

// wellFormedUnknown has Langflow's shape (sk- + 43 base64url characters) but
// belongs to nobody.
const wellFormedUnknown = "sk-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

// unknownKey returns a fresh well-formed key nobody owns, so no cache (the
// Manager caches negative answers briefly) has seen it.
func unknownKey() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return "sk-" + base64.RawURLEncoding.EncodeToString(b[:])
}

// TestMiddleware_Langflow covers docs/langflow-compatibility.md#key-sources and the sections after
// it: key sources, precedence,
// and Langflow's status codes and messages.
func TestMiddleware_Langflow(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name     string
		cfg      func(*middleware.Config)
		method   string
		target   string
		header   map[string]string
		failDB   bool
		status   int
		detail   string
		user     string
		keyName  string
		source   apikey.Source
		rawQuery string // what the downstream handler sees
	}{
		{name: "no key, auto-login off: 403", target: "/run", status: 403, detail: msgNoKey},
		{name: "header key", target: "/run", header: map[string]string{"x-api-key": f.valid}, status: 200, user: "user-1", keyName: "primary", source: apikey.SourceDB},
		{name: "header name is case-insensitive", target: "/run", header: map[string]string{"X-API-KEY": f.valid}, status: 200, user: "user-1"},
		{name: "query key", target: "/run?x-api-key=" + f.valid, status: 200, user: "user-1"},
		{name: "query wins over header (valid query, wrong header)", target: "/run?x-api-key=" + f.other, header: map[string]string{"x-api-key": f.valid}, status: 200, user: "user-2"},
		{name: "query wins over header (wrong query, valid header)", target: "/run?x-api-key=" + wellFormedUnknown, header: map[string]string{"x-api-key": f.valid}, status: 403, detail: msgInvalidKey},
		{name: "empty query value falls back to the header", target: "/run?x-api-key=&stream=false", header: map[string]string{"x-api-key": f.valid}, status: 200, user: "user-1", rawQuery: "stream=false"},
		// Issue 12 item 7: Starlette keeps the last value of a repeated parameter.
		{name: "repeated query key: the last value authenticates", target: "/run?x-api-key=" + wellFormedUnknown + "&x-api-key=" + f.valid, status: 200, user: "user-1"},
		{name: "repeated query key: a wrong last value is refused", target: "/run?x-api-key=" + f.valid + "&x-api-key=" + wellFormedUnknown, status: 403, detail: msgInvalidKey},
		{name: "repeated query key: an empty last value falls back to the header", target: "/run?x-api-key=" + wellFormedUnknown + "&x-api-key=", header: map[string]string{"x-api-key": f.valid}, status: 200, user: "user-1"},
		// Issue 13 item 6: every x-api-key parameter is gone, also after a raw '?'.
		{name: "every x-api-key parameter is stripped", target: "/run?x-api-key=" + f.valid + "&x-api-key=" + f.other + "&a=1", header: map[string]string{"x-api-key": f.valid}, status: 200, user: "user-2", rawQuery: "a=1"},
		{name: "a key after a raw '?' is stripped", target: "/run?x-api-key=" + f.valid + "&stream=false?x-api-key=" + f.valid, status: 200, user: "user-1", rawQuery: "stream=false"},
		{name: "a second key after a raw '?' is stripped", target: "/run?x-api-key=" + f.valid + "&stream=false?x-api-key=" + f.other + "&b=2", status: 200, user: "user-1", rawQuery: "stream=false&b=2"},
		{name: "header-authenticated request: query keys stripped too", target: "/run?q=1&x-api-key=", header: map[string]string{"x-api-key": f.valid}, status: 200, user: "user-1", rawQuery: "q=1"},
		{name: "query parameter name is exact", target: "/run?X-API-KEY=" + f.valid, status: 403, detail: msgNoKey},
		{name: "percent-encoded query key", target: "/run?x%2Dapi%2Dkey=" + url.QueryEscape(f.valid) + "&a=1", status: 200, user: "user-1", rawQuery: "a=1"},
		{name: "unknown key: 403", target: "/run", header: map[string]string{"x-api-key": wellFormedUnknown}, status: 403, detail: msgInvalidKey},
		{name: "malformed key: 403", target: "/run", header: map[string]string{"x-api-key": malformedKey}, status: 403, detail: msgInvalidKey},
		{name: "revoked (deleted) key: 403", target: "/run", header: map[string]string{"x-api-key": f.revoked}, status: 403, detail: msgInvalidKey},
		{name: "expired key: 403, same answer", target: "/run", header: map[string]string{"x-api-key": f.expired}, status: 403, detail: msgInvalidKey},
		{name: "inactive key: 403, same answer", target: "/run", header: map[string]string{"x-api-key": f.inactive}, status: 403, detail: msgInvalidKey},
		{name: "store down: 503 without internals", target: "/run", header: map[string]string{"x-api-key": unknownKey()}, failDB: true, status: 503, detail: msgUnavailable},
		{name: "bearer is not a source by default", target: "/run", header: map[string]string{"Authorization": "Bearer " + f.valid}, status: 403, detail: msgNoKey},
		{name: "opt-in bearer", target: "/run", header: map[string]string{"Authorization": "bearer  " + f.valid + " "}, status: 200, user: "user-1",
			cfg: func(c *middleware.Config) {
				c.Extractors = []middleware.Extractor{middleware.FromQuery("x-api-key"), middleware.FromHeader("x-api-key"), middleware.FromBearer()}
			}},
		{name: "opt-in bearer, other scheme ignored", target: "/run", header: map[string]string{"Authorization": "Basic " + f.valid}, status: 403, detail: msgNoKey,
			cfg: func(c *middleware.Config) { c.Extractors = []middleware.Extractor{middleware.FromBearer()} }},
		{name: "header-only extractors ignore the query", target: "/run?x-api-key=" + f.valid, status: 403, detail: msgNoKey,
			cfg: func(c *middleware.Config) { c.Extractors = []middleware.Extractor{middleware.FromHeader("x-api-key")} }},
		// Issue 13 item 7: only real CORS preflights skip authentication.
		{name: "CORS preflight passes by default", method: http.MethodOptions, target: "/run", header: map[string]string{"Access-Control-Request-Method": "POST"}, status: 200},
		{name: "OPTIONS without Access-Control-Request-Method needs a key", method: http.MethodOptions, target: "/admin/export", status: 403, detail: msgNoKey},
		{name: "OPTIONS with a key is authenticated", method: http.MethodOptions, target: "/run", header: map[string]string{"x-api-key": f.valid}, status: 200, user: "user-1"},
		{name: "OptionsAll passes every OPTIONS", method: http.MethodOptions, target: "/run", status: 200,
			cfg: func(c *middleware.Config) { c.OptionsPolicy = middleware.OptionsAll }},
		{name: "OptionsAuthenticate checks preflights too", method: http.MethodOptions, target: "/run", header: map[string]string{"Access-Control-Request-Method": "POST"}, status: 403, detail: msgNoKey,
			cfg: func(c *middleware.Config) { c.OptionsPolicy = middleware.OptionsAuthenticate }},
		{name: "skip function passes without authentication, key stripped", target: "/health?x-api-key=" + wellFormedUnknown + "&v=1", status: 200, rawQuery: "v=1",
			cfg: func(c *middleware.Config) { c.Skip = func(r *http.Request) bool { return r.URL.Path == "/health" } }},
		{name: "skip function does not apply elsewhere", target: "/run", status: 403, detail: msgNoKey,
			cfg: func(c *middleware.Config) { c.Skip = func(r *http.Request) bool { return r.URL.Path == "/health" } }},
		{name: "optional: no key passes anonymously", target: "/public", status: 200,
			cfg: func(c *middleware.Config) { c.Optional = true }},
		{name: "optional: wrong key passes anonymously, key stripped", target: "/public?x-api-key=" + wellFormedUnknown + "&q=1", status: 200, rawQuery: "q=1",
			cfg: func(c *middleware.Config) { c.Optional = true }},
		{name: "optional: store down passes anonymously", target: "/public", header: map[string]string{"x-api-key": unknownKey()}, failDB: true, status: 200,
			cfg: func(c *middleware.Config) { c.Optional = true }},
		{name: "optional: valid key attaches the principal", target: "/public", header: map[string]string{"x-api-key": f.valid}, status: 200, user: "user-1",
			cfg: func(c *middleware.Config) { c.Optional = true }},
		{name: "auto-login without skip, no key: 403 AUTO_LOGIN_ERROR", target: "/run", status: 403, detail: msgAutoLoginNoKey,
			cfg: func(c *middleware.Config) { c.AutoLogin = true }},
		{name: "auto-login without skip, valid key", target: "/run", header: map[string]string{"x-api-key": f.valid}, status: 200, user: "user-1",
			cfg: func(c *middleware.Config) { c.AutoLogin = true }},
		{name: "auto-login without skip, wrong key: 403", target: "/run", header: map[string]string{"x-api-key": wellFormedUnknown}, status: 403, detail: msgInvalidKey,
			cfg: func(c *middleware.Config) { c.AutoLogin = true }},
		{name: "auto-login with skip, no key: superuser", target: "/run", status: 200, user: "su", source: apikey.SourceAutoLogin,
			cfg: func(c *middleware.Config) { c.AutoLogin, c.SkipAuthAutoLogin = true, true }},
		{name: "auto-login with skip, a key is still checked", target: "/run", header: map[string]string{"x-api-key": wellFormedUnknown}, status: 403, detail: msgInvalidKey,
			cfg: func(c *middleware.Config) { c.AutoLogin, c.SkipAuthAutoLogin = true, true }},
		{name: "skip auto-login alone does nothing", target: "/run", status: 403, detail: msgNoKey,
			cfg: func(c *middleware.Config) { c.SkipAuthAutoLogin = true }},
		{name: "env key: superuser", target: "/run", header: map[string]string{"x-api-key": "my-env-key"}, status: 200, user: "su", source: apikey.SourceEnv,
			cfg: func(c *middleware.Config) { c.EnvKey = "my-env-key" }},
		{name: "env key in the query is stripped", target: "/run?x-api-key=my-env-key&stream=false", status: 200, user: "su", source: apikey.SourceEnv, rawQuery: "stream=false",
			cfg: func(c *middleware.Config) { c.EnvKey = "my-env-key" }},
		{name: "env source falls back to the store", target: "/run", header: map[string]string{"x-api-key": f.valid}, status: 200, user: "user-1", source: apikey.SourceDB,
			cfg: func(c *middleware.Config) { c.EnvKey = "my-env-key" }},
		{name: "env compare is exact (no trim, case-sensitive)", target: "/run", header: map[string]string{"x-api-key": "MY-ENV-KEY"}, status: 403, detail: msgInvalidKey,
			cfg: func(c *middleware.Config) { c.EnvKey = "my-env-key" }},
		{name: "env key works while the store is down", target: "/run", header: map[string]string{"x-api-key": "my-env-key"}, failDB: true, status: 200, user: "su", source: apikey.SourceEnv,
			cfg: func(c *middleware.Config) { c.EnvKey = "my-env-key" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs logBuf
			cfg := middleware.Config{Verifier: f.m, Superuser: apikey.Principal{UserID: "su"}, Logger: debugLogger(&logs)}
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			mw, err := middleware.New(cfg)
			require.NoError(t, err)
			var s seen
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			r := httptest.NewRequest(method, tt.target, nil)
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			if tt.failDB {
				f.inj.FailAll(errDB)
				defer f.inj.Reset()
			}
			w := httptest.NewRecorder()
			mw(recorder(&s)).ServeHTTP(w, r)

			assert.Equal(t, tt.status, w.Code, w.Body.String())
			if tt.status != http.StatusOK {
				assert.False(t, s.called, "downstream handler must not run")
				assert.Equal(t, "application/json", w.Header().Get("Content-Type"))
				assert.Equal(t, tt.detail, detail(t, w.Body.String()))
				assert.NotContains(t, w.Body.String(), "10.0.0.7")
			} else {
				require.True(t, s.called)
				assert.Equal(t, tt.user != "", s.ok)
				assert.Equal(t, tt.user, s.principal.UserID)
				assert.Equal(t, tt.rawQuery, s.rawQuery)
				if tt.keyName != "" {
					assert.Equal(t, tt.keyName, s.principal.KeyName)
				}
				if tt.source != "" {
					assert.Equal(t, tt.source, s.principal.Source)
				}
			}
			if tt.failDB {
				if tt.status == 503 || cfg.Optional {
					assert.Contains(t, logs.String(), "connection refused", "the cause goes to the log")
				}
			}
			for _, k := range []string{f.valid, f.other, f.expired, f.inactive, f.revoked, wellFormedUnknown, "my-env-key"} {
				assert.NotContains(t, logs.String(), k, "a key reached the log")
			}
		})
	}
}

// TestMiddleware_SeedCurl runs the two curl commands of Langflow's documentation (docs/langflow-compatibility.md#key-sources,
// "Use the API key") against a real server, with API_KEY replaced by a
// real key: the header form, and the query form with its '?' typed for '&'.
func TestMiddleware_SeedCurl(t *testing.T) {
	f := newFixture(t)
	mw, err := middleware.New(middleware.Config{Verifier: f.m})
	require.NoError(t, err)
	mux := http.NewServeMux()
	type got struct {
		flowID, stream, rawQuery, requestURI, user, body string
	}
	ch := make(chan got, 1)
	mux.Handle("POST /api/v1/run/{flow_id}", mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := middleware.FromContext(r.Context())
		b, _ := io.ReadAll(r.Body)
		ch <- got{r.PathValue("flow_id"), r.URL.Query().Get("stream"), r.URL.RawQuery, r.RequestURI, p.UserID, string(b)}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"outputs":[]}`)
	})))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	curl := []struct {
		name   string
		url    string
		header map[string]string
	}{
		{"header x-api-key", "http://localhost:7860/api/v1/run/FLOW_ID?stream=false", map[string]string{"Content-Type": "application/json", "x-api-key": "API_KEY"}},
		{"query x-api-key with ? for &", "http://localhost:7860/api/v1/run/FLOW_ID?x-api-key=API_KEY?stream=false", map[string]string{"Content-Type": "application/json"}},
	}
	for _, c := range curl {
		t.Run(c.name, func(t *testing.T) {
			target := strings.Replace(strings.Replace(c.url, "http://localhost:7860", srv.URL, 1), "API_KEY", f.valid, 1)
			req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(`{"inputs": {"text":""}, "tweaks": {}}`))
			require.NoError(t, err)
			for k, v := range c.header {
				req.Header.Set(k, strings.Replace(v, "API_KEY", f.valid, 1))
			}
			resp, err := srv.Client().Do(req)
			require.NoError(t, err)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.Equal(t, 200, resp.StatusCode, string(body))
			g := <-ch
			assert.Equal(t, "FLOW_ID", g.flowID)
			assert.Equal(t, "false", g.stream, "the downstream handler still sees stream=false")
			assert.Equal(t, "stream=false", g.rawQuery)
			assert.Equal(t, "/api/v1/run/FLOW_ID?stream=false", g.requestURI, "the key never reaches RequestURI")
			assert.Equal(t, "user-1", g.user)
			assert.Equal(t, `{"inputs": {"text":""}, "tweaks": {}}`, g.body)
		})
	}

	// The same two commands run by curl itself, argument for argument (plus
	// -sS and -w to read the status), when curl is installed.
	t.Run("curl", func(t *testing.T) {
		if _, err := exec.LookPath("curl"); err != nil {
			t.Skip("curl is not installed")
		}
		for _, c := range curl {
			target := strings.Replace(strings.Replace(c.url, "http://localhost:7860", srv.URL, 1), "API_KEY", f.valid, 1)
			args := []string{"-sS", "-w", "\n%{http_code}", "-X", "POST", target, "-H", "Content-Type: application/json"}
			if v, ok := c.header["x-api-key"]; ok {
				args = append(args, "-H", "x-api-key: "+strings.Replace(v, "API_KEY", f.valid, 1))
			}
			args = append(args, "-d", `{"inputs": {"text":""}, "tweaks": {}}`)
			out, err := exec.Command("curl", args...).CombinedOutput()
			require.NoError(t, err, string(out))
			require.True(t, strings.HasSuffix(string(out), "\n200"), string(out))
			g := <-ch
			assert.Equal(t, "false", g.stream)
			assert.Equal(t, "/api/v1/run/FLOW_ID?stream=false", g.requestURI)
			assert.Equal(t, "user-1", g.user)
		}
	})

	t.Run("literal API_KEY placeholder is refused", func(t *testing.T) {
		resp, err := srv.Client().Post(srv.URL+"/api/v1/run/FLOW_ID?x-api-key=API_KEY?stream=false", "application/json", strings.NewReader(`{}`))
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, 403, resp.StatusCode)
		assert.JSONEq(t, `{"detail":"Invalid or missing API key"}`, string(body))
	})
}

// TestMiddleware_KeyStripped checks that the key never reaches the URL the
// next handler sees, and that the caller's request is left as it was.
func TestMiddleware_KeyStripped(t *testing.T) {
	f := newFixture(t)
	mw, err := middleware.New(middleware.Config{Verifier: f.m})
	require.NoError(t, err)
	k := f.valid
	tests := []struct {
		name, target, rawQuery, requestURI string
	}{
		{"only the key", "/run?x-api-key=" + k, "", "/run"},
		{"key first", "/run?x-api-key=" + k + "&stream=false", "stream=false", "/run?stream=false"},
		{"key last", "/run?stream=false&x-api-key=" + k, "stream=false", "/run?stream=false"},
		{"key in the middle", "/run?a=1&x-api-key=" + k + "&b=2", "a=1&b=2", "/run?a=1&b=2"},
		{"documented typo", "/run?x-api-key=" + k + "?stream=false", "stream=false", "/run?stream=false"},
		{"documented typo with more", "/run?x-api-key=" + k + "?stream=false&tweaks=1", "stream=false&tweaks=1", "/run?stream=false&tweaks=1"},
		{"typo after other params", "/run?a=1&x-api-key=" + k + "?stream=false", "a=1&stream=false", "/run?a=1&stream=false"},
		{"repeated key", "/run?x-api-key=" + k + "&x-api-key=" + k, "", "/run"},
		{"key under another name too", "/run?x-api-key=" + k + "&token=" + k, "", "/run"},
		{"encoded key", "/run?x-api-key=" + strings.ReplaceAll(k, "-", "%2D") + "&z=%20", "z=%20", "/run?z=%20"},
		{"header key, no query", "/run", "", "/run"},
		{"header key, query kept byte for byte", "/run?stream=false&b=%41", "stream=false&b=%41", "/run?stream=false&b=%41"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, tt.target, nil)
			r.Header.Set("x-api-key", k)
			origURL, origRaw, origURI := r.URL, r.URL.RawQuery, r.RequestURI
			var s seen
			w := httptest.NewRecorder()
			mw(recorder(&s)).ServeHTTP(w, r)
			require.Equal(t, 200, w.Code)
			assert.Equal(t, tt.rawQuery, s.rawQuery)
			assert.Equal(t, tt.requestURI, s.requestURI)
			assert.NotContains(t, s.rawQuery, k)
			assert.NotContains(t, s.requestURI, k)
			assert.Same(t, origURL, r.URL, "caller's request untouched")
			assert.Equal(t, origRaw, r.URL.RawQuery)
			assert.Equal(t, origURI, r.RequestURI)
			_, hasPrincipal := middleware.FromContext(r.Context())
			assert.False(t, hasPrincipal, "caller's context untouched")
		})
	}
}

// TestMiddleware_KeyStrippedFromParsedForm: a form parsed before the
// middleware does not carry the key downstream either.
func TestMiddleware_KeyStrippedFromParsedForm(t *testing.T) {
	f := newFixture(t)
	mw, err := middleware.New(middleware.Config{Verifier: f.m})
	require.NoError(t, err)
	r := httptest.NewRequest(http.MethodPost, "/run?x-api-key="+f.valid+"&stream=false", strings.NewReader("a=1"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	require.NoError(t, r.ParseForm())
	var form url.Values
	w := httptest.NewRecorder()
	mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.NoError(t, r.ParseForm())
		form = r.Form
	})).ServeHTTP(w, r)
	require.Equal(t, 200, w.Code)
	assert.Equal(t, url.Values{"a": {"1"}, "stream": {"false"}}, form)
	assert.Equal(t, f.valid, r.Form.Get("x-api-key"), "caller's form untouched")
}

// TestMiddleware_RevokedImmediately: DELETE is the revocation (docs/langflow-compatibility.md#api-key-endpoints); the next
// request with that key is refused at once, even on a warm cache.
func TestMiddleware_RevokedImmediately(t *testing.T) {
	ctx := context.Background()
	m := keyflowtest.NewManager(t)
	key, rec, err := m.Create(ctx, "user-1", "k", apikey.CreateOptions{})
	require.NoError(t, err)
	mw, err := middleware.New(middleware.Config{Verifier: m})
	require.NoError(t, err)
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	do := func() int {
		r := keyflowtest.WithKey(httptest.NewRequest(http.MethodGet, "/", nil), key)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	require.Equal(t, 200, do())
	require.Equal(t, 200, do()) // cache warm
	require.NoError(t, m.Delete(ctx, "user-1", rec.ID))
	assert.Equal(t, 403, do())
}

// TestMiddleware_ErrorReasons: a custom ErrorHandler and OnFailure read the
// reason with errors.Is; the key is never in err.
func TestMiddleware_ErrorReasons(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name   string
		key    string
		auto   bool
		failDB bool
		want   error
	}{
		{"no key", "", false, false, middleware.ErrNoKey},
		{"no key, auto-login", "", true, false, middleware.ErrAutoLoginNoKey},
		{"unknown", wellFormedUnknown, false, false, apikey.ErrInvalid},
		{"malformed", malformedKey, false, false, apikey.ErrInvalid},
		{"revoked", f.revoked, false, false, apikey.ErrInvalid},
		{"expired", f.expired, false, false, apikey.ErrExpired},
		{"inactive", f.inactive, false, false, apikey.ErrInactive},
		{"store down", unknownKey(), false, true, apikey.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var handled, failed error
			mw, err := middleware.New(middleware.Config{
				Verifier:  f.m,
				AutoLogin: tt.auto,
				ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
					handled = err
					w.WriteHeader(http.StatusTeapot)
				},
				OnFailure: func(r *http.Request, err error) { failed = err },
			})
			require.NoError(t, err)
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			if tt.key != "" {
				r.Header.Set("x-api-key", tt.key)
			}
			if tt.failDB {
				f.inj.FailAll(errDB)
				defer f.inj.Reset()
			}
			w := httptest.NewRecorder()
			mw(http.NotFoundHandler()).ServeHTTP(w, r)
			assert.Equal(t, http.StatusTeapot, w.Code)
			require.Error(t, handled)
			assert.ErrorIs(t, handled, tt.want)
			assert.Equal(t, handled, failed, "OnFailure sees the same reason")
			assert.Equal(t, !tt.failDB, middleware.IsRejection(handled))
			if tt.key != "" {
				assert.NotContains(t, handled.Error(), tt.key)
			}
		})
	}
}

func TestMiddleware_AutoLoginWarnsOnce(t *testing.T) {
	f := newFixture(t)
	var logs logBuf
	mw, err := middleware.New(middleware.Config{
		Verifier: f.m, AutoLogin: true, SkipAuthAutoLogin: true,
		Superuser: apikey.Principal{UserID: "su", KeyName: "langflow", Scopes: []string{}},
		Logger:    debugLogger(&logs),
	})
	require.NoError(t, err)
	var s seen
	h := mw(recorder(&s))
	for range 3 {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
		require.Equal(t, 200, w.Code)
	}
	assert.Equal(t, 1, strings.Count(logs.String(), autoLoginWarning))
	assert.Contains(t, logs.String(), "level=WARN")
	assert.Equal(t, apikey.Principal{UserID: "su", KeyName: "langflow", Source: apikey.SourceAutoLogin}, s.principal)
}

func TestNew_Validates(t *testing.T) {
	m, err := apikey.NewManager(apikey.Config{})
	require.NoError(t, err)
	defer m.Close()
	tests := []struct {
		name string
		cfg  middleware.Config
		err  string
	}{
		{"no verifier", middleware.Config{}, "Verifier is required"},
		// Issue 13 item 10: a typed nil passed the nil check and panicked on
		// every request.
		{"typed-nil *apikey.Manager", middleware.Config{Verifier: (*apikey.Manager)(nil)}, "Verifier is required"},
		{"unknown OptionsPolicy", middleware.Config{Verifier: m, OptionsPolicy: 7}, "OptionsPolicy 7 is unknown"},
		{"nil extractor", middleware.Config{Verifier: m, Extractors: []middleware.Extractor{nil}}, "Extractors[0] is nil"},
		{"skip auto-login without superuser", middleware.Config{Verifier: m, AutoLogin: true, SkipAuthAutoLogin: true}, "Superuser.UserID is required"},
		{"env key without superuser", middleware.Config{Verifier: m, EnvKey: "k"}, "Superuser.UserID is required"},
		{"auto-login without skip needs no superuser", middleware.Config{Verifier: m, AutoLogin: true}, ""},
		{"minimal", middleware.Config{Verifier: m}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mw, err := middleware.New(tt.cfg)
			if tt.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.err)
				assert.Nil(t, mw)
				return
			}
			require.NoError(t, err)
			require.NotNil(t, mw)
		})
	}
	t.Run("env key never in the error", func(t *testing.T) {
		_, err := middleware.New(middleware.Config{Verifier: m, EnvKey: "secret-env-key"})
		require.Error(t, err)
		assert.NotContains(t, err.Error(), "secret-env-key")
	})
	t.Run("nil next: 403 without a key, 404 after auth", func(t *testing.T) {
		key, _, err := m.Create(context.Background(), "u", "k", apikey.CreateOptions{})
		require.NoError(t, err)
		mw, err := middleware.New(middleware.Config{Verifier: m})
		require.NoError(t, err)
		w := httptest.NewRecorder()
		mw(nil).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
		assert.Equal(t, 403, w.Code)
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("x-api-key", key)
		w = httptest.NewRecorder()
		mw(nil).ServeHTTP(w, r)
		assert.Equal(t, 404, w.Code)
	})
}

func TestConfigFromEnv(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want middleware.Config
		err  []string
	}{
		{"unset: our defaults", nil, middleware.Config{}, nil},
		{"auto-login with skip", map[string]string{"LANGFLOW_AUTO_LOGIN": "true", "LANGFLOW_SKIP_AUTH_AUTO_LOGIN": "1"}, middleware.Config{AutoLogin: true, SkipAuthAutoLogin: true}, nil},
		{"pydantic spellings", map[string]string{"LANGFLOW_AUTO_LOGIN": "Yes", "LANGFLOW_SKIP_AUTH_AUTO_LOGIN": "OFF"}, middleware.Config{AutoLogin: true}, nil},
		{"set but empty is an error, as in Langflow", map[string]string{"LANGFLOW_AUTO_LOGIN": ""}, middleware.Config{}, []string{"LANGFLOW_AUTO_LOGIN is set but empty"}},
		{"pydantic does not trim", map[string]string{"LANGFLOW_AUTO_LOGIN": " true"}, middleware.Config{}, []string{"LANGFLOW_AUTO_LOGIN must be a boolean"}},
		{"false spelled out", map[string]string{"LANGFLOW_AUTO_LOGIN": "False"}, middleware.Config{}, nil},
		{"source db ignores LANGFLOW_API_KEY", map[string]string{"LANGFLOW_API_KEY_SOURCE": "db", "LANGFLOW_API_KEY": "k"}, middleware.Config{}, nil},
		{"source env", map[string]string{"LANGFLOW_API_KEY_SOURCE": "env", "LANGFLOW_API_KEY": " k "}, middleware.Config{EnvKey: " k "}, nil},
		{"source env without a key (Langflow: store only)", map[string]string{"LANGFLOW_API_KEY_SOURCE": "env"}, middleware.Config{}, nil},
		{"bad bool", map[string]string{"LANGFLOW_AUTO_LOGIN": "maybe"}, middleware.Config{}, []string{"LANGFLOW_AUTO_LOGIN must be a boolean"}},
		{"bad source (case-sensitive like the Literal)", map[string]string{"LANGFLOW_API_KEY_SOURCE": "ENV"}, middleware.Config{}, []string{`LANGFLOW_API_KEY_SOURCE must be "db" or "env", got "ENV"`}},
		{"all errors at once", map[string]string{"LANGFLOW_SKIP_AUTH_AUTO_LOGIN": "2", "LANGFLOW_API_KEY_SOURCE": "vault"}, middleware.Config{}, []string{"LANGFLOW_SKIP_AUTH_AUTO_LOGIN", "vault"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := middleware.ConfigFromEnv(func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok })
			if tt.err != nil {
				require.Error(t, err)
				for _, e := range tt.err {
					assert.Contains(t, err.Error(), e)
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want.AutoLogin, cfg.AutoLogin)
			assert.Equal(t, tt.want.SkipAuthAutoLogin, cfg.SkipAuthAutoLogin)
			assert.Equal(t, tt.want.EnvKey, cfg.EnvKey)
			assert.Nil(t, cfg.Verifier)
		})
	}
	t.Run("nil lookup reads the process environment", func(t *testing.T) {
		t.Setenv("LANGFLOW_AUTO_LOGIN", "on")
		cfg, err := middleware.ConfigFromEnv(nil)
		require.NoError(t, err)
		assert.True(t, cfg.AutoLogin)
	})
}

// TestRequireScope: a key with scopes reaches only routes requiring one of
// them; a key without scopes (and the env key, and auto-login) everything.
func TestRequireScope(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name   string
		method string
		key    string
		scope  string
		status int
		detail string
	}{
		{"scoped key, granted scope", "GET", f.scoped, "runs:read", 200, ""},
		{"scoped key, other scope", "GET", f.scoped, "runs:write", 403, `API key lacks the required scope "runs:write"`},
		{"unrestricted key", "GET", f.valid, "runs:write", 200, ""},
		{"env key is unrestricted", "GET", "env-key", "runs:write", 200, ""},
		{"no principal (optional route)", "GET", "", "runs:read", 403, msgInvalidKey},
		{"CORS preflight without principal passes", "OPTIONS", "", "runs:read", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mw, err := middleware.New(middleware.Config{Verifier: f.m, Optional: true, EnvKey: "env-key", Superuser: apikey.Principal{UserID: "su"}})
			require.NoError(t, err)
			var s seen
			h := mw(middleware.RequireScope(tt.scope)(recorder(&s)))
			r := httptest.NewRequest(tt.method, "/", nil)
			if tt.key != "" {
				r.Header.Set("x-api-key", tt.key)
			}
			if tt.method == http.MethodOptions {
				r.Header.Set("Access-Control-Request-Method", "GET")
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			assert.Equal(t, tt.status, w.Code)
			assert.Equal(t, tt.status == 200, s.called)
			if tt.detail != "" {
				assert.Equal(t, tt.detail, detail(t, w.Body.String()))
			}
		})
	}
	t.Run("HasScope", func(t *testing.T) {
		assert.True(t, apikey.Principal{}.HasScope("x"))
		assert.True(t, apikey.Principal{Scopes: []string{"a", "x"}}.HasScope("x"))
		assert.False(t, apikey.Principal{Scopes: []string{"a"}}.HasScope("x"))
	})
}

// withPrincipal returns r carrying p, as the middleware leaves it.
func withPrincipal(r *http.Request, p apikey.Principal) *http.Request {
	return r.WithContext(middleware.NewContext(r.Context(), p))
}

// TestPrincipalContext: NewContext attaches a principal without a key, so a
// host's handlers can be tested alone, and FromContext and FromRequest read
// it back alike.
func TestPrincipalContext(t *testing.T) {
	p := apikey.Principal{UserID: "u1", KeyID: "k1", KeyName: "ci", Scopes: []string{"a"}, Source: apikey.SourceDB}
	r := withPrincipal(httptest.NewRequest(http.MethodGet, "/", nil), p)
	got, ok := middleware.FromContext(r.Context())
	require.True(t, ok)
	assert.Equal(t, p, got)
	got, ok = middleware.FromRequest(r)
	assert.True(t, ok)
	assert.Equal(t, p, got)

	_, ok = middleware.FromContext(context.Background())
	assert.False(t, ok)
	_, ok = middleware.FromRequest(httptest.NewRequest(http.MethodGet, "/", nil))
	assert.False(t, ok)
	nobody := withPrincipal(httptest.NewRequest(http.MethodGet, "/", nil), apikey.Principal{KeyID: "k1"})
	_, ok = middleware.FromRequest(nobody)
	assert.False(t, ok, "an empty user ID is no user")
	_, ok = middleware.FromContext(nobody.Context())
	assert.False(t, ok, "FromContext agrees with FromRequest")

	//lint:ignore SA1012 a nil context is tolerated on purpose
	ctx := middleware.NewContext(nil, p)
	got, ok = middleware.FromContext(ctx)
	assert.True(t, ok)
	assert.Equal(t, "u1", got.UserID)

	// The context still behaves as its parent: values, cancellation, deadline.
	type k struct{}
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), k{}, "v"))
	ctx = middleware.NewContext(parent, p)
	child, cancelChild := context.WithTimeout(ctx, time.Hour)
	defer cancelChild()
	assert.Equal(t, "v", child.Value(k{}))
	cancel()
	<-child.Done()
	assert.ErrorIs(t, child.Err(), context.Canceled)
	assert.Contains(t, middleware.NewContext(context.Background(), p).(interface{ String() string }).String(), "apikey.Principal")

	// An inner NewContext shadows the outer principal.
	inner := middleware.NewContext(middleware.NewContext(context.Background(), p), apikey.Principal{UserID: "u2"})
	got, _ = middleware.FromContext(inner)
	assert.Equal(t, "u2", got.UserID)
}

// TestRouters: the middleware works with Go 1.22 ServeMux patterns (examples/chi
// checks chi).
func TestRouters(t *testing.T) {
	f := newFixture(t)
	mw, err := middleware.New(middleware.Config{Verifier: f.m})
	require.NoError(t, err)
	whoami := func(param func(*http.Request) string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, _ := middleware.FromContext(r.Context())
			_, _ = io.WriteString(w, p.UserID+" "+param(r)+" "+r.URL.RawQuery)
		})
	}
	mux := http.NewServeMux()
	mux.Handle("GET /flows/{id}", mw(whoami(func(r *http.Request) string { return r.PathValue("id") })))
	for name, h := range map[string]http.Handler{"ServeMux": mux} {
		t.Run(name, func(t *testing.T) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/flows/42?x-api-key="+f.valid+"&v=1", nil))
			assert.Equal(t, 200, w.Code)
			assert.Equal(t, "user-1 42 v=1", w.Body.String())
			w = httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/flows/42", nil))
			assert.Equal(t, 403, w.Code)
		})
	}
}

// TestMessages_Langflow pins the default answers to Langflow's literal texts
// (docs/langflow-compatibility.md#authentication-errors).
func TestMessages_Langflow(t *testing.T) {
	tests := []struct {
		err    error
		status int
		body   string
	}{
		{middleware.ErrNoKey, 403, `{"detail":"An API key must be passed as query or header"}`},
		{middleware.ErrAutoLoginNoKey, 403, `{"detail":"Since v1.5, LANGFLOW_AUTO_LOGIN requires a valid API key. Set LANGFLOW_SKIP_AUTH_AUTO_LOGIN=true to skip this check. Please update your authentication method."}`},
		{apikey.ErrInvalid, 403, `{"detail":"Invalid or missing API key"}`},
		{apikey.ErrExpired, 403, `{"detail":"Invalid or missing API key"}`},
		{apikey.ErrInactive, 403, `{"detail":"Invalid or missing API key"}`},
		{apikey.ErrUnavailable, 503, `{"detail":"Authentication service unavailable"}`},
		{errors.New("some verifier's own error"), 503, `{"detail":"Authentication service unavailable"}`},
	}
	for _, tt := range tests {
		t.Run(tt.err.Error(), func(t *testing.T) {
			w := httptest.NewRecorder()
			middleware.DefaultErrorHandler(w, httptest.NewRequest(http.MethodGet, "/", nil), tt.err)
			assert.Equal(t, tt.status, w.Code)
			assert.JSONEq(t, tt.body, w.Body.String())
		})
	}
}

type brokenVerifier struct{}

func (brokenVerifier) Verify(context.Context, string) (apikey.Principal, error) {
	return apikey.Principal{}, errors.New("redis: i/o timeout on 10.0.0.9")
}

// TestMiddleware_UnknownVerifierError: an error that is no verdict on the key
// fails closed (503), with the cause in the log and not in the response.
func TestMiddleware_UnknownVerifierError(t *testing.T) {
	var logs logBuf
	mw, err := middleware.New(middleware.Config{Verifier: brokenVerifier{}, Logger: debugLogger(&logs)})
	require.NoError(t, err)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("x-api-key", "sk-some-key")
	w := httptest.NewRecorder()
	var s seen
	mw(recorder(&s)).ServeHTTP(w, r)
	assert.False(t, s.called)
	assert.Equal(t, 503, w.Code)
	assert.NotContains(t, w.Body.String(), "10.0.0.9")
	assert.Contains(t, logs.String(), "level=ERROR")
	assert.Contains(t, logs.String(), "10.0.0.9")
	assert.NotContains(t, logs.String(), "sk-some-key")
}

// TestMiddleware_EnvKeyCostsNoAllocation: with LANGFLOW_API_KEY_SOURCE=env,
// every presented key is first compared with the env key; that comparison
// must not add an allocation to a request with a store key (the header
// path's two: the context and the request copy).
func TestMiddleware_EnvKeyCostsNoAllocation(t *testing.T) {
	f := newFixture(t)
	mw, err := middleware.New(middleware.Config{Verifier: f.m, EnvKey: "an-env-key-longer-than-thirty-two-bytes", Superuser: apikey.Principal{UserID: "su"}})
	require.NoError(t, err)
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	r := httptest.NewRequest(http.MethodGet, "/api/v1/run/flow", nil)
	r.Header.Set("x-api-key", f.valid)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r) // warm the cache
	allocs := testing.AllocsPerRun(100, func() { h.ServeHTTP(w, r) })
	assert.Equal(t, 2.0, allocs)
}

// TestMiddleware_RequestWithoutURL: a hand-built request without a URL (as
// a host's own code or a test may make) is answered, never a panic.
func TestMiddleware_RequestWithoutURL(t *testing.T) {
	f := newFixture(t)
	mw, err := middleware.New(middleware.Config{Verifier: f.m, Logger: slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	require.NoError(t, err)
	var s seen
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.called = true }))
	for _, key := range []string{f.valid, malformedKey} {
		r := &http.Request{Method: http.MethodGet, Header: http.Header{"X-Api-Key": {key}}}
		w := httptest.NewRecorder()
		require.NotPanics(t, func() { h.ServeHTTP(w, r.WithContext(context.Background())) })
		if key == f.valid {
			assert.Equal(t, http.StatusOK, w.Code)
		} else {
			assert.Equal(t, http.StatusForbidden, w.Code)
		}
	}
	assert.True(t, s.called)
}
