// Package startup is the reference server's one start-up path, which every
// subcommand takes: it creates the config dir, takes the database-use lock
// (shared; see sqldb.LockForUse), loads (or generates) the master secret,
// opens the database, creates every schema, and makes sure of the
// superuser. The App it returns holds what the rest of the server is built
// from.
package startup

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	_ "modernc.org/sqlite"             // registers the "sqlite" driver

	"github.com/keyflow-dev/keyflow/audit"
	auditsql "github.com/keyflow-dev/keyflow/audit/sqlstore"
	"github.com/keyflow-dev/keyflow/examples/server/internal/accounts"
	"github.com/keyflow-dev/keyflow/examples/server/internal/auditing"
	"github.com/keyflow-dev/keyflow/examples/server/internal/config"
	"github.com/keyflow-dev/keyflow/examples/server/internal/flows"
	"github.com/keyflow-dev/keyflow/examples/server/internal/keyvars"
	"github.com/keyflow-dev/keyflow/examples/server/internal/login"
	"github.com/keyflow-dev/keyflow/examples/server/internal/secretfile"
	"github.com/keyflow-dev/keyflow/examples/server/internal/sqldb"
	"github.com/keyflow-dev/keyflow/langflowdb"
	"github.com/keyflow-dev/keyflow/secrets"
	"github.com/keyflow-dev/keyflow/sqldialect"
)

// App is the opened server: the database, keyflow's services on it
// (embedded), the server's own tables and the superuser. Close it.
type App struct {
	*keyvars.Services

	Config    config.Config
	Log       *slog.Logger
	DB        *sql.DB // the database of --database-url
	Address   sqldb.Address
	Keyring   *secrets.Keyring
	Users     *accounts.Service
	Flows     *flows.Store
	Tokens    *login.Tokens
	Superuser accounts.User
	// Langflow is the Langflow database the server serves on, nil on
	// keyflow's own tables.
	Langflow *langflowdb.DB
	// Audit is the audit trail, in the server's own tables (never in a
	// Langflow database's); Auditor records the server's events in it.
	Audit   *audit.Log
	Auditor *auditing.Auditor

	local       *sql.DB // on a Langflow database: the server's own tables
	startupFile string  // SQLite: the start-up lock's file; "" on PostgreSQL
	unlock      func()  // releases the database-use lock
}

// Options change how Open starts.
type Options struct {
	// LockHeld says the caller holds the database-use lock already
	// (rotate-secret, exclusively), so it is not taken again.
	LockHeld bool
}

// maxPostgresConns bounds each instance's PostgreSQL connections.
const maxPostgresConns = 16

// Open opens the app on cfg. Close it.
func Open(ctx context.Context, cfg config.Config, log *slog.Logger, opts Options) (*App, error) {
	addr, err := prepare(cfg, log)
	if err != nil {
		return nil, err
	}
	// The lock comes before the secret is read, so that a rotate-secret
	// that finishes meanwhile is either waited out or fully seen.
	unlock := func() {}
	if !opts.LockHeld {
		if unlock, _, err = sqldb.LockForUse(ctx, addr, false); err != nil {
			return nil, err
		}
	}
	a := &App{Config: cfg, Log: log, Address: addr, unlock: unlock}
	if err := a.open(ctx); err != nil {
		a.closeAll()
		unlock()
		return nil, err
	}
	log.Debug("database ready", "url", addr.Display)
	return a, nil
}

// prepare creates the config dir and, on SQLite, the database file (0600,
// in a 0700 directory), and returns where the database is.
func prepare(cfg config.Config, log *slog.Logger) (sqldb.Address, error) {
	if err := os.MkdirAll(cfg.ConfigDir, 0o700); err != nil {
		return sqldb.Address{}, fmt.Errorf("config dir: %w", err)
	}
	addr, err := sqldb.ParseURL(cfg.DatabaseURL, cfg.ConfigDir)
	if err != nil {
		return sqldb.Address{}, err
	}
	return addr, sqldb.PrepareSQLiteFile(addr, log)
}

// open loads the master secret, opens the database and builds everything
// on keyflow's tables or a Langflow database's.
func (a *App) open(ctx context.Context) error {
	keyring, err := secrets.Load(secrets.LoadOptions{
		ConfigDir: a.Config.ConfigDir,
		Previous:  secretfile.Pending(a.Config.ConfigDir),
		Getenv:    a.Config.Getenv,
	})
	if err != nil {
		return fmt.Errorf("master secret: %w", err)
	}
	a.Keyring = keyring
	warnShortSecret(a.Log, keyring, a.Config.Getenv(secrets.EnvSecretKey) != "")
	if a.DB, err = sql.Open(a.Address.Driver, a.Address.DSN); err != nil {
		return fmt.Errorf("open %s: %w", a.Address.Display, err)
	}
	if a.Address.Postgres {
		// database/sql keeps only 2 idle connections by default, so a busy
		// server would reconnect to PostgreSQL all the time (tens of
		// milliseconds each). Keep them, and bound them so that several
		// instances fit in PostgreSQL's max_connections (100 by default).
		a.DB.SetMaxOpenConns(maxPostgresConns)
		a.DB.SetMaxIdleConns(maxPostgresConns)
		a.DB.SetConnMaxIdleTime(5 * time.Minute)
	} else {
		a.startupFile = a.Address.SQLitePath() + "-keyflow-startup.lock"
	}
	onLangflow, err := a.onLangflow(ctx)
	if err != nil {
		return err
	}
	if onLangflow {
		return a.openLangflow(ctx)
	}
	return a.openKeyflow(ctx)
}

