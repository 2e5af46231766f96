package keyvars

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/examples/server/internal/config"
	"github.com/keyflow-dev/keyflow/examples/server/internal/sqldb"
	"github.com/keyflow-dev/keyflow/keyflowtest/dbtest"
	"github.com/keyflow-dev/keyflow/langflowdb"
	"github.com/keyflow-dev/keyflow/langflowdb/langflowtest"
	"github.com/keyflow-dev/keyflow/secrets"
	"github.com/keyflow-dev/keyflow/sqldialect"
	"github.com/keyflow-dev/keyflow/variables"
)

// TestOpen: on keyflow's tables a key created verifies, and the
// environment is imported only with LANGFLOW_STORE_ENVIRONMENT_VARIABLES.
func TestOpen(t *testing.T) {
	t.Setenv("OPENAI_API_KEY", "sk-from-the-environment")
	for _, storeEnv := range []bool{false, true} {
		ctx := context.Background()
		path := filepath.Join(t.TempDir(), "k.db")
		db, err := dbtest.OpenSQLite(path)
		require.NoError(t, err)
		t.Cleanup(func() { _ = db.Close() })
		keyring, err := secrets.NewKeyring(secrets.GenerateSecret())
		require.NoError(t, err)
		addr, err := sqldb.ParseURL("sqlite:///"+path, "")
		require.NoError(t, err)
		cfg := config.Config{StoreEnvVariables: storeEnv, ChangeMaxLag: apikey.DefaultChangesMaxLag}
		s, err := Open(ctx, db, addr, keyring, cfg, slog.New(slog.DiscardHandler))
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })

		key, _, err := s.Keys.Create(ctx, "u1", "k", apikey.CreateOptions{})
		require.NoError(t, err)
		p, err := s.Keys.Verify(ctx, key)
		require.NoError(t, err)
		assert.Equal(t, "u1", p.UserID)

		require.NoError(t, s.ImportEnv(ctx, "u1", "alice"))
		_, err = s.VarStore.GetByName(ctx, "u1", "OPENAI_API_KEY")
		if storeEnv {
			assert.NoError(t, err, "imported")
		} else {
			assert.ErrorIs(t, err, variables.ErrNotFound, "not imported")
		}
	}
}

// TestRotationRefusedOnLangflow: on a Langflow database the variable store
// lists no ciphertexts, so rotate-secret cannot re-encrypt Langflow's rows.
func TestRotationRefusedOnLangflow(t *testing.T) {
	ctx := context.Background()
	db := dbtest.SQLite(t)
	keyring, err := secrets.NewKeyring(secrets.GenerateSecret())
	require.NoError(t, err)
	_, err = langflowtest.Create(ctx, db, sqldialect.SQLite, langflowtest.GenNewest, keyring)
	require.NoError(t, err)
	ldb, err := langflowdb.Open(ctx, db, langflowdb.Config{Dialect: sqldialect.SQLite, Keyring: keyring})
	require.NoError(t, err)
	s, err := OpenLangflow(ldb, config.Config{}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	_, err = s.VarStore.(interface {
		ListCiphertexts(context.Context, string, int) ([]secrets.Ciphertext, error)
	}).ListCiphertexts(ctx, "", 10)
	assert.ErrorIs(t, err, ErrRotateLangflow)
}
