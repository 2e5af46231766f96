package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey"
)

func TestAPIKeyBox(t *testing.T) {
	const key = "sk-O0elzoWID1izAH8RUKrnnvyyMwIzHi2Wk-uXWoNJ2Ro"
	tests := []struct {
		name   string
		copied bool
		goos   string
		want   string
	}{
		{"no clipboard", false, "linux", `╭──────────────────────────────────────────────────────╮
│ API Key Created Successfully:                        │
│                                                      │
│ sk-O0elzoWID1izAH8RUKrnnvyyMwIzHi2Wk-uXWoNJ2Ro       │
│                                                      │
│ This is the only time the API key will be displayed. │
│ Make sure to store it in a secure location.          │
╰──────────────────────────────────────────────────────╯
`},
		{"copied on macOS (Langflow's box)", true, "darwin", `╭─────────────────────────────────────────────────────────────────────╮
│ API Key Created Successfully:                                       │
│                                                                     │
│ sk-O0elzoWID1izAH8RUKrnnvyyMwIzHi2Wk-uXWoNJ2Ro                      │
│                                                                     │
│ This is the only time the API key will be displayed.                │
│ Make sure to store it in a secure location.                         │
│                                                                     │
│ The API key has been copied to your clipboard. Cmd + V to paste it. │
╰─────────────────────────────────────────────────────────────────────╯
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, apiKeyBox(key, tt.copied, tt.goos))
		})
	}
	assert.Contains(t, apiKeyBox(key, true, "linux"), "Ctrl + V to paste it.")
}

func TestParseDatabaseURL(t *testing.T) {
	tests := []struct {
		raw, wantDriver, wantDSNPrefix string
		postgres                       bool
		wantErr                        string
	}{
		{"", "sqlite", "file:/cfg/keyflow.db?", false, ""},
		{"sqlite:///rel/app.db", "sqlite", "file:rel/app.db?", false, ""},
		{"sqlite:////abs/app.db", "sqlite", "file:/abs/app.db?", false, ""},
		{"postgres://u:pw@db:5432/lf?sslmode=disable", "pgx", "postgres://u:pw@db:5432/lf?sslmode=disable", true, ""},
		{"postgresql://db/lf", "pgx", "postgres://db/lf", true, ""},
		{"postgresql+psycopg://db/lf", "pgx", "postgres://db/lf", true, ""},
		{"mysql://db/lf", "", "", false, `unsupported scheme "mysql"`},
		{"sqlite://", "", "", false, "needs a file path"},
		{"just-a-path.db", "", "", false, "want sqlite:///path"},
		{"u:pw@db:5432/lf", "", "", false, "want sqlite:///path"}, // scheme forgotten
		{"mysql://u:pw@db/lf", "", "", false, `unsupported scheme "mysql"`},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			db, err := parseDatabaseURL(tt.raw, "/cfg")
			if tt.wantErr != "" {
				assert.ErrorContains(t, err, tt.wantErr)
				assert.NotContains(t, err.Error(), "pw", "no password in the error")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantDriver, db.driver)
			assert.True(t, strings.HasPrefix(db.dsn, tt.wantDSNPrefix), db.dsn)
			assert.Equal(t, tt.postgres, db.postgres)
			assert.NotContains(t, db.display, "pw", "no password in what is logged")
		})
	}
}

func TestLoadConfig(t *testing.T) {
	for _, k := range []string{"LANGFLOW_AUTO_LOGIN", "LANGFLOW_SKIP_AUTH_AUTO_LOGIN", "LANGFLOW_API_KEY_SOURCE", "LANGFLOW_API_KEY",
		"LANGFLOW_FALLBACK_TO_ENV_VAR", "LANGFLOW_STORE_ENVIRONMENT_VARIABLES", "LANGFLOW_DISABLE_TRACK_APIKEY_USAGE",
		"LANGFLOW_HOST", "LANGFLOW_PORT", "LANGFLOW_LOG_LEVEL", "LANGFLOW_CONFIG_DIR", "LANGFLOW_DATABASE_URL"} {
		t.Setenv(k, "") // restored after the test
		require.NoError(t, os.Unsetenv(k))
	}

	t.Run("a boolean set but empty is an error, as in Langflow", func(t *testing.T) {
		t.Setenv("LANGFLOW_FALLBACK_TO_ENV_VAR", "")
		_, err := loadConfig(&commonFlags{configDir: "/x", defaultLevel: "info"}, nil, nil)
		require.ErrorContains(t, err, "LANGFLOW_FALLBACK_TO_ENV_VAR is set but empty")
	})

	t.Run("Langflow's defaults", func(t *testing.T) {
		cfg, err := loadConfig(&commonFlags{configDir: "rel", defaultLevel: "info"}, nil, nil)
		require.NoError(t, err)
		wd, _ := os.Getwd()
		assert.Equal(t, filepath.Join(wd, "rel"), cfg.ConfigDir)
		assert.Equal(t, "127.0.0.1", cfg.Host)
		assert.Equal(t, 7860, cfg.Port)
		assert.True(t, cfg.Auth.AutoLogin)
		assert.False(t, cfg.Auth.SkipAuthAutoLogin)
		assert.Empty(t, cfg.Auth.EnvKey)
		assert.True(t, cfg.FallbackToEnv)
		assert.True(t, cfg.StoreEnvVariables)
		assert.False(t, cfg.DisableUsageTracking)
	})

	t.Run("environment, and flags over it", func(t *testing.T) {
		envFile := filepath.Join(t.TempDir(), ".env")
		require.NoError(t, os.WriteFile(envFile, []byte("LANGFLOW_PORT=9000\nLANGFLOW_AUTO_LOGIN=false\n"), 0o600))
		t.Setenv("LANGFLOW_PORT", "8000") // the .env file overrides it, as in Langflow
		t.Setenv("LANGFLOW_API_KEY_SOURCE", "env")
		t.Setenv("LANGFLOW_API_KEY", "the-env-key")
		t.Setenv("LANGFLOW_FALLBACK_TO_ENV_VAR", "0")
		t.Setenv("LANGFLOW_STORE_ENVIRONMENT_VARIABLES", "off")
		t.Setenv("LANGFLOW_DISABLE_TRACK_APIKEY_USAGE", "yes")
		t.Setenv("LANGFLOW_HOST", "0.0.0.0")
		t.Setenv("LANGFLOW_CONFIG_DIR", "/from/env")
		t.Setenv("LANGFLOW_DATABASE_URL", "postgres://db/lf")
		cfg, err := loadConfig(&commonFlags{envFile: envFile, defaultLevel: "info"}, nil, nil)
		require.NoError(t, err)
		assert.Equal(t, 9000, cfg.Port)
		assert.Equal(t, "0.0.0.0", cfg.Host)
		assert.Equal(t, "/from/env", cfg.ConfigDir)
		assert.Equal(t, "postgres://db/lf", cfg.DatabaseURL)
		assert.False(t, cfg.Auth.AutoLogin)
		assert.Equal(t, "the-env-key", cfg.Auth.EnvKey)
		assert.False(t, cfg.FallbackToEnv)
		assert.False(t, cfg.StoreEnvVariables)
		assert.True(t, cfg.DisableUsageTracking)

		host, port := "::1", 0
		cfg, err = loadConfig(&commonFlags{configDir: "/flag", databaseURL: "sqlite:///x.db", defaultLevel: "info"}, &host, &port)
		require.NoError(t, err)
		assert.Equal(t, "::1", cfg.Host)
		assert.Equal(t, 0, cfg.Port)
		assert.Equal(t, "/flag", cfg.ConfigDir)
		assert.Equal(t, "sqlite:///x.db", cfg.DatabaseURL)
	})

	t.Run("Langflow's log levels", func(t *testing.T) {
		// Langflow's .env.example sets LANGFLOW_LOG_LEVEL=critical; its
		// levels are debug, info, warning, error and critical, any case.
		for level, want := range map[string]slog.Level{
			"debug": slog.LevelDebug, "INFO": slog.LevelInfo, "warning": slog.LevelWarn, "WARN": slog.LevelWarn,
			"error": slog.LevelError, "critical": slog.LevelError, "CRITICAL": slog.LevelError,
		} {
			t.Setenv("LANGFLOW_LOG_LEVEL", level)
			cfg, err := loadConfig(&commonFlags{configDir: "/x", defaultLevel: "info"}, nil, nil)
			require.NoError(t, err, level)
			assert.Equal(t, want, cfg.LogLevel, level)
		}
	})

	t.Run("invalid values", func(t *testing.T) {
		t.Setenv("LANGFLOW_AUTO_LOGIN", "maybe")
		t.Setenv("LANGFLOW_API_KEY_SOURCE", "file")
		t.Setenv("LANGFLOW_PORT", "http")
		t.Setenv("LANGFLOW_FALLBACK_TO_ENV_VAR", "sometimes")
		port := 70000
		_, err := loadConfig(&commonFlags{configDir: "/x", logLevel: "loud"}, nil, &port)
		require.Error(t, err)
		for _, want := range []string{"LANGFLOW_AUTO_LOGIN", "LANGFLOW_API_KEY_SOURCE", "LANGFLOW_PORT", "--port", "LANGFLOW_FALLBACK_TO_ENV_VAR", "log level"} {
			assert.ErrorContains(t, err, want)
		}
		_, err = loadConfig(&commonFlags{configDir: "/x", envFile: "/does/not/exist"}, nil, nil)
		assert.ErrorContains(t, err, "--env-file")
	})
}

func TestSecretHelpers(t *testing.T) {
	assert.Equal(t, []string{"a", "b c"}, splitSecrets(" a ,, b c ,"))
	assert.Equal(t, []string{"old", "older"}, previousSecrets("new", []string{"", "old", "new", "old", "older"}))

	path := filepath.Join(t.TempDir(), "secret_key")
	require.NoError(t, writeSecretFile(path, "first"))
	require.NoError(t, writeSecretFile(path, "second"))
	assert.Equal(t, "second", readSecretFile(path), "replaced verbatim, no newline")
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	entries, _ := os.ReadDir(filepath.Dir(path))
	assert.Len(t, entries, 1, "no temporary file left behind")
	assert.Equal(t, "", readSecretFile(path+".missing"))
}

// TestRotateSecretBadBatchSize: a bad flag is refused before anything is
// written, not after a new secret has been saved to secret_key.new.
func TestRotateSecretBadBatchSize(t *testing.T) {
	t.Setenv("LANGFLOW_SECRET_KEY", "")
	dir := filepath.Join(t.TempDir(), "cfg")
	var stdout, stderr bytes.Buffer
	assert.Equal(t, 2, realMain([]string{"rotate-secret", "--config-dir", dir, "--batch-size", "-1"}, nil, &stdout, &stderr))
	assert.Contains(t, stderr.String(), "-batch-size")
	assert.NoDirExists(t, dir, "nothing created")
}

func TestPlaceholders(t *testing.T) {
	assert.Equal(t, "SELECT a FROM t WHERE b = ? AND c = ?", (&store{}).q("SELECT a FROM t WHERE b = ? AND c = ?"))
	assert.Equal(t, "SELECT a FROM t WHERE b = $1 AND c = $2", (&store{postgres: true}).q("SELECT a FROM t WHERE b = ? AND c = ?"))
}

// The HTTP API in this process, without a browser: routes, the UI session,
// same-origin checks, flow validation.
func TestHandler(t *testing.T) {
	a, srv, echo := startApp(t, true)
	key, _, err := a.keys.Create(context.Background(), a.superuser.ID, "test", apikey.CreateOptions{})
	require.NoError(t, err)

	// The UI page sets the session cookie, which then works for management
	// endpoints but not for /run.
	res, err := http.Get(srv.URL + "/")
	require.NoError(t, err)
	_ = res.Body.Close()
	require.Equal(t, 200, res.StatusCode)
	assert.Contains(t, res.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'")
	var session *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == sessionCookie {
			session = c
		}
	}
	require.NotNil(t, session)
	assert.True(t, session.HttpOnly)
	assert.Equal(t, http.SameSiteStrictMode, session.SameSite)

	tests := []struct {
		name, method, path, body string
		headers                  []string
		cookie                   *http.Cookie
		wantCode                 int
		wantBody                 string
	}{
		{"health", "GET", "/health", "", nil, nil, 200, `{"status":"ok"}`},
		{"static", "GET", "/static/app.css", "", nil, nil, 200, ""},
		{"unknown API path", "GET", "/api/v1/nope", "", nil, nil, 404, `{"detail":"Not Found"}`},
		{"keys with the UI session", "GET", "/api/v1/api_key/", "", nil, session, 200, ""},
		{"keys with a forged session", "GET", "/api/v1/api_key/", "", nil, &http.Cookie{Name: sessionCookie, Value: "forged"}, 403, ""},
		{"keys without anything", "GET", "/api/v1/api_key/", "", nil, nil, 403, `{"detail":"` + msgAutoLoginNoKey + `"}`},
		{"run with the UI session only", "POST", "/api/v1/run/" + echo.ID, seedBody, nil, session, 403, `{"detail":"` + msgAutoLoginNoKey + `"}`},
		{"run with a key", "POST", "/api/v1/run/" + echo.ID, seedBody, []string{"x-api-key", key}, nil, 200, ""},
		{"run without a body", "POST", "/api/v1/run/" + echo.ID, "", []string{"x-api-key", key}, nil, 200, ""},
		{"run with a list tweak", "POST", "/api/v1/run/" + echo.ID, `{"tweaks":{"api_key":[1]}}`, []string{"x-api-key", key}, nil, 422, ""},
		{"cross-site create", "POST", "/api/v1/api_key/", `{"name":"x"}`, []string{"Sec-Fetch-Site", "cross-site"}, session, 403, `{"detail":"Cross-origin request refused"}`},
		{"same-origin create", "POST", "/api/v1/api_key/", `{"name":"x"}`, []string{"Sec-Fetch-Site", "same-origin"}, session, 200, ""},
		{"flow without a name", "POST", "/api/v1/flows/", `{"fields":{}}`, []string{"x-api-key", key}, nil, 400, `{"detail":"Flow name cannot be empty"}`},
		{"flow field with both", "POST", "/api/v1/flows/", `{"name":"f","fields":{"k":{"variable":"A","value":"b"}}}`, []string{"x-api-key", key}, nil, 400,
			`{"detail":"Field 'k': set either a variable or a value, not both"}`},
		{"flow", "POST", "/api/v1/flows/", `{"name":"f","fields":{"k":{"value":"literal-value"}}}`, []string{"x-api-key", key}, nil, 201, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, body)
			require.NoError(t, err)
			for i := 0; i+1 < len(tt.headers); i += 2 {
				req.Header.Set(tt.headers[i], tt.headers[i+1])
			}
			if tt.cookie != nil {
				req.AddCookie(tt.cookie)
			}
			res, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer res.Body.Close()
			b, err := io.ReadAll(res.Body)
			require.NoError(t, err)
			assert.Equal(t, tt.wantCode, res.StatusCode, string(b))
			if tt.wantBody != "" {
				assert.JSONEq(t, tt.wantBody, string(b))
			}
			assert.NotContains(t, string(b), "literal-value")
		})
	}
}
