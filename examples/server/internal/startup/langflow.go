package startup

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"

	"github.com/keyflow-dev/keyflow/examples/server/internal/accounts"
	"github.com/keyflow-dev/keyflow/examples/server/internal/keyvars"
	"github.com/keyflow-dev/keyflow/examples/server/internal/sqldb"
	"github.com/keyflow-dev/keyflow/langflowdb"
)

// Serving on a Langflow database (--schema langflow, or detected): API keys
// and global variables are Langflow's own apikey and variable rows (package
// langflowdb), so this server and a running Langflow that share
// LANGFLOW_SECRET_KEY accept the same keys and read the same variables.
// Users are Langflow's: the server mirrors them, with their IDs, into its
// own small SQLite file in the config dir, next to its flows; it never
// creates a table in Langflow's database
// (docs/langflow-compatibility.md#langflow-database).

// LangflowStateFile holds the server's own tables (users mirrored from
// Langflow, flows, login tokens) when it serves on a Langflow database.
const LangflowStateFile = "keyflow-langflow-state.db"

// openLangflow builds the stores and services on a Langflow database.
func (a *App) openLangflow(ctx context.Context) error {
	if err := a.DB.PingContext(ctx); err != nil {
		return fmt.Errorf("connect to %s: %w", a.Address.Display, err)
	}
	ldb, err := langflowdb.Open(ctx, a.DB, langflowdb.Config{Dialect: a.Address.Dialect(), Keyring: a.Keyring, Logger: a.Log})
	if err != nil {
		return fmt.Errorf("langflow database %s: %w", a.Address.Display, err)
	}
	a.Langflow = ldb
	if _, err := ldb.Variables(); err != nil {
		return err
	}
	users, err := a.openStateFile(ctx)
	if err != nil {
		return err
	}
	if a.Services, err = keyvars.OpenLangflow(ldb, a.Config, a.Log); err != nil {
		return err
	}
	a.Users = accounts.NewService(users, ldb, a.Services.ImportEnv, a.Config, a.Log)
	if a.Superuser, err = a.Users.Superuser(ctx); err != nil {
		return err
	}
	a.Log.Info("serving on a Langflow database's own tables", "database", a.Address.Display,
		"schema", ldb.Schema().Generation(), "new_keys_stored_as", ldb.Schema().KeyStorage.String(),
		"revocation_bound", ldb.Keys().MaxCacheAge(), "encryption_key", ldb.Schema().Encryption)
	return nil
}

// openStateFile opens the server's own tables in LangflowStateFile.
func (a *App) openStateFile(ctx context.Context) (*accounts.Store, error) {
	state, err := sqldb.ParseURL("sqlite:///"+filepath.Join(a.Config.ConfigDir, LangflowStateFile), a.Config.ConfigDir)
	if err != nil {
		return nil, err
	}
	// Mirrored password hashes, login token hashes and flow literals: 0600
	// in a 0700 directory, like keyflow.db.
	if err := sqldb.PrepareSQLiteFile(state, a.Log); err != nil {
		return nil, err
	}
	if a.local, err = sql.Open(state.Driver, state.DSN); err != nil {
		return nil, fmt.Errorf("open %s: %w", state.Display, err)
	}
	return a.openServerTables(ctx, sqldb.DB{DB: a.local})
}
