package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/examples/server/internal/accounts"
	"github.com/keyflow-dev/keyflow/examples/server/internal/cli"
	"github.com/keyflow-dev/keyflow/examples/server/internal/config"
	"github.com/keyflow-dev/keyflow/examples/server/internal/httpserver"
	"github.com/keyflow-dev/keyflow/examples/server/internal/login"
	"github.com/keyflow-dev/keyflow/examples/server/internal/startup"
)

func init() { accounts.BcryptCost = bcrypt.MinCost } // fast hashes in tests

const testPassword = "a-good-superuser-password"

// startLoginApp serves a fresh app with LANGFLOW_AUTO_LOGIN=false, the
// superuser "admin" with testPassword, and cfg adjusted by adjust.
func startLoginApp(t *testing.T, adjust func(*config.Config)) (*startup.App, *httptest.Server) {
	t.Helper()
	cfg := config.Config{
		ConfigDir:         t.TempDir(),
		Host:              "127.0.0.1",
		FallbackToEnv:     true,
		Superuser:         "admin",
		SuperuserPassword: testPassword,
		Getenv:            func(string) string { return "" },
	}
	if adjust != nil {
		adjust(&cfg)
	}
	ctx := context.Background()
	a, err := openApp(ctx, cfg, slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})))
	require.NoError(t, err)
	t.Cleanup(func() { _ = a.Close() })
	h, err := httpserver.Handler(a, nil)
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return a, srv
}

// httpDo sends a request and returns the response with its body read.
func httpDo(t *testing.T, method, u string, body io.Reader, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	require.NoError(t, err)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res, string(b)
}

func loginForm(t *testing.T, srv *httptest.Server, username, password string) (*http.Response, string) {
	t.Helper()
	form := url.Values{"username": {username}, "password": {password}}
	return httpDo(t, "POST", srv.URL+"/api/v1/login", strings.NewReader(form.Encode()),
		"Content-Type", "application/x-www-form-urlencoded")
}

func loginTokens(t *testing.T, srv *httptest.Server, username, password string) login.TokenPair {
	t.Helper()
	res, body := loginForm(t, srv, username, password)
	require.Equal(t, 200, res.StatusCode, body)
	return decode[login.TokenPair](t, body)
}

// TestLogin: Langflow's login, token response and cookies; wrong password
// and unknown user answer alike after one bcrypt comparison each.
func TestLogin(t *testing.T) {
	a, srv := startLoginApp(t, nil)

	res, body := loginForm(t, srv, "admin", testPassword)
	require.Equal(t, 200, res.StatusCode, body)
	tok := decode[login.TokenPair](t, body)
	assert.Equal(t, "bearer", tok.TokenType)
	assert.NotEmpty(t, tok.AccessToken)
	assert.NotEmpty(t, tok.RefreshToken)
	cookies := map[string]*http.Cookie{}
	for _, c := range res.Cookies() {
		cookies[c.Name] = c
	}
	require.Contains(t, cookies, "access_token_lf")
	require.Contains(t, cookies, "refresh_token_lf")
	assert.Equal(t, tok.AccessToken, cookies["access_token_lf"].Value)
	assert.True(t, cookies["access_token_lf"].HttpOnly)
	assert.Equal(t, 3600, cookies["access_token_lf"].MaxAge)
	assert.Equal(t, http.SameSiteStrictMode, cookies["refresh_token_lf"].SameSite)

	// Only hashes are stored.
	var n int
	require.NoError(t, a.DB.QueryRow(`SELECT COUNT(*) FROM auth_tokens WHERE token_hash = ? OR token_hash = ?`,
		tok.AccessToken, tok.RefreshToken).Scan(&n))
	assert.Zero(t, n, "tokens are stored hashed")

	// Wrong password, unknown user, user without a password: one answer,
	// one bcrypt comparison each.
	var compares atomic.Int32
	orig := accounts.CompareHash
	accounts.CompareHash = func(h, p []byte) error { compares.Add(1); return orig(h, p) }
	t.Cleanup(func() { accounts.CompareHash = orig })
	_, err := a.Users.Ensure(context.Background(), "nopassword", false)
	require.NoError(t, err)
	var answers []string
	for _, u := range []string{"admin", "nobody", "nopassword"} {
		res, body := loginForm(t, srv, u, "wrong-password")
		assert.Equal(t, 401, res.StatusCode)
		assert.Equal(t, "Bearer", res.Header.Get("WWW-Authenticate"))
		assert.Empty(t, res.Cookies())
		answers = append(answers, body)
	}
	assert.Equal(t, int32(3), compares.Load(), "an unknown user costs a comparison too")
	assert.JSONEq(t, `{"detail":"`+"Incorrect username or password"+`"}`, answers[0])
	assert.Equal(t, answers[0], answers[1])
	assert.Equal(t, answers[0], answers[2])

	// Missing fields: FastAPI's validation error.
	res, body = httpDo(t, "POST", srv.URL+"/api/v1/login", strings.NewReader("username=admin"),
		"Content-Type", "application/x-www-form-urlencoded")
	assert.Equal(t, 422, res.StatusCode)
	assert.Contains(t, body, `"loc":["body","password"]`)
	assert.NotContains(t, body, "admin")
}

