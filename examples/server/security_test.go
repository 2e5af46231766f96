package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/langflowdb/langflowtest"
	"github.com/keyflow-dev/keyflow/middleware"
)

func TestHostPolicy(t *testing.T) {
	t.Parallel()
	def := newHostPolicy("127.0.0.1", nil)
	custom := newHostPolicy("keyflow.lan", []string{"ui.example", ".corp.example", "192.0.2.7", "[2001:db8::1]"})
	all := newHostPolicy("127.0.0.1", []string{"*"})
	for _, tc := range []struct {
		host              string
		def, custom, star bool
	}{
		{"127.0.0.1:7860", true, true, true},
		{"127.0.0.1", true, true, true},
		{"127.9.8.7:1", true, true, true},
		{"[::1]:7860", true, true, true},
		{"[::1]", true, true, true},
		{"[::ffff:127.0.0.1]:7860", true, true, true},
		{"localhost:7860", true, true, true},
		{"LocalHost.:7860", true, true, true},
		{"app.localhost:7860", false, false, true},
		{"attacker.example:7860", false, false, true},
		{"attacker.example", false, false, true},
		{"localhost.attacker.example", false, false, true},
		{"127.0.0.1.nip.io", false, false, true},
		{"0.0.0.0:7860", false, false, true},
		{"", false, false, true},
		{"[::1", false, false, true},
		{"[::1]x", false, false, true},
		{"keyflow.lan:7860", false, true, true},
		{"ui.example", false, true, true},
		{"UI.Example.:80", false, true, true},
		{"sub.ui.example", false, false, true},
		{"corp.example", false, true, true},
		{"a.b.corp.example:1", false, true, true},
		{"evilcorp.example", false, false, true},
		{"192.0.2.7:7860", false, true, true},
		{"[2001:db8::1]:7860", false, true, true},
		{"[2001:db8::2]:7860", false, false, true},
	} {
		assert.Equal(t, tc.def, def.allows(tc.host), "default %q", tc.host)
		assert.Equal(t, tc.custom, custom.allows(tc.host), "custom %q", tc.host)
		assert.Equal(t, tc.star, all.allows(tc.host), "* %q", tc.host)
	}
}

func TestParseAllowedHosts(t *testing.T) {
	t.Parallel()
	got, err := parseAllowedHosts("X", " a.example , ,.b.example,192.0.2.1:80,[::1],* ")
	require.NoError(t, err)
	assert.Equal(t, []string{"a.example", ".b.example", "192.0.2.1:80", "[::1]", "*"}, got)
	got, err = parseAllowedHosts("X", "")
	require.NoError(t, err)
	assert.Empty(t, got)
	for _, bad := range []string{"http://a.example", "a.example/x", "u@a.example", "a b", "[::1", "."} {
		_, err := parseAllowedHosts("KEYFLOW_ALLOWED_HOSTS", bad)
		require.Error(t, err, bad)
		assert.Contains(t, err.Error(), "KEYFLOW_ALLOWED_HOSTS")
	}
}

// An invalid KEYFLOW_ALLOWED_HOSTS or --allowed-hosts stops the server
// before it starts, naming the setting.
func TestAllowedHostsConfig(t *testing.T) {
	t.Setenv("KEYFLOW_ALLOWED_HOSTS", "http://x.example/")
	_, err := loadConfig(&commonFlags{configDir: t.TempDir(), defaultLevel: "info"}, nil, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `KEYFLOW_ALLOWED_HOSTS: "http://x.example/" is not a host name`)

	t.Setenv("KEYFLOW_ALLOWED_HOSTS", "a.example,.b.example")
	cfg, err := loadConfig(&commonFlags{configDir: t.TempDir(), defaultLevel: "info"}, nil, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"a.example", ".b.example"}, cfg.AllowedHosts)
	assert.True(t, cfg.hostCheckEnabled(), "a configured list applies even without auto-login")

	var stderr strings.Builder
	assert.Equal(t, 1, realMain([]string{"run", "--config-dir", t.TempDir(), "--allowed-hosts", "a.example/x"}, nil, io.Discard, &stderr))
	assert.Contains(t, stderr.String(), `--allowed-hosts: "a.example/x" is not a host name`)
}

