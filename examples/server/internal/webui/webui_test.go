package webui

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/middleware"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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
	u := &UI{superuser: apikey.Principal{UserID: "su", Source: apikey.SourceAutoLogin}, sessions: s}
	var got string
	h := u.Session(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := middleware.FromContext(r.Context())
		got = p.UserID
	}), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusForbidden) }))
	value := s.issue()
	send := func() *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/api/v1/api_key/", nil)
		r.AddCookie(&http.Cookie{Name: SessionCookie, Value: value})
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
	var c *http.Cookie
	for _, rc := range res.Cookies() {
		if rc.Name == SessionCookie {
			c = rc
		}
	}
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

func TestNoDirectoryListing(t *testing.T) {
	t.Parallel()
	h := http.FileServerFS(noDirs{files})
	for path, want := range map[string]int{"/static/": 404, "/templates/": 404, "/": 404, "/static/app.css": 200, "/static/app.js": 200} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		assert.Equal(t, want, w.Code, path)
	}
}
