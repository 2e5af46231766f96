package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/examples/server/internal/accounts"
)

// TestLimitedKeyCannotManageUsers: a superuser's API key with usage limits
// may not create users nor change one (403, nothing changed). Before, such a
// key could set the superuser's password, log in and make keys without
// limits, or create a user to the same end; a key without limits still can.
func TestLimitedKeyCannotManageUsers(t *testing.T) {
	t.Parallel()
	a, srv := startLoginApp(t, nil)
	ctx := context.Background()
	limited, _, err := a.Keys.Create(ctx, a.Superuser.ID, "partner", apikey.CreateOptions{
		Limits: apikey.Limits{Rate: []apikey.RateLimit{{Limit: 1000, Window: time.Minute}}},
	})
	require.NoError(t, err)
	unlimited, _, err := a.Keys.Create(ctx, a.Superuser.ID, "admin's", apikey.CreateOptions{})
	require.NoError(t, err)

	calls := []struct{ method, path, body string }{
		{"PATCH", "/api/v1/users/" + a.Superuser.ID, `{"password":"a-password-the-key-chose"}`},
		{"POST", "/api/v1/users/", `{"username":"mallory","password":"a-password-the-key-chose"}`},
	}
	for _, c := range calls {
		res, body := httpDo(t, c.method, srv.URL+c.path, strings.NewReader(c.body), "x-api-key", limited, "Content-Type", "application/json")
		assert.Equal(t, http.StatusForbidden, res.StatusCode, "%s %s: %s", c.method, c.path, body)
		assert.JSONEq(t, `{"detail":"`+accounts.MsgLimitedCaller+`"}`, body, "%s %s", c.method, c.path)
		assert.NotEmpty(t, res.Header.Get("RateLimit"), "still a limited key's response")
	}
	res, _ := loginForm(t, srv, "admin", "a-password-the-key-chose")
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode, "the limited key set no password")
	loginTokens(t, srv, "admin", testPassword) // the password is unchanged
	all, err := a.Users.Store.All(ctx)
	require.NoError(t, err)
	assert.Len(t, all, 1, "the limited key created no user")

	res, body := httpDo(t, "GET", srv.URL+"/api/v1/users/", nil, "x-api-key", limited)
	assert.Equal(t, http.StatusOK, res.StatusCode, "a limited key may still read users: %s", body)
	for _, c := range calls {
		res, body := httpDo(t, c.method, srv.URL+c.path, strings.NewReader(c.body), "x-api-key", unlimited, "Content-Type", "application/json")
		assert.Less(t, res.StatusCode, 300, "a key without limits: %s %s: %s", c.method, c.path, body)
	}
}