// The check applies while auto-login is on; without it (and without a list)
// every Host is answered, since a request then needs a key.
func TestHostCheckOnlyWithAutoLogin(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		autoLogin bool
		allowed   []string
		want      int
	}{
		{true, nil, http.StatusMisdirectedRequest},
		{false, nil, http.StatusForbidden}, // no key: the middleware's answer
		{false, []string{"other.example"}, http.StatusMisdirectedRequest},
		{true, []string{"*"}, http.StatusForbidden},
	} {
		a := &app{cfg: config{Host: "127.0.0.1", Auth: middleware.Config{AutoLogin: tc.autoLogin}, AllowedHosts: tc.allowed},
			log: slog.New(slog.DiscardHandler)}
		h := a.harden(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusForbidden) }))
		r := httptest.NewRequest("GET", "/api/v1/api_key/", nil)
		r.Host = "attacker.example:7860"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		assert.Equal(t, tc.want, w.Code, "%+v", tc)
		assert.Equal(t, "nosniff", w.Header().Get("X-Content-Type-Options"))
	}
}

func TestSessions(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	s, err := newSessions(clock)
	require.NoError(t, err)
	other, err := newSessions(clock)
	require.NoError(t, err)

	v1, v2 := s.issue(), s.issue()
	assert.NotEqual(t, v1, v2, "each value is new")
	ok, renew := s.check(v1)
	assert.True(t, ok)
	assert.False(t, renew)
	ok, _ = other.check(v1)
	assert.False(t, ok, "another process's (or a restarted one's) value")

	tampered := []byte(v1)
	tampered[3] ^= 1
	for _, bad := range []string{"", "forged", string(tampered), v1 + "A", v1[:len(v1)-1], strings.Repeat("A", len(v1))} {
		ok, _ := s.check(bad)
		assert.False(t, ok, "%q", bad)
	}

	now = now.Add(sessionRenewAfter)
	ok, renew = s.check(v1)
	assert.True(t, ok)
	assert.True(t, renew, "due for a new value")

	now = now.Add(sessionLifetime - sessionRenewAfter - time.Second)
	ok, _ = s.check(v1)
	assert.True(t, ok, "one second before it expires")
	now = now.Add(time.Second)
	ok, _ = s.check(v1)
	assert.False(t, ok, "expired")

	// A value from the future (the clock went back more than a minute).
	future := s.issue()
	now = now.Add(-2 * time.Minute)
	ok, _ = s.check(future)
	assert.False(t, ok)
}

// A request with a session due for renewal gets a new cookie; the UI page
// gets one with a lifetime every time.
func TestSessionRenewal(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	s, err := newSessions(func() time.Time { return now })
	require.NoError(t, err)
	u := &ui{app: &app{superuser: user{ID: "su"}}, sessions: s}
	var got string
	h := u.session(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := middleware.FromContext(r.Context())
		got = p.UserID
	}), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusForbidden) }))
	value := s.issue()
	send := func() *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/api/v1/api_key/", nil)
		r.AddCookie(&http.Cookie{Name: sessionCookie, Value: value})
		w := httptest.NewRecorder()
		got = ""
		h.ServeHTTP(w, r)
		return w
	}
	w := send()
	assert.Equal(t, "su", got)
	assert.Empty(t, w.Header().Values("Set-Cookie"), "fresh: no renewal")

	now = now.Add(sessionRenewAfter + time.Second)
	w = send()
	assert.Equal(t, "su", got)
	res := http.Response{Header: w.Header()}
	c := sessionFrom(&res)
	require.NotNil(t, c, "renewed")
	assert.NotEqual(t, value, c.Value)
	assert.Equal(t, int(sessionLifetime/time.Second), c.MaxAge)
	assert.True(t, c.HttpOnly)
	assert.Equal(t, "/api/", c.Path)

	now = now.Add(sessionLifetime)
	w = send()
	assert.Empty(t, got, "expired: not the superuser")
	assert.Equal(t, http.StatusForbidden, w.Code)
	value = c.Value
	send()
	assert.Empty(t, got, "the renewed value expired too")
}

