package config

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/keyflow-dev/keyflow/middleware"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An invalid KEYFLOW_ALLOWED_HOSTS stops the server before it starts,
// naming the setting (TestAllowedHostsFlag: --allowed-hosts).
func TestAllowedHostsConfig(t *testing.T) {
	t.Setenv("KEYFLOW_ALLOWED_HOSTS", "http://x.example/")
	_, err := Load(Flags{ConfigDir: t.TempDir(), DefaultLevel: "info"}, nil, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `KEYFLOW_ALLOWED_HOSTS: "http://x.example/" is not a host name`)

	t.Setenv("KEYFLOW_ALLOWED_HOSTS", "a.example,.b.example")
	cfg, err := Load(Flags{ConfigDir: t.TempDir(), DefaultLevel: "info"}, nil, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"a.example", ".b.example"}, cfg.AllowedHosts)
	assert.True(t, cfg.HostCheckEnabled(), "a configured list applies even without auto-login")
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
		_, err := Load(Flags{ConfigDir: "/x", DefaultLevel: "info"}, nil, nil)
		require.ErrorContains(t, err, "LANGFLOW_FALLBACK_TO_ENV_VAR is set but empty")
	})

	t.Run("Langflow's defaults", func(t *testing.T) {
		cfg, err := Load(Flags{ConfigDir: "rel", DefaultLevel: "info"}, nil, nil)
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
		cfg, err := Load(Flags{EnvFile: envFile, DefaultLevel: "info"}, nil, nil)
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
		cfg, err = Load(Flags{ConfigDir: "/flag", DatabaseURL: "sqlite:///x.db", DefaultLevel: "info"}, &host, &port)
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
			cfg, err := Load(Flags{ConfigDir: "/x", DefaultLevel: "info"}, nil, nil)
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
		_, err := Load(Flags{ConfigDir: "/x", LogLevel: "loud"}, nil, &port)
		require.Error(t, err)
		for _, want := range []string{"LANGFLOW_AUTO_LOGIN", "LANGFLOW_API_KEY_SOURCE", "LANGFLOW_PORT", "--port", "LANGFLOW_FALLBACK_TO_ENV_VAR", "log level"} {
			assert.ErrorContains(t, err, want)
		}
		_, err = Load(Flags{ConfigDir: "/x", EnvFile: "/does/not/exist"}, nil, nil)
		assert.ErrorContains(t, err, "--env-file")
	})
}

// TestSuperuserSettings: Langflow's rules for LANGFLOW_SUPERUSER and its
// password.
func TestSuperuserSettings(t *testing.T) {
	t.Parallel()
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	tests := []struct {
		name      string
		autoLogin bool
		getenv    func(string) string
		wantUser  string
		wantPass  string
		wantErr   string
	}{
		{"defaults", false, env(), "langflow", "", ""},
		{"configured", false, env("LANGFLOW_SUPERUSER", "admin", "LANGFLOW_SUPERUSER_PASSWORD", "pw"), "admin", "pw", ""},
		{"auto-login forces the defaults", true, env("LANGFLOW_SUPERUSER", "admin", "LANGFLOW_SUPERUSER_PASSWORD", "pw"), "langflow", "", ""},
		{"legacy password refused", false, env("LANGFLOW_SUPERUSER_PASSWORD", "langflow"), "", "", "legacy default password"},
		{"bad new-user flag", false, env("LANGFLOW_NEW_USER_IS_ACTIVE", "maybe"), "", "", "LANGFLOW_NEW_USER_IS_ACTIVE"},
		{"bad token lifetime", false, env("LANGFLOW_ACCESS_TOKEN_EXPIRE_SECONDS", "-1"), "", "", "LANGFLOW_ACCESS_TOKEN_EXPIRE_SECONDS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Auth: middleware.Config{AutoLogin: tt.autoLogin}}
			err := errors.Join(superuserSettings(&cfg, tt.getenv), tokenSettings(&cfg, tt.getenv))
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				assert.NotContains(t, err.Error(), "langflow\"", "no password in the error")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantUser, cfg.Superuser)
			assert.Equal(t, tt.wantPass, cfg.SuperuserPassword)
		})
	}
}

func TestCommand(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "go run ./examples/server", Command("/tmp/go-build1234/b001/exe/server"))
	assert.Equal(t, "./keyflow-server", Command("./keyflow-server"))
}

func TestParseSchema(t *testing.T) {
	for _, tc := range []struct{ flag, env, want, err string }{
		{"", "", "", ""},
		{"langflow", "keyflow", "langflow", ""},
		{"", "Langflow", "langflow", ""},
		{"KEYFLOW", "", "keyflow", ""},
		{"mysql", "", "", "--schema must be langflow or keyflow"},
	} {
		got, err := ParseSchema(tc.flag, tc.env)
		if tc.err != "" {
			assert.ErrorContains(t, err, tc.err)
			continue
		}
		require.NoError(t, err)
		assert.Equal(t, tc.want, got)
	}
}

func TestParseLimiter(t *testing.T) {
	for _, ok := range []string{"", "memory", "database", "redis://127.0.0.1:6379/0", "rediss://u:p@example.com:6380"} {
		got, err := ParseLimiter(ok)
		assert.NoError(t, err, ok)
		assert.Equal(t, ok, got)
	}
	for _, bad := range []string{"db", "Memory", "http://127.0.0.1:6379", "127.0.0.1:6379"} {
		_, err := ParseLimiter(bad)
		assert.Error(t, err, bad)
	}
}