// TestLoginTokens: bearer tokens on the management endpoints (not on /run),
// whoami, refresh, logout revoking, expiry, deactivation.
func TestLoginTokens(t *testing.T) {
	a, srv := startLoginApp(t, nil)
	ctx := context.Background()
	tok := loginTokens(t, srv, "admin", testPassword)
	bearer := []string{"Authorization", "Bearer " + tok.AccessToken}

	res, body := httpDo(t, "GET", srv.URL+"/api/v1/users/whoami", nil, bearer...)
	require.Equal(t, 200, res.StatusCode, body)
	me := decode[accounts.UserRead](t, body)
	assert.Equal(t, "admin", me.Username)
	assert.True(t, me.IsSuperuser)
	assert.True(t, me.IsActive)
	assert.NotNil(t, me.LastLoginAt)
	assert.Equal(t, a.Superuser.ID, me.ID, "LANGFLOW_SUPERUSER is the superuser")
	for _, k := range []string{"profile_image", "store_api_key", "create_at", "updated_at", "optins"} {
		assert.Contains(t, body, `"`+k+`"`)
	}
	assert.NotContains(t, body, "password")

	// A key made with the token, used on /run; the token itself is not a
	// run credential.
	res, body = httpDo(t, "POST", srv.URL+"/api/v1/api_key/", strings.NewReader(`{"name":"from-login"}`), bearer...)
	require.Equal(t, 200, res.StatusCode, body)
	key := decode[struct {
		APIKey string `json:"api_key"`
	}](t, body).APIKey
	echo, err := ensureEcho(ctx, a)
	require.NoError(t, err)
	code, body := postJSON(t, srv.URL+"/api/v1/run/"+echo.ID, key, `{"input_value":"hi"}`)
	require.Equal(t, 200, code, body)
	res, _ = httpDo(t, "POST", srv.URL+"/api/v1/run/"+echo.ID, strings.NewReader(`{}`), bearer...)
	assert.Equal(t, 403, res.StatusCode, "/run takes API keys only, as in Langflow")

	// The cookie works as the bearer header does.
	res, _ = httpDo(t, "GET", srv.URL+"/api/v1/users/whoami", nil, "Cookie", "access_token_lf"+"="+tok.AccessToken)
	assert.Equal(t, 200, res.StatusCode)

	// Bad tokens: 401 with Langflow's messages.
	for _, h := range [][]string{
		{"Authorization", "Bearer not-a-token"},
		{"Authorization", "Bearer " + tok.RefreshToken}, // a refresh token is no access token
		{"Authorization", "Bearer " + key},              // nor is an API key
	} {
		res, body = httpDo(t, "GET", srv.URL+"/api/v1/variables/", nil, h...)
		assert.Equal(t, 401, res.StatusCode, body)
		assert.JSONEq(t, `{"detail":"`+"Could not validate credentials"+`"}`, body)
	}
	// An expired token (stored already expired: no waiting).
	expired := "a-token-that-has-expired"
	sum := sha256.Sum256([]byte(expired))
	_, err = a.DB.ExecContext(ctx, `INSERT INTO auth_tokens (token_hash, user_id, kind, expires_at, created_at) VALUES (?, ?, 'access', ?, ?)`,
		hex.EncodeToString(sum[:]), a.Superuser.ID, time.Now().Add(-time.Second).UTC(), time.Now().UTC())
	require.NoError(t, err)
	res, body = httpDo(t, "GET", srv.URL+"/api/v1/users/whoami", nil, "Authorization", "Bearer "+expired)
	assert.Equal(t, 401, res.StatusCode)
	assert.JSONEq(t, `{"detail":"`+"Token has expired."+`"}`, body)

	// Refresh: a new pair; the old refresh token is spent.
	res, body = httpDo(t, "POST", srv.URL+"/api/v1/refresh", nil, "Cookie", "refresh_token_lf"+"="+tok.RefreshToken)
	require.Equal(t, 200, res.StatusCode, body)
	tok2 := decode[login.TokenPair](t, body)
	assert.NotEqual(t, tok.AccessToken, tok2.AccessToken)
	res, _ = httpDo(t, "POST", srv.URL+"/api/v1/refresh", nil, "Cookie", "refresh_token_lf"+"="+tok.RefreshToken)
	assert.Equal(t, 401, res.StatusCode)

	// Logout revokes what it is given and clears the cookies.
	res, body = httpDo(t, "POST", srv.URL+"/api/v1/logout", nil, bearer...)
	require.Equal(t, 200, res.StatusCode)
	assert.JSONEq(t, `{"message":"Logout successful"}`, body)
	cleared := 0
	for _, c := range res.Cookies() {
		if (c.Name == "access_token_lf" || c.Name == "refresh_token_lf") && c.MaxAge < 0 {
			cleared++
		}
	}
	assert.Equal(t, 2, cleared)
	res, _ = httpDo(t, "GET", srv.URL+"/api/v1/users/whoami", nil, bearer...)
	assert.Equal(t, 401, res.StatusCode, "a logged-out token is refused at once")
	res, _ = httpDo(t, "GET", srv.URL+"/api/v1/users/whoami", nil, "Authorization", "Bearer "+tok2.AccessToken)
	assert.Equal(t, 200, res.StatusCode, "another session stays")
	res, body = httpDo(t, "GET", srv.URL+"/api/v1/users/whoami", nil, "Cookie", "access_token_lf"+"="+tok.AccessToken)
	assert.Equal(t, 403, res.StatusCode, "a stale cookie is ignored: the request has no credentials")
	assert.JSONEq(t, `{"detail":"An API key must be passed as query or header"}`, body)

	// Deactivating a user revokes its tokens.
	res, body = httpDo(t, "POST", srv.URL+"/api/v1/users/", strings.NewReader(`{"username":"carol","password":"carol-password"}`),
		"Authorization", "Bearer "+tok2.AccessToken)
	require.Equal(t, 201, res.StatusCode, body)
	carol := decode[accounts.UserRead](t, body)
	active := true
	require.NoError(t, a.Users.Store.Update(ctx, carol.ID, accounts.Changes{IsActive: &active}))
	carolTok := loginTokens(t, srv, "carol", "carol-password")
	res, body = httpDo(t, "PATCH", srv.URL+"/api/v1/users/"+carol.ID, strings.NewReader(`{"is_active":false}`),
		"Authorization", "Bearer "+tok2.AccessToken)
	require.Equal(t, 200, res.StatusCode, body)
	assert.False(t, decode[accounts.UserRead](t, body).IsActive)
	res, _ = httpDo(t, "GET", srv.URL+"/api/v1/users/whoami", nil, "Authorization", "Bearer "+carolTok.AccessToken)
	assert.Equal(t, 401, res.StatusCode)
	res, body = loginForm(t, srv, "carol", "carol-password")
	assert.Equal(t, 401, res.StatusCode)
	assert.JSONEq(t, `{"detail":"Inactive user"}`, body)
}