// The redirect guard forwards streamed answers (Flush) and replaces only
// redirects.
func TestRedirectGuard(t *testing.T) {
	t.Parallel()
	stream := noKeyRedirects(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "event: one\n\n")
		require.NoError(t, http.NewResponseController(w).Flush())
		_, _ = io.WriteString(w, "event: two\n\n")
	}))
	w := httptest.NewRecorder()
	stream.ServeHTTP(w, httptest.NewRequest("POST", "/api/v1/run/x?x-api-key=k&stream=true", nil))
	assert.Equal(t, 200, w.Code)
	assert.True(t, w.Flushed)
	assert.Equal(t, "event: one\n\nevent: two\n\n", w.Body.String())

	redirect := noKeyRedirects(http.RedirectHandler("/a/?x-api-key=k", http.StatusMovedPermanently))
	for _, q := range []string{"x-api-key=k", "X-Api-Key=k", "x%2dapi%2dkey=k", "a=1?x-api-key=k"} {
		w = httptest.NewRecorder()
		redirect.ServeHTTP(w, httptest.NewRequest("GET", "/a?"+q, nil))
		assert.Equal(t, 404, w.Code, q)
		assert.Empty(t, w.Header().Get("Location"), q)
		assert.JSONEq(t, `{"detail":"`+msgNoRedirectWithKey+`"}`, w.Body.String(), q)
	}
	w = httptest.NewRecorder()
	redirect.ServeHTTP(w, httptest.NewRequest("GET", "/a?b=1", nil))
	assert.Equal(t, 301, w.Code, "no key: the redirect stays")

	notModified := noKeyRedirects(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotModified)
	}))
	w = httptest.NewRecorder()
	notModified.ServeHTTP(w, httptest.NewRequest("GET", "/static/app.css?x-api-key=k", nil))
	assert.Equal(t, http.StatusNotModified, w.Code, "304 is not a redirect")
}

func TestNoDirectoryListing(t *testing.T) {
	t.Parallel()
	h := http.FileServerFS(noDirs{uiFiles})
	for path, want := range map[string]int{"/static/": 404, "/templates/": 404, "/": 404, "/static/app.css": 200, "/static/app.js": 200} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		assert.Equal(t, want, w.Code, path)
	}
}

// A new SQLite database is created 0600 in a new 0700 directory, whatever
// the umask allows; an existing one is not changed.
func TestSQLiteFileModes(t *testing.T) {
	dir := t.TempDir() + "/new/dir"
	cfg := config{ConfigDir: t.TempDir(), DatabaseURL: "sqlite:///" + dir + "/k.db", Host: "127.0.0.1", Getenv: func(string) string { return "" }}
	a, err := openApp(context.Background(), cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer a.Close()
	for _, p := range []string{dir + "/k.db", dir + "/k.db-wal", dir + "/k.db-shm"} {
		st, err := os.Stat(p)
		require.NoError(t, err, p)
		assert.Equal(t, os.FileMode(0o600), st.Mode().Perm(), p)
	}
	st, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), st.Mode().Perm())
}

// TestLangflowStateFileMode: on a Langflow database, the server's own
// SQLite file (users mirrored with their password hashes, flows with their
// literal values) is created 0600 like keyflow.db, in a config dir created
// 0700. Before, SQLite created it with the umask's mode (0644).
func TestLangflowStateFileMode(t *testing.T) {
	url, _, _ := langflowDatabase(t, false, langflowtest.GenNewest)
	cfg := langflowConfig(t, url, langflowSecret)
	cfg.ConfigDir = filepath.Join(cfg.ConfigDir, "new")
	a, err := openApp(context.Background(), cfg, quietLog())
	require.NoError(t, err)
	defer a.Close()
	require.NotNil(t, a.langflow)
	st, err := os.Stat(cfg.ConfigDir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), st.Mode().Perm(), "config dir")
	for _, name := range []string{langflowStateFile, langflowStateFile + "-wal", langflowStateFile + "-shm"} {
		st, err := os.Stat(filepath.Join(cfg.ConfigDir, name))
		if assert.NoError(t, err, name) {
			assert.Equal(t, os.FileMode(0o600), st.Mode().Perm(), name)
		}
	}
}

// BenchmarkHarden measures what the Host check, nosniff and the redirect
// guard add to a request that passes them (a loopback Host, a key in the
// header, as /run is called).
func BenchmarkHarden(b *testing.B) {
	a := &app{cfg: config{Host: "127.0.0.1", Auth: middleware.Config{AutoLogin: true}}, log: slog.New(slog.DiscardHandler)}
	h := a.harden(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	r := httptest.NewRequest("POST", "/api/v1/run/x?stream=false", nil)
	r.Host = "127.0.0.1:7860"
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}

type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}

