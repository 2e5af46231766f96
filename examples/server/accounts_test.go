package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/examples/server/internal/accounts"
	"github.com/keyflow-dev/keyflow/examples/server/internal/config"
	"github.com/keyflow-dev/keyflow/examples/server/internal/httpserver"
	"github.com/keyflow-dev/keyflow/examples/server/internal/login"
	"github.com/keyflow-dev/keyflow/examples/server/internal/webui"
	"github.com/keyflow-dev/keyflow/middleware"
)

// TestInactiveUserKeys: a deactivated user's API keys stop working at once
// on every route (403 "User account is inactive", as in the newest
// Langflow), nothing is created through them, and they work again when the
// user is reactivated. Before, only login tokens were refused: the keys of a
// deactivated user kept listing and changing variables and minting keys.
func TestInactiveUserKeys(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			a, srv := startLoginApp(t, func(c *config.Config) {
				c.NewUserIsActive = true
				if b.postgres {
					c.DatabaseURL = sharedDatabase(t)
				}
			})
			ctx := context.Background()
			su := []string{"Authorization", "Bearer " + loginTokens(t, srv, "admin", testPassword).AccessToken}
			res, body := httpDo(t, "POST", srv.URL+"/api/v1/users/", strings.NewReader(`{"username":"dave","password":"dave-password"}`), su...)
			require.Equal(t, 201, res.StatusCode, body)
			dave := decode[accounts.UserRead](t, body)
			key, _, err := a.Keys.Create(ctx, dave.ID, "dave's", apikey.CreateOptions{})
			require.NoError(t, err)
			_, err = a.Flows.Create(ctx, dave.ID, "Dave's flow", "dave-flow", nil)
			require.NoError(t, err)

			type call struct{ method, path, body string }
			calls := []call{
				{"GET", "/api/v1/variables/", ""},
				{"POST", "/api/v1/variables/", `{"name":"V","value":"v","type":"Generic","default_fields":[]}`},
				{"GET", "/api/v1/api_key/", ""},
				{"POST", "/api/v1/api_key/", `{"name":"more"}`},
				{"GET", "/api/v1/flows/", ""},
				{"POST", "/api/v1/flows/", `{"name":"f","fields":{}}`},
				{"POST", "/api/v1/run/dave-flow", `{"input_value":"hi"}`},
				{"POST", "/api/v1/run/dave-flow?stream=true", `{"input_value":"hi"}`},
			}
			status := func(c call) (int, string) {
				var r *strings.Reader
				if c.body != "" {
					r = strings.NewReader(c.body)
				}
				var res *http.Response
				var body string
				if r != nil {
					res, body = httpDo(t, c.method, srv.URL+c.path, r, "x-api-key", key, "Content-Type", "application/json")
				} else {
					res, body = httpDo(t, c.method, srv.URL+c.path, nil, "x-api-key", key)
				}
				return res.StatusCode, body
			}
			for _, c := range calls[:1] {
				code, body := status(c)
				require.Equal(t, 200, code, body)
			}
			keysBefore, err := a.Keys.List(ctx, dave.ID)
			require.NoError(t, err)

			res, body = httpDo(t, "PATCH", srv.URL+"/api/v1/users/"+dave.ID, strings.NewReader(`{"is_active":false}`), su...)
			require.Equal(t, 200, res.StatusCode, body)
			for _, c := range calls {
				code, body := status(c)
				assert.Equal(t, http.StatusForbidden, code, "%s %s: %s", c.method, c.path, body)
				assert.JSONEq(t, `{"detail":"`+login.MsgKeyUserInactive+`"}`, body, "%s %s", c.method, c.path)
			}
			keysAfter, err := a.Keys.List(ctx, dave.ID)
			require.NoError(t, err)
			assert.Len(t, keysAfter, len(keysBefore), "no key minted by an inactive user's key")

			res, body = httpDo(t, "PATCH", srv.URL+"/api/v1/users/"+dave.ID, strings.NewReader(`{"is_active":true}`), su...)
			require.Equal(t, 200, res.StatusCode, body)
			code, body := status(calls[0])
			assert.Equal(t, 200, code, "reactivated: the key works again: %s", body)
		})
	}
}

// BenchmarkActiveKeyUser measures what checking the key's user adds to a
// request authenticated by an API key: a map look-up while the user was
// found active less than login.ActiveUserTTL ago, else one read of the users
// table (SQLite) about once a second per user.
func BenchmarkActiveKeyUser(b *testing.B) {
	cfg := config.Config{ConfigDir: b.TempDir(), Host: "127.0.0.1", Getenv: func(string) string { return "" }}
	a, err := openApp(context.Background(), cfg, quietLog())
	require.NoError(b, err)
	defer a.Close()
	h := (&login.ActiveUsers{Users: a.Users, Log: a.Log}).Require(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	p := apikey.Principal{UserID: a.Superuser.ID, Source: apikey.SourceDB}
	r := httptest.NewRequest("POST", "/api/v1/run/x", nil)
	r = r.WithContext(middleware.NewContext(r.Context(), p))
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}

// TestInactiveSuperuserAutoLogin: with auto-login, the UI session and
// LANGFLOW_SKIP_AUTH_AUTO_LOGIN act as the superuser only while that user is
// active (Langflow: 403 "User account is inactive").
func TestInactiveSuperuserAutoLogin(t *testing.T) {
	t.Parallel()
	a, _, echo := startApp(t, true)
	a.Config.Auth.SkipAuthAutoLogin = true
	h, err := httpserver.Handler(a, nil)
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	res, _ := httpDo(t, "GET", srv.URL+"/", nil)
	var cookie string
	for _, c := range res.Cookies() {
		if c.Name == webui.SessionCookie {
			cookie = c.Name + "=" + c.Value
		}
	}
	require.NotEmpty(t, cookie)
	session := func() int {
		res, _ := httpDo(t, "GET", srv.URL+"/api/v1/api_key/", nil, "Cookie", cookie)
		return res.StatusCode
	}
	skip := func() int {
		res, _ := httpDo(t, "POST", srv.URL+"/api/v1/run/"+echo.ID, strings.NewReader(`{"input_value":"hi"}`), "Content-Type", "application/json")
		return res.StatusCode
	}
	require.Equal(t, 200, session())
	require.Equal(t, 200, skip())
	inactive, active := false, true
	require.NoError(t, a.Users.Store.Update(context.Background(), a.Superuser.ID, accounts.Changes{IsActive: &inactive}))
	assert.Equal(t, http.StatusForbidden, session(), "UI session of an inactive superuser")
	assert.Equal(t, http.StatusForbidden, skip(), "skip-auth as an inactive superuser")
	require.NoError(t, a.Users.Store.Update(context.Background(), a.Superuser.ID, accounts.Changes{IsActive: &active}))
	assert.Equal(t, 200, session())
}