// TestLoginTokenPairs: token answers are not cacheable (no-store); a
// refresh token is spent once, even by concurrent
// refreshes (before, several got a new pair); a refresh revokes the old
// access token with it; a logout with the access token alone (an API
// client's) revokes the refresh token of its pair too (before, it stayed
// usable for 7 days). On SQLite and PostgreSQL.
func TestLoginTokenPairs(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			_, srv := startLoginApp(t, func(c *config.Config) {
				if b.postgres {
					c.DatabaseURL = sharedDatabase(t)
				}
			})
			whoami := func(access string) int {
				res, _ := httpDo(t, "GET", srv.URL+"/api/v1/users/whoami", nil, "Authorization", "Bearer "+access)
				return res.StatusCode
			}
			refresh := func(token string) (int, login.TokenPair) {
				res, body := httpDo(t, "POST", srv.URL+"/api/v1/refresh", nil, "Cookie", "refresh_token_lf"+"="+token)
				var p login.TokenPair
				if res.StatusCode == 200 {
					p = decode[login.TokenPair](t, body)
				}
				return res.StatusCode, p
			}

			res, body := loginForm(t, srv, "admin", testPassword)
			require.Equal(t, 200, res.StatusCode, body)
			assert.Equal(t, "no-store", res.Header.Get("Cache-Control"), "a token response is never cached")
			res, body = httpDo(t, "POST", srv.URL+"/api/v1/refresh", nil, "Cookie", "refresh_token_lf"+"="+decode[login.TokenPair](t, body).RefreshToken)
			require.Equal(t, 200, res.StatusCode, body)
			assert.Equal(t, "no-store", res.Header.Get("Cache-Control"), "a token response is never cached")

			tok := loginTokens(t, srv, "admin", testPassword)
			codes := make([]int, 8)
			var wg sync.WaitGroup
			for i := range codes {
				wg.Go(func() { codes[i], _ = refresh(tok.RefreshToken) })
			}
			wg.Wait()
			ok := 0
			for _, c := range codes {
				if c == 200 {
					ok++
				} else {
					assert.Equal(t, 401, c)
				}
			}
			assert.Equal(t, 1, ok, "one refresh token, one new pair: %v", codes)
			assert.Equal(t, 401, whoami(tok.AccessToken), "the refreshed pair's access token is revoked")

			tok = loginTokens(t, srv, "admin", testPassword)
			res, _ = httpDo(t, "POST", srv.URL+"/api/v1/logout", nil, "Authorization", "Bearer "+tok.AccessToken)
			require.Equal(t, 200, res.StatusCode)
			assert.Equal(t, 401, whoami(tok.AccessToken))
			code, _ := refresh(tok.RefreshToken)
			assert.Equal(t, 401, code, "logout with the access token revokes its refresh token")

			tok = loginTokens(t, srv, "admin", testPassword)
			res, _ = httpDo(t, "POST", srv.URL+"/api/v1/logout", nil, "Cookie", "refresh_token_lf"+"="+tok.RefreshToken)
			require.Equal(t, 200, res.StatusCode)
			assert.Equal(t, 401, whoami(tok.AccessToken), "logout with the refresh cookie revokes its access token")
		})
	}
}