// FuzzHostPolicy: any Host header is answered without a panic, and the
// default policy allows only localhost and loopback addresses.
func FuzzHostPolicy(f *testing.F) {
	for _, s := range []string{"127.0.0.1:7860", "[::1]:1", "localhost.", "attacker.example:7860", "[", "[::1]x", ":", "LOCALHOST:", "[::ffff:127.0.0.1]"} {
		f.Add(s)
	}
	def := newHostPolicy("127.0.0.1", nil)
	f.Fuzz(func(t *testing.T, host string) {
		if !def.allows(host) {
			return
		}
		name, addr, ok := splitHost(host)
		if !ok || !(addr.IsLoopback() || strings.EqualFold(name, "localhost")) {
			t.Fatalf("allowed %q", host)
		}
	})
}

// unscoped is for routes no scope names: keys with scopes never pass.
func TestUnscoped(t *testing.T) {
	t.Parallel()
	h := unscoped(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	for _, tc := range []struct {
		name string
		p    *apikey.Principal
		want int
	}{
		{"no principal", nil, http.StatusForbidden},
		{"unrestricted key", &apikey.Principal{UserID: "u"}, http.StatusTeapot},
		{"scoped key", &apikey.Principal{UserID: "u", Scopes: []string{"keys"}}, http.StatusForbidden},
		{"auto-login", &apikey.Principal{UserID: "su", Source: apikey.SourceAutoLogin}, http.StatusTeapot},
	} {
		r := httptest.NewRequest("GET", "/api/v1/users/", nil)
		if tc.p != nil {
			r = r.WithContext(middleware.NewContext(r.Context(), *tc.p))
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		assert.Equal(t, tc.want, w.Code, tc.name)
	}
}

// TestForgedPreflights: an OPTIONS request with Access-Control-Request-Method
// (which any client can add) passes the key middleware without a principal,
// as a real CORS preflight must; no route of the server then acts on it as
// on another method: every route answers 4xx and changes nothing. With and
// without auto-login, and with LANGFLOW_SKIP_AUTH_AUTO_LOGIN.
func TestForgedPreflights(t *testing.T) {
	for _, mode := range []struct {
		name            string
		autoLogin, skip bool
	}{{"login", false, false}, {"auto-login", true, false}, {"skip-auth", true, true}} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			a, srv, echo := startApp(t, mode.autoLogin)
			if mode.skip {
				a.cfg.Auth.SkipAuthAutoLogin = true
				h, err := a.handler()
				require.NoError(t, err)
				srv = httptest.NewServer(h)
				t.Cleanup(srv.Close)
			}
			ctx := context.Background()
			keysBefore, err := a.keys.List(ctx, a.superuser.ID)
			require.NoError(t, err)
			for _, path := range []string{
				"/api/v1/api_key/", "/api/v1/api_key/" + echo.ID, "/api/v1/variables/", "/api/v1/variables/" + echo.ID,
				"/api/v1/flows/", "/api/v1/run/" + echo.ID, "/api/v1/run/echo?stream=true",
				"/api/v1/login", "/api/v1/refresh", "/api/v1/logout",
				"/api/v1/users/", "/api/v1/users/whoami", "/api/v1/users/" + a.superuser.ID, "/", "/health", "/static/app.js",
			} {
				res, body := httpDo(t, http.MethodOptions, srv.URL+path, strings.NewReader(`{"name":"forged"}`),
					"Access-Control-Request-Method", "POST", "Origin", "http://evil.example", "Host", "127.0.0.1")
				assert.GreaterOrEqual(t, res.StatusCode, 400, "%s: %s", path, body)
				assert.Less(t, res.StatusCode, 500, "%s: %s", path, body)
				assert.Empty(t, res.Header.Get("Set-Cookie"), path)
				assert.NotContains(t, body, "sk-", path)
			}
			keysAfter, err := a.keys.List(ctx, a.superuser.ID)
			require.NoError(t, err)
			assert.Len(t, keysAfter, len(keysBefore), "no key made by a forged preflight")
		})
	}
}
