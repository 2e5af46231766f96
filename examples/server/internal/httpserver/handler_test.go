package httpserver

import (
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/keyflow-dev/keyflow/examples/server/internal/accounts"
	"github.com/keyflow-dev/keyflow/examples/server/internal/config"
	"github.com/keyflow-dev/keyflow/examples/server/internal/sqldb"
	"github.com/keyflow-dev/keyflow/examples/server/internal/startup"
)

func init() { accounts.BcryptCost = bcrypt.MinCost } // fast hashes in tests

// TestHandlerMakesDummyHashFirst: the handler is built with the dummy hash
// made, before the server listens, so the first login of an unknown user
// costs one bcrypt comparison, as a wrong password does, and not a hash
// generation too.
func TestHandlerMakesDummyHashFirst(t *testing.T) {
	cfg := config.Config{ConfigDir: t.TempDir(), Host: "127.0.0.1", Superuser: "admin", Getenv: func(string) string { return "" }}
	a, err := startup.Open(context.Background(), cfg, slog.New(slog.DiscardHandler), startup.Options{})
	require.NoError(t, err)
	defer a.Close()
	p, err := newParts(a, nil)
	require.NoError(t, err)
	cost, err := bcrypt.Cost(p.logins.DummyHash)
	assert.NoError(t, err, "a dummy hash is ready when the server listens")
	assert.Equal(t, accounts.BcryptCost, cost)
}

func TestAPIKeyCommand(t *testing.T) {
	t.Setenv("LANGFLOW_CONFIG_DIR", "")
	def, err := defaultConfigDir()
	require.NoError(t, err)
	tests := []struct {
		name       string
		cfg        config.Config
		dbDisplay  string
		want       string
		notContain string
	}{
		{"defaults", config.Config{ConfigDir: def}, "", "go run ./examples/server api-key", ""},
		{"a config dir with a space", config.Config{ConfigDir: "/tmp/my dir"}, "",
			"go run ./examples/server api-key --config-dir '/tmp/my dir'", ""},
		{"PostgreSQL, password hidden", config.Config{ConfigDir: def, DatabaseURL: "postgres://u:pw@db/lf"}, sqldb.RedactURL("postgres://u:pw@db/lf"),
			"go run ./examples/server api-key --database-url postgres://u:xxxxx@db/lf", ":pw@"},
		{"PostgreSQL, password parameter hidden", config.Config{ConfigDir: def, DatabaseURL: "postgres://db/lf?password=pw&sslmode=disable"},
			sqldb.RedactURL("postgres://db/lf?password=pw&sslmode=disable"),
			"go run ./examples/server api-key --database-url 'postgres://db/lf?password=xxxxx&sslmode=disable'", "=pw"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := APIKeyCommand(tt.cfg, tt.dbDisplay)
			assert.Equal(t, tt.want, got)
			if tt.notContain != "" {
				assert.NotContains(t, got, tt.notContain)
			}
		})
	}
	assert.Equal(t, `'it'\''s'`, shellQuote("it's"))
	assert.Equal(t, `''`, shellQuote(""))
}

// defaultConfigDir is the config dir when neither --config-dir nor
// LANGFLOW_CONFIG_DIR is set.
func defaultConfigDir() (string, error) {
	cfg, err := config.Load(config.Flags{DefaultLevel: "info"}, nil, nil)
	return cfg.ConfigDir, err
}