// onLangflow reports whether to serve on Langflow's tables: when --schema
// says so or when the database is Langflow's.
func (a *App) onLangflow(ctx context.Context) (bool, error) {
	if a.Config.Schema == "langflow" {
		return true, nil
	}
	isLangflow, err := langflowdb.Detect(ctx, a.DB, a.Address.Dialect())
	switch {
	case err != nil:
		return false, nil // openKeyflow reports a database that does not answer
	case isLangflow && a.Config.Schema == "keyflow":
		return false, fmt.Errorf("%s is a Langflow database: keyflow's own tables do not go there (use --schema langflow to serve on Langflow's tables, or another --database-url)", a.Address.Display)
	}
	return isLangflow, nil
}

// openKeyflow connects and builds the stores and services on keyflow's
// tables.
func (a *App) openKeyflow(ctx context.Context) error {
	if err := a.DB.PingContext(ctx); err != nil {
		return fmt.Errorf("connect to %s: %w", a.Address.Display, err)
	}
	// Several instances may start together on one fresh PostgreSQL
	// database: create the schemas (and the superuser) one instance at a
	// time.
	unlock, err := a.StartupLock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	users, err := a.openServerTables(ctx, sqldb.DB{DB: a.DB, Postgres: a.Address.Postgres})
	if err != nil {
		return err
	}
	if a.Services, err = keyvars.Open(ctx, a.DB, a.Address, a.Keyring, a.Config, a.Log); err != nil {
		return err
	}
	a.Services.Auditor = a.Auditor
	a.Users = accounts.NewService(users, nil, a.Services.ImportEnv, a.Config, a.Log)
	a.Superuser, err = a.Users.Superuser(ctx)
	return err
}

// openServerTables creates the server's own tables (users, flows, login
// tokens) in db when they are missing.
func (a *App) openServerTables(ctx context.Context, db sqldb.DB) (*accounts.Store, error) {
	users, err := accounts.OpenStore(ctx, db)
	if err != nil {
		return nil, err
	}
	dialect := sqldialect.SQLite
	if db.Postgres {
		dialect = sqldialect.Postgres
	}
	auditStore, err := auditsql.New(ctx, db.DB, auditsql.Config{Dialect: dialect})
	if err != nil {
		return nil, fmt.Errorf("audit store: %w", err)
	}
	if a.Audit, err = audit.New(audit.Config{Store: auditStore}); err != nil {
		return nil, err
	}
	a.Auditor = &auditing.Auditor{Log: a.Audit, Logger: a.Log}
	// Flows created by other instances are seen within the same bound as
	// their keys and variables.
	if a.Flows, err = flows.OpenStore(ctx, db, a.Config.ChangeMaxLag); err != nil {
		return nil, err
	}
	if a.Tokens, err = login.OpenTokens(ctx, db); err != nil {
		return nil, err
	}
	return users, nil
}

// StartupLock takes the lock that serialises the start-up of processes
// sharing the database (schema creation, the superuser, the demo flow), and
// returns its release.
func (a *App) StartupLock(ctx context.Context) (func(), error) {
	return sqldb.StartupLock(ctx, a.DB, a.startupFile)
}

// ShutdownFlushTimeout bounds the usage flush in Close, so that a database
// that stopped answering cannot keep the process from stopping.
var ShutdownFlushTimeout = 10 * time.Second

// Close flushes pending API-key usage (for at most ShutdownFlushTimeout),
// stops the Manager, closes the database and then releases the
// database-use lock.
func (a *App) Close() error {
	if a.unlock != nil {
		defer a.unlock()
	}
	ctx, cancel := context.WithTimeout(context.Background(), ShutdownFlushTimeout)
	defer cancel()
	if err := a.Keys.Flush(ctx); err != nil {
		// Close the database first, so that the Manager's own final flush
		// (which has no deadline) fails at once instead of waiting again.
		dbErr := a.DB.Close()
		_ = a.Services.Close()
		return errors.Join(fmt.Errorf("write API-key usage: %w", err), dbErr, a.closeLocal())
	}
	err := a.Services.Close()
	return errors.Join(err, a.DB.Close(), a.closeLocal())
}

// closeAll closes what a failed Open had opened.
func (a *App) closeAll() {
	if a.Services != nil {
		_ = a.Services.Close()
	}
	if a.DB != nil {
		_ = a.DB.Close()
	}
	_ = a.closeLocal()
}

func (a *App) closeLocal() error {
	if a.local == nil {
		return nil
	}
	return a.local.Close()
}