// TestUsers: superusers create users in Langflow's shape, inactive unless
// LANGFLOW_NEW_USER_IS_ACTIVE; others may not.
func TestUsers(t *testing.T) {
	for _, newActive := range []bool{false, true} {
		t.Run(map[bool]string{false: "new users inactive", true: "new users active"}[newActive], func(t *testing.T) {
			t.Parallel()
			a, srv := startLoginApp(t, func(c *config.Config) { c.NewUserIsActive = newActive })
			su := []string{"Authorization", "Bearer " + loginTokens(t, srv, "admin", testPassword).AccessToken}

			res, body := httpDo(t, "POST", srv.URL+"/api/v1/users/", strings.NewReader(`{"username":"dave","password":"dave-password"}`), su...)
			require.Equal(t, 201, res.StatusCode, body)
			dave := decode[accounts.UserRead](t, body)
			assert.Equal(t, "dave", dave.Username)
			assert.Equal(t, newActive, dave.IsActive)
			assert.False(t, dave.IsSuperuser)
			assert.Nil(t, dave.LastLoginAt)
			assert.NotContains(t, body, "dave-password")

			res, body = httpDo(t, "POST", srv.URL+"/api/v1/users/", strings.NewReader(`{"username":"dave","password":"x"}`), su...)
			assert.Equal(t, 400, res.StatusCode)
			assert.JSONEq(t, `{"detail":"This username is unavailable."}`, body)
			res, _ = httpDo(t, "POST", srv.URL+"/api/v1/users/", strings.NewReader(`{"username":"erin"}`), su...)
			assert.Equal(t, 422, res.StatusCode)
			res, _ = httpDo(t, "POST", srv.URL+"/api/v1/users/", strings.NewReader(`{"username":"erin","password":"`+strings.Repeat("p", 73)+`"}`), su...)
			assert.Equal(t, 400, res.StatusCode)

			res, body = loginForm(t, srv, "dave", "dave-password")
			if !newActive {
				assert.Equal(t, 400, res.StatusCode)
				assert.JSONEq(t, `{"detail":"`+"Waiting for approval"+`"}`, body)
				res, _ = loginForm(t, srv, "dave", "wrong")
				assert.Equal(t, 401, res.StatusCode, "the state of a user is told only with the right password")
				return
			}
			require.Equal(t, 200, res.StatusCode, body)
			daveTok := []string{"Authorization", "Bearer " + decode[login.TokenPair](t, body).AccessToken}
			res, body = httpDo(t, "POST", srv.URL+"/api/v1/users/", strings.NewReader(`{"username":"eve","password":"eve-password"}`), daveTok...)
			assert.Equal(t, 403, res.StatusCode)
			assert.JSONEq(t, `{"detail":"The user doesn't have enough privileges"}`, body)
			res, _ = httpDo(t, "GET", srv.URL+"/api/v1/users/", nil, daveTok...)
			assert.Equal(t, 403, res.StatusCode)

			res, body = httpDo(t, "GET", srv.URL+"/api/v1/users/?limit=1", nil, su...)
			require.Equal(t, 200, res.StatusCode, body)
			list := decode[struct {
				Total int                 `json:"total_count"`
				Users []accounts.UserRead `json:"users"`
			}](t, body)
			assert.Equal(t, 2, list.Total)
			assert.Len(t, list.Users, 1)

			// An API key of the superuser manages users too.
			key, _, err := a.Keys.Create(context.Background(), a.Superuser.ID, "k", apikey.CreateOptions{})
			require.NoError(t, err)
			res, _ = httpDo(t, "GET", srv.URL+"/api/v1/users/whoami", nil, "x-api-key", key)
			assert.Equal(t, 200, res.StatusCode)
		})
	}
}

