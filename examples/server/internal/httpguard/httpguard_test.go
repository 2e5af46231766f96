package httpguard

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
	got, err := ParseAllowedHosts("X", " a.example , ,.b.example,192.0.2.1:80,[::1],* ")
	require.NoError(t, err)
	assert.Equal(t, []string{"a.example", ".b.example", "192.0.2.1:80", "[::1]", "*"}, got)
	got, err = ParseAllowedHosts("X", "")
	require.NoError(t, err)
	assert.Empty(t, got)
	for _, bad := range []string{"http://a.example", "a.example/x", "u@a.example", "a b", "[::1", "."} {
		_, err := ParseAllowedHosts("KEYFLOW_ALLOWED_HOSTS", bad)
		require.Error(t, err, bad)
		assert.Contains(t, err.Error(), "KEYFLOW_ALLOWED_HOSTS")
	}
}

// The check applies while it is enabled (while auto-login is on, or with a
// list); without it every Host is answered, since a request then needs a
// key.
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
		s := Settings{CheckHost: tc.autoLogin || len(tc.allowed) > 0, ListenHost: "127.0.0.1", AllowedHosts: tc.allowed, AutoLogin: tc.autoLogin}
		h := Harden(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusForbidden) }), s, slog.New(slog.DiscardHandler))
		r := httptest.NewRequest("GET", "/api/v1/api_key/", nil)
		r.Host = "attacker.example:7860"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		assert.Equal(t, tc.want, w.Code, "%+v", tc)
		assert.Equal(t, "nosniff", w.Header().Get("X-Content-Type-Options"))
	}
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

// BenchmarkHarden measures what the Host check, nosniff and the redirect
// guard add to a request that passes them (a loopback Host, a key in the
// header, as /run is called).
func BenchmarkHarden(b *testing.B) {
	s := Settings{CheckHost: true, ListenHost: "127.0.0.1", AutoLogin: true}
	h := Harden(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), s, slog.New(slog.DiscardHandler))
	r := httptest.NewRequest("POST", "/api/v1/run/x?stream=false", nil)
	r.Host = "127.0.0.1:7860"
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}

type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header { return d.h }

func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }

func (d *discardWriter) WriteHeader(int) {}

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
