package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/langflowdb"
	"github.com/keyflow-dev/keyflow/secrets"
	"github.com/keyflow-dev/keyflow/sqldialect"
	"github.com/keyflow-dev/keyflow/variables"
)

// Serving on a Langflow database (--schema langflow, or detected): API keys
// and global variables are Langflow's own apikey and variable rows (package
// langflowdb), so this server and a running Langflow that share
// LANGFLOW_SECRET_KEY accept the same keys and read the same variables.
// Users are Langflow's: the server mirrors them, with their IDs, into its
// own small SQLite file in the config dir, next to its flows; it never
// creates a table in Langflow's database
// (docs/langflow-compatibility.md#langflow-database).

// langflowStateFile holds the server's own tables (users mirrored from
// Langflow, flows) when it serves on a Langflow database.
const langflowStateFile = "keyflow-langflow-state.db"

// langflowConn is what serving on a Langflow database adds to the app.
type langflowConn struct {
	db    *langflowdb.DB
	local *sql.DB // the server's own tables
}

// parseSchema reads --schema (or KEYFLOW_SCHEMA).
func parseSchema(flagValue, envValue string) (string, error) {
	v := flagValue
	if v == "" {
		v = envValue
	}
	switch v = strings.ToLower(strings.TrimSpace(v)); v {
	case "", "keyflow", "langflow":
		return v, nil
	}
	return "", fmt.Errorf("--schema must be langflow or keyflow, got %q", v)
}

func langflowDialect(dbc database) sqldialect.Dialect {
	if dbc.postgres {
		return sqldialect.Postgres
	}
	return sqldialect.SQLite
}

// chooseSchema returns how to open the database: on Langflow's tables when
// --schema says so or when the database is Langflow's, else keyflow's.
func (a *app) chooseSchema(ctx context.Context, dbc database) (func(context.Context, database) error, error) {
	if a.cfg.Schema == "langflow" {
		return a.openLangflow, nil
	}
	isLangflow, err := langflowdb.Detect(ctx, a.db, langflowDialect(dbc))
	switch {
	case err != nil:
		return a.open, nil // open reports a database that does not answer
	case isLangflow && a.cfg.Schema == "keyflow":
		return nil, fmt.Errorf("%s is a Langflow database: keyflow's own tables do not go there (use --schema langflow to serve on Langflow's tables, or another --database-url)", dbc.display)
	case isLangflow:
		return a.openLangflow, nil
	}
	return a.open, nil
}

// openLangflow builds the stores and services on a Langflow database.
func (a *app) openLangflow(ctx context.Context, dbc database) error {
	if err := a.db.PingContext(ctx); err != nil {
		return fmt.Errorf("connect to %s: %w", dbc.display, err)
	}
	ldb, err := langflowdb.Open(ctx, a.db, langflowdb.Config{Dialect: langflowDialect(dbc), Keyring: a.keyring, Logger: a.log})
	if err != nil {
		return fmt.Errorf("langflow database %s: %w", dbc.display, err)
	}
	vs, err := ldb.Variables()
	if err != nil {
		return err
	}
	state, err := parseDatabaseURL("sqlite:///"+filepath.Join(a.cfg.ConfigDir, langflowStateFile), a.cfg.ConfigDir)
	if err != nil {
		return err
	}
	// Mirrored password hashes, login token hashes and flow literals: 0600
	// in a 0700 directory, like keyflow.db (dbfiles.go).
	if err := prepareSQLiteFile(state, a.log); err != nil {
		return err
	}
	local, err := sql.Open(state.driver, state.dsn)
	if err != nil {
		return fmt.Errorf("open %s: %w", state.display, err)
	}
	a.langflow = &langflowConn{db: ldb, local: local}
	if a.store, err = newStore(ctx, local, false); err != nil {
		return err
	}
	if err := a.store.migrateUsers(ctx); err != nil {
		return err
	}
	keys := ldb.Keys()
	a.keyStore, a.varStore = keys, noRotation{vs}
	// No change feed: Langflow's tables have no change log. The store's
	// CacheBound keeps cached verdicts short (900 ms), which bounds how late a
	// key deleted or deactivated in Langflow is refused.
	if a.keys, err = apikey.NewManager(apikey.Config{Store: keys, DisableUsageTracking: a.cfg.DisableUsageTracking, Logger: a.log}); err != nil {
		return err
	}
	// ldb.Keyring encrypts as the Langflow beside it does (a short secret:
	// the key derivation of its version), so Langflow opens what keyflow writes.
	if a.vars, err = variables.NewService(variables.ServiceConfig{Store: vs, Keyring: ldb.Keyring(), Logger: a.log}); err != nil {
		return err
	}
	fallback := variables.EnvFallbackOff
	if a.cfg.FallbackToEnv {
		fallback = variables.EnvFallbackOn
	}
	if a.resolver, err = variables.NewResolver(variables.ResolverConfig{Service: a.vars, EnvFallback: fallback}); err != nil {
		return err
	}
	if a.superuser, err = a.mirrorLangflowUsers(ctx); err != nil {
		return err
	}
	a.log.Info("serving on a Langflow database's own tables", "database", dbc.display,
		"schema", ldb.Schema().Generation(), "new_keys_stored_as", ldb.Schema().KeyStorage.String(),
		"revocation_bound", keys.MaxCacheAge(), "encryption_key", ldb.Schema().Encryption)
	return nil
}