// TestLoginThrottleConcurrent: attempts made at the same moment are counted
// before any password is checked, so a burst cannot slip through while the
// first attempts are still being checked: once the wait is over, exactly
// one more guess is checked and the rest are told to wait.
func TestLoginThrottleConcurrent(t *testing.T) {
	t.Parallel()
	a, _ := startLoginApp(t, nil)
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	h, err := httpserver.Handler(a, login.NewThrottle(func() time.Time { return time.Unix(0, clock.Load()) }))
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	burst := func() map[int]int {
		codes := make([]int, 3*login.FreeFailures)
		var wg sync.WaitGroup
		for i := range codes {
			wg.Go(func() {
				res, _ := loginForm(t, srv, "admin", "guess")
				codes[i] = res.StatusCode
			})
		}
		wg.Wait()
		seen := map[int]int{}
		for _, c := range codes {
			seen[c]++
		}
		return seen
	}
	assert.Equal(t, map[int]int{401: login.FreeFailures, 429: 2 * login.FreeFailures}, burst(),
		"only the free attempts are checked")
	clock.Add(int64(time.Second))
	assert.Equal(t, map[int]int{401: 1, 429: 3*login.FreeFailures - 1}, burst(),
		"after the wait, one attempt")
}

// TestLoginThrottleHTTP: the handler answers 429 with Retry-After.
func TestLoginThrottleHTTP(t *testing.T) {
	t.Parallel()
	_, srv := startLoginApp(t, nil)
	for range login.FreeFailures {
		res, _ := loginForm(t, srv, "admin", "guess")
		require.Equal(t, 401, res.StatusCode)
	}
	res, body := loginForm(t, srv, "admin", testPassword)
	assert.Equal(t, 429, res.StatusCode, "even the right password waits")
	assert.JSONEq(t, `{"detail":"`+"Too many failed login attempts, try again later"+`"}`, body)
	assert.Equal(t, "1", res.Header.Get("Retry-After"))
}

