package audithttp_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/audit"
	"github.com/keyflow-dev/keyflow/audit/audithttp"
)

func setup(t *testing.T) http.Handler {
	t.Helper()
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	l, err := audit.New(audit.Config{Now: func() time.Time { return now }})
	require.NoError(t, err)
	ctx := context.Background()
	for i, ev := range []struct {
		actor  string
		action audit.Action
	}{{"alice", audit.Login}, {"bob", audit.Login}, {"alice", audit.KeyCreated}, {"admin", audit.UserCreated}, {"alice", audit.KeyDeleted}} {
		_, err := l.Record(ctx, audit.Event{Time: now.Add(time.Duration(i) * time.Minute), Action: ev.action, Outcome: audit.Success, Actor: audit.Actor{UserID: ev.actor}})
		require.NoError(t, err)
	}
	h, err := audithttp.New(audithttp.Config{
		Log: l,
		User: func(r *http.Request) (apikey.Principal, bool) {
			u := r.Header.Get("X-Test-User")
			return apikey.Principal{UserID: u}, u != ""
		},
		SeesAll: func(r *http.Request) bool { return r.Header.Get("X-Test-User") == "admin" },
	})
	require.NoError(t, err)
	return h
}

func get(t *testing.T, h http.Handler, user, query string) (int, audithttp.Page, string) {
	t.Helper()
	r := httptest.NewRequest("GET", "/?"+query, nil)
	if user != "" {
		r.Header.Set("X-Test-User", user)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var p audithttp.Page
	if w.Code == http.StatusOK {
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &p))
	}
	return w.Code, p, w.Body.String()
}

func seqs(p audithttp.Page) []int64 {
	out := []int64{}
	for _, e := range p.Events {
		out = append(out, e.Seq)
	}
	return out
}

func TestList(t *testing.T) {
	h := setup(t)
	for _, tc := range []struct {
		name, user, query string
		code              int
		want              []int64
	}{
		{"superuser sees all, newest first", "admin", "", 200, []int64{5, 4, 3, 2, 1}},
		{"a user sees their own", "alice", "", 200, []int64{5, 3, 1}},
		{"a user names themself", "alice", "actor=alice", 200, []int64{5, 3, 1}},
		{"a user cannot read another's", "alice", "actor=bob", 403, nil},
		{"superuser filters by actor", "admin", "actor=bob", 200, []int64{2}},
		{"action", "admin", "action=auth.login", 200, []int64{2, 1}},
		{"actions", "admin", "action=auth.login,key.deleted", 200, []int64{5, 2, 1}},
		{"repeated action", "admin", "action=auth.login&action=user.created", 200, []int64{4, 2, 1}},
		{"time", "admin", "since=" + url.QueryEscape("2026-06-01T12:01:00Z") + "&until=" + url.QueryEscape("2026-06-01T12:03:00Z"), 200, []int64{3, 2}},
		{"cursor", "admin", "cursor=4&limit=2", 200, []int64{3, 2}},
		{"no user", "", "", 401, nil},
		{"bad time", "admin", "since=yesterday", 422, nil},
		{"bad limit", "admin", "limit=0", 422, nil},
		{"bad cursor", "admin", "cursor=x", 422, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, p, body := get(t, h, tc.user, tc.query)
			require.Equal(t, tc.code, code, body)
			if tc.code == 200 {
				assert.Equal(t, tc.want, seqs(p))
			}
		})
	}
}

func TestPages(t *testing.T) {
	h := setup(t)
	var all []int64
	query := "limit=2"
	for range 5 {
		code, p, body := get(t, h, "admin", query)
		require.Equal(t, 200, code, body)
		all = append(all, seqs(p)...)
		if p.NextCursor == nil {
			break
		}
		query = "limit=2&cursor=" + *p.NextCursor
	}
	assert.Equal(t, []int64{5, 4, 3, 2, 1}, all)
}

func TestMethodAndPath(t *testing.T) {
	h := setup(t)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/", nil))
	assert.Equal(t, 405, w.Code)
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/x", nil))
	assert.Equal(t, 404, w.Code)
}
