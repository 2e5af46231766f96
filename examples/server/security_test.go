package main

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/examples/server/internal/config"
	"github.com/keyflow-dev/keyflow/examples/server/internal/httpserver"
	"github.com/keyflow-dev/keyflow/examples/server/internal/startup"
	"github.com/keyflow-dev/keyflow/langflowdb/langflowtest"
)

// A new SQLite database is created 0600 in a new 0700 directory, whatever
// the umask allows; an existing one is not changed.
func TestSQLiteFileModes(t *testing.T) {
	dir := t.TempDir() + "/new/dir"
	cfg := config.Config{ConfigDir: t.TempDir(), DatabaseURL: "sqlite:///" + dir + "/k.db", Host: "127.0.0.1", Getenv: func(string) string { return "" }}
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
	require.NotNil(t, a.Langflow)
	st, err := os.Stat(cfg.ConfigDir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), st.Mode().Perm(), "config dir")
	for _, name := range []string{startup.LangflowStateFile, startup.LangflowStateFile + "-wal", startup.LangflowStateFile + "-shm"} {
		st, err := os.Stat(filepath.Join(cfg.ConfigDir, name))
		if assert.NoError(t, err, name) {
			assert.Equal(t, os.FileMode(0o600), st.Mode().Perm(), name)
		}
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
				a.Config.Auth.SkipAuthAutoLogin = true
				h, err := httpserver.Handler(a, nil)
				require.NoError(t, err)
				srv = httptest.NewServer(h)
				t.Cleanup(srv.Close)
			}
			ctx := context.Background()
			keysBefore, err := a.Keys.List(ctx, a.Superuser.ID)
			require.NoError(t, err)
			for _, path := range []string{
				"/api/v1/api_key/", "/api/v1/api_key/" + echo.ID, "/api/v1/variables/", "/api/v1/variables/" + echo.ID,
				"/api/v1/flows/", "/api/v1/run/" + echo.ID, "/api/v1/run/echo?stream=true",
				"/api/v1/login", "/api/v1/refresh", "/api/v1/logout",
				"/api/v1/users/", "/api/v1/users/whoami", "/api/v1/users/" + a.Superuser.ID, "/", "/health", "/static/app.js",
			} {
				res, body := httpDo(t, http.MethodOptions, srv.URL+path, strings.NewReader(`{"name":"forged"}`),
					"Access-Control-Request-Method", "POST", "Origin", "http://evil.example", "Host", "127.0.0.1")
				assert.GreaterOrEqual(t, res.StatusCode, 400, "%s: %s", path, body)
				assert.Less(t, res.StatusCode, 500, "%s: %s", path, body)
				assert.Empty(t, res.Header.Get("Set-Cookie"), path)
				assert.NotContains(t, body, "sk-", path)
			}
			keysAfter, err := a.Keys.List(ctx, a.Superuser.ID)
			require.NoError(t, err)
			assert.Len(t, keysAfter, len(keysBefore), "no key made by a forged preflight")
		})
	}
}