// TestEnvKeyActsAsSuperuser: LANGFLOW_API_KEY acts as LANGFLOW_SUPERUSER.
func TestEnvKeyActsAsSuperuser(t *testing.T) {
	t.Parallel()
	a, srv := startLoginApp(t, func(c *config.Config) { c.Auth.EnvKey = "the-env-key" })
	echo, err := ensureEcho(context.Background(), a)
	require.NoError(t, err)
	assert.Equal(t, "admin", a.Superuser.Username)
	code, body := postJSON(t, srv.URL+"/api/v1/run/echo", "the-env-key", `{"input_value":"as admin"}`)
	require.Equal(t, 200, code, body)
	assert.Equal(t, echo.ID, decode[runResult](t, body).SessionID)
}

// TestSuperuserCommand: `superuser` creates a superuser, or resets an
// existing user's password and makes it a superuser.
func TestSuperuserCommand(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("LANGFLOW_CONFIG_DIR", dir)
	t.Setenv("LANGFLOW_AUTO_LOGIN", "false")
	run := func(stdin string, args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := cli.Main(args, strings.NewReader(stdin), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	code, out, errOut := run("", "superuser", "--username", "root", "--password", "first-password")
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, "Superuser created successfully.\n", out)
	code, _, errOut = run("", "api-key", "--username", "frank")
	require.Equal(t, 0, code, errOut)
	code, out, errOut = run("frank-password\n", "superuser", "--username", "frank")
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, "Superuser frank updated: password reset.\n", out)
	code, _, errOut = run("", "superuser", "--username", "x", "--password", "langflow")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "legacy default password")
	// Names no user may have (an ESC, a zero-width space: a look-alike of
	// "root"), refused by every command that creates users.
	for _, bad := range []string{"evil\x1b[31m", "ro\u200bot", "x\u202eY"} {
		code, _, errOut = run("", "superuser", "--username", bad, "--password", "a-long-password")
		assert.Equal(t, 1, code, "superuser %q", bad)
		assert.Contains(t, errOut, accounts.ErrBadUsername.Error())
		code, _, errOut = run("", "api-key", "--username", bad)
		assert.Equal(t, 1, code, "api-key %q", bad)
		assert.Contains(t, errOut, accounts.ErrBadUsername.Error())
	}

	cfg, err := config.Load(config.Flags{ConfigDir: dir, DefaultLevel: "warn"}, nil, nil)
	require.NoError(t, err)
	a, err := openApp(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	defer a.Close()
	h, err := httpserver.Handler(a, nil)
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	defer srv.Close()
	for user, pw := range map[string]string{"root": "first-password", "frank": "frank-password"} {
		res, body := loginForm(t, srv, user, pw)
		require.Equal(t, 200, res.StatusCode, body)
		tok := decode[login.TokenPair](t, body)
		res, body = httpDo(t, "GET", srv.URL+"/api/v1/users/whoami", nil, "Authorization", "Bearer "+tok.AccessToken)
		require.Equal(t, 200, res.StatusCode)
		assert.True(t, decode[accounts.UserRead](t, body).IsSuperuser, user)
	}

	t.Setenv("LANGFLOW_ENABLE_SUPERUSER_CLI", "false")
	code, _, errOut = run("", "superuser", "--username", "y", "--password", "p")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "disabled")
}