// mirrorLangflowUsers copies Langflow's users into the server's users table
// (with their IDs, which Langflow's keys and variables reference, their
// bcrypt password hashes, so that they log in with their Langflow
// passwords, and is_active) and returns the superuser: LANGFLOW_SUPERUSER
// ("langflow" by default) when Langflow has it as an active superuser, else
// Langflow's first active superuser.
func (a *app) mirrorLangflowUsers(ctx context.Context) (user, error) {
	users, err := a.langflow.db.Users(ctx)
	if err != nil {
		return user{}, err
	}
	want := a.cfg.Superuser
	if want == "" {
		want = superuserName
	}
	var super *user
	for _, lu := range users {
		u := user{ID: lu.ID, Username: lu.Username, IsSuperuser: lu.IsSuperuser, CreatedAt: lu.CreatedAt}
		if err := a.store.mirrorUser(ctx, lu); err != nil {
			return user{}, err
		}
		if lu.IsSuperuser && lu.IsActive && (super == nil || lu.Username == want) {
			super = &u
		}
	}
	if super == nil {
		return user{}, errors.New("the Langflow database has no active superuser: start Langflow once (it creates one) or run `langflow superuser`")
	}
	return *super, nil
}

// langflowUser is ensureUser on a Langflow database: the user must exist in
// Langflow (the server does not create Langflow users).
func (a *app) langflowUser(ctx context.Context, username string) (user, error) {
	lu, err := a.langflow.db.UserByName(ctx, username)
	if errors.Is(err, langflowdb.ErrUserNotFound) {
		return user{}, fmt.Errorf("no Langflow user named %q: create it in Langflow first", username)
	}
	if err != nil {
		return user{}, err
	}
	u := user{ID: lu.ID, Username: lu.Username, IsSuperuser: lu.IsSuperuser, CreatedAt: lu.CreatedAt}
	return u, a.store.mirrorUser(ctx, lu)
}

// refreshLangflowUser reads the user named username from Langflow's table
// again and updates its mirror, so that a password changed, a user
// deactivated or deleted in Langflow counts here at once, not at the next
// start. A user Langflow no longer has is kept (its flows and tokens refer
// to it) but can no longer log in. It does nothing when the server does not
// serve a Langflow database.
func (a *app) refreshLangflowUser(ctx context.Context, username string) error {
	if a.langflow == nil {
		return nil
	}
	lu, err := a.langflow.db.UserByName(ctx, username)
	if errors.Is(err, langflowdb.ErrUserNotFound) {
		_, err := a.store.db.ExecContext(ctx, a.store.q(`UPDATE users SET password = NULL, is_active = FALSE WHERE username = ?`), username)
		if err != nil {
			return fmt.Errorf("mirror user: %w", err)
		}
		return nil
	}
	if err != nil {
		return err
	}
	return a.store.mirrorUser(ctx, lu)
}

// accountByIDFresh is store.accountByID, read again from Langflow's table
// first when the server serves a Langflow database.
func (a *app) accountByIDFresh(ctx context.Context, id string) (account, error) {
	acct, err := a.store.accountByID(ctx, id)
	if err != nil || a.langflow == nil {
		return acct, err
	}
	if err := a.refreshLangflowUser(ctx, acct.Username); err != nil {
		return account{}, err
	}
	return a.store.accountByID(ctx, id)
}

// msgUsersInLangflow answers user creation and changes on a Langflow
// database, whose users are Langflow's.
const msgUsersInLangflow = "Users are managed in Langflow on a Langflow database: this server reads them from there"

// mirrorUser writes Langflow's user u with its own ID, password hash and
// is_active; a stale row of the same name (a Langflow user deleted and made
// again) goes first.
func (s *store) mirrorUser(ctx context.Context, u langflowdb.User) error {
	defer s.usersChanged.Add(1)
	if _, err := s.db.ExecContext(ctx, s.q(`DELETE FROM users WHERE username = ? AND id <> ?`), u.Username, u.ID); err != nil {
		return fmt.Errorf("mirror user: %w", err)
	}
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO users (id, username, is_superuser, created_at, password, is_active) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET username = excluded.username, is_superuser = excluded.is_superuser,
		password = excluded.password, is_active = excluded.is_active`),
		u.ID, u.Username, u.IsSuperuser, u.CreatedAt.UTC(), nullString(u.PasswordHash), u.IsActive)
	if err != nil {
		return fmt.Errorf("mirror user: %w", err)
	}
	return nil
}

func (a *app) closeLangflow() error {
	if a.langflow == nil || a.langflow.local == nil {
		return nil
	}
	return a.langflow.local.Close()
}

// errRotateLangflow: rotate-secret on a Langflow database would lock
// Langflow out of its own Credential variables and key tokens.
var errRotateLangflow = errors.New("rotate-secret does not run on a Langflow database: Langflow reads its variables and key tokens with its own LANGFLOW_SECRET_KEY, which this command cannot change")

// noRotation is the variable store as rotate-secret sees it on a Langflow
// database: it refuses to list ciphertexts.
type noRotation struct{ variables.Store }

func (noRotation) ListCiphertexts(context.Context, string, int) ([]secrets.Ciphertext, error) {
	return nil, errRotateLangflow
}

// nullString is s, or NULL when empty.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// errSuperuserLangflow: on a Langflow database, users and passwords are
// Langflow's (the server only mirrors them).
var errSuperuserLangflow = errors.New("superuser does not run on a Langflow database: manage users and passwords in Langflow (`langflow superuser`); this server mirrors them at start")