// TestUsersAsLangflowTestsThem replays Langflow's own tests of /users
// (src/backend/tests/unit/api/v1/test_users.py): a superuser cannot
// deactivate itself, PATCH renames, ?search= filters by username ignoring
// case and total_count counts the matches.
func TestUsersAsLangflowTestsThem(t *testing.T) {
	t.Parallel()
	_, srv := startLoginApp(t, nil)
	su := []string{"Authorization", "Bearer " + loginTokens(t, srv, "admin", testPassword).AccessToken}
	res, body := httpDo(t, "GET", srv.URL+"/api/v1/users/whoami", nil, su...)
	require.Equal(t, 200, res.StatusCode, body)
	me := decode[accounts.UserRead](t, body)

	res, body = httpDo(t, "PATCH", srv.URL+"/api/v1/users/"+me.ID, strings.NewReader(`{"is_active":false}`), su...)
	assert.Equal(t, 403, res.StatusCode)
	assert.JSONEq(t, `{"detail":"You can't deactivate your own user account"}`, body)
	res, _ = httpDo(t, "GET", srv.URL+"/api/v1/users/whoami", nil, su...)
	assert.Equal(t, 200, res.StatusCode, "still active, still logged in")

	var ids []string
	for _, name := range []string{"alice_search", "bob_search", "charlie_search"} {
		res, body := httpDo(t, "POST", srv.URL+"/api/v1/users/", strings.NewReader(`{"username":"`+name+`","password":"password123"}`), su...)
		require.Equal(t, 201, res.StatusCode, body)
		ids = append(ids, decode[accounts.UserRead](t, body).ID)
	}
	type page struct {
		Total int                 `json:"total_count"`
		Users []accounts.UserRead `json:"users"`
	}
	for _, c := range []struct {
		query string
		total int
		n     int
	}{{"alice", 1, 1}, {"ALICE", 1, 1}, {"_search", 3, 3}, {"_search&limit=1", 3, 1}, {"nonexistentuser", 0, 0}} {
		res, body := httpDo(t, "GET", srv.URL+"/api/v1/users/?search="+c.query, nil, su...)
		require.Equal(t, 200, res.StatusCode, body)
		p := decode[page](t, body)
		assert.Equal(t, c.total, p.Total, c.query)
		assert.Len(t, p.Users, c.n, c.query)
	}

	res, body = httpDo(t, "PATCH", srv.URL+"/api/v1/users/"+ids[0], strings.NewReader(`{"username":"alice2","password":"new-password"}`), su...)
	require.Equal(t, 200, res.StatusCode, body)
	assert.Equal(t, "alice2", decode[accounts.UserRead](t, body).Username)
	res, body = httpDo(t, "PATCH", srv.URL+"/api/v1/users/"+ids[0], strings.NewReader(`{"username":"bob_search"}`), su...)
	assert.Equal(t, 400, res.StatusCode)
	assert.JSONEq(t, `{"detail":"This username is unavailable."}`, body)
	res, _ = httpDo(t, "PATCH", srv.URL+"/api/v1/users/"+ids[0], strings.NewReader(`{"username":"  "}`), su...)
	assert.Equal(t, 400, res.StatusCode)

	// Deactivating another user is allowed.
	res, body = httpDo(t, "PATCH", srv.URL+"/api/v1/users/"+ids[1], strings.NewReader(`{"is_active":false}`), su...)
	require.Equal(t, 200, res.StatusCode, body)
	assert.False(t, decode[accounts.UserRead](t, body).IsActive)
}
