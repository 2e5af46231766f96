// Package sqlstore is a variables.Store on database/sql, for SQLite and
// PostgreSQL. It takes a *sql.DB opened with the driver of the host's choice
// (it imports none) and a Dialect saying which SQL to speak, and creates its
// table and indexes in New.
//
// Schema (table "variable" by default, as Langflow's):
//
//	id TEXT PRIMARY KEY, user_id TEXT, name TEXT, value TEXT, type TEXT,
//	default_fields TEXT (a JSON array), created_at BIGINT, updated_at BIGINT NULL,
//	origin TEXT, UNIQUE (user_id, name)
//
// Timestamps are Unix microseconds (UTC); a zero UpdatedAt is NULL. Unlike
// Langflow's table, (user_id, name) is unique. A Store is safe for
// concurrent use; concurrency control is left to the database.
//
// The Store is also a variables.ChangeFeed: triggers log the user of every
// variable written in "<table>_changes" (see Store.Changes), so that the
// Services of several processes sharing the table can cache each user's
// variables (variables.ServiceConfig.Changes); on PostgreSQL (13 or later)
// the trigger also notifies (Store.Notification).
package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/keyflow-dev/keyflow/internal/sqlchangelog"
	"github.com/keyflow-dev/keyflow/internal/sqlutil"
	"github.com/keyflow-dev/keyflow/secrets"
	"github.com/keyflow-dev/keyflow/sqldialect"
	"github.com/keyflow-dev/keyflow/variables"
)

// Config configures New. Dialect is required.
type Config struct {
	Dialect sqldialect.Dialect // SQLite or Postgres; required
	Table   string             // default "variable"; letters, digits and underscores, at most 48
	// ChangeRetention is how long rows of the change log (changes.go) are
	// kept: a process whose last poll of Changes is older learns that
	// changes were lost and drops its whole cache. 0:
	// DefaultChangeRetention (10 minutes); at least a second.
	ChangeRetention time.Duration
}

// Store is a variables.Store on a *sql.DB. It is safe for concurrent use and
// logs nothing; its own error texts name IDs, never values. Close
// releases its prepared statement when the Store is no longer needed. Make
// one with New; the zero value is not usable.
type Store struct {
	db      *sql.DB
	dialect sqldialect.Dialect
	table   string
	q       queries
	list    *sql.Stmt // prepared: ListByUser is the Resolver's one query per run

	// The change log (changes.go).
	retention time.Duration
	log       *sqlchangelog.Log[string]
}

var _ variables.Store = (*Store)(nil)

type queries struct {
	insert, get, getByName, list, update, del, listTokens, swap string
}

var tableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// New returns a Store on db and creates its table and indexes when they are
// missing.
func New(ctx context.Context, db *sql.DB, cfg Config) (*Store, error) {
	if db == nil {
		return nil, errors.New("sqlstore: nil *sql.DB")
	}
	if !cfg.Dialect.Valid() {
		return nil, fmt.Errorf("sqlstore: Config.Dialect must be sqldialect.SQLite or sqldialect.Postgres, not %q", cfg.Dialect)
	}
	if cfg.Table == "" {
		cfg.Table = "variable"
	}
	if !tableName.MatchString(cfg.Table) || len(cfg.Table) > maxChangeTable {
		return nil, fmt.Errorf("sqlstore: invalid table name %q", cfg.Table)
	}
	if cfg.ChangeRetention == 0 {
		cfg.ChangeRetention = DefaultChangeRetention
	}
	if cfg.ChangeRetention < time.Second {
		return nil, errors.New("sqlstore: Config.ChangeRetention must be at least a second")
	}
	s := &Store{db: db, dialect: cfg.Dialect, table: cfg.Table, retention: cfg.ChangeRetention}
	t := cfg.Table
	cols := "id, user_id, name, value, type, default_fields, created_at, updated_at, origin"
	// IDs compare in byte order, as Go strings and SQLite's default BINARY
	// collation do, whatever PostgreSQL's collation; Update compares prev's
	// updated_at, which may be NULL, NULL-safely.
	id, sameUpdatedAt := "id", "updated_at IS ?"
	if s.dialect == sqldialect.Postgres {
		id, sameUpdatedAt = `id COLLATE "C"`, "updated_at IS NOT DISTINCT FROM ?"
	}
	s.q = queries{
		insert:    "INSERT INTO " + t + " (" + cols + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
		get:       "SELECT " + cols + " FROM " + t + " WHERE user_id = ? AND id = ?",
		getByName: "SELECT " + cols + " FROM " + t + " WHERE user_id = ? AND name = ?",
		list:      "SELECT " + cols + " FROM " + t + " WHERE user_id = ? ORDER BY created_at, " + id,
		update: "UPDATE " + t + " SET name = ?, value = ?, type = ?, default_fields = ?, updated_at = ?, origin = ?" +
			" WHERE user_id = ? AND id = ? AND value = ? AND origin = ? AND " + sameUpdatedAt,
		del:        "DELETE FROM " + t + " WHERE user_id = ? AND id = ?",
		listTokens: "SELECT id, value FROM " + t + " WHERE " + id + " > ? AND substr(value, 1, 6) = 'gAAAAA' ORDER BY " + id + " LIMIT ?",
		swap:       "UPDATE " + t + " SET value = ? WHERE id = ? AND value = ?",
	}
	if s.dialect == sqldialect.Postgres {
		q := &s.q
		for _, p := range []*string{&q.insert, &q.get, &q.getByName, &q.list, &q.update, &q.del, &q.listTokens, &q.swap} {
			*p = sqlutil.Dollar(*p)
		}
	}
	if err := s.Migrate(ctx); err != nil {
		return nil, err
	}
	var err error
	if s.list, err = db.PrepareContext(ctx, s.q.list); err != nil {
		return nil, fmt.Errorf("sqlstore: prepare: %w", err)
	}
	if err := s.initChanges(ctx); err != nil {
		_ = s.list.Close()
		return nil, err
	}
	return s, nil
}

// Close releases the Store's prepared statements; it does not close the
// *sql.DB. The Store must not be used afterwards.
func (s *Store) Close() error {
	err := s.list.Close()
	return errors.Join(err, s.log.Close())
}

// Migrate creates the table and its indexes when they are missing, and
// checks that an existing table has this Store's columns (a table of the same
// name from another program, such as Langflow's own "variable" table, is an
// error, and is left untouched: choose another Config.Table). New calls it.
//
// It is idempotent and safe to run from several pools or processes at once
// (instances starting together on a fresh database): it runs in one
// transaction, which on PostgreSQL first takes a transaction-scoped advisory
// lock keyed on the table name (concurrent CREATE ... IF NOT EXISTS would
// otherwise race in PostgreSQL's catalog), and on SQLite starts with BEGIN
// IMMEDIATE, so that it waits for the other migrations within the
// connection's busy timeout (which SQLite pools shared by several writers
// need anyway).
func (s *Store) Migrate(ctx context.Context) error {
	if s.dialect == sqldialect.Postgres {
		return s.migratePostgres(ctx)
	}
	return s.migrateSQLite(ctx)
}

func (s *Store) migratePostgres(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: migrate: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := sqlutil.LockMigrations(ctx, tx, "keyflow/variables/sqlstore:"+s.table); err != nil {
		return fmt.Errorf("sqlstore: migrate: lock: %w", err)
	}
	if err := s.migrateIn(ctx, tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: migrate: %w", err)
	}
	return nil
}

// migrateSQLite runs the migration in a BEGIN IMMEDIATE transaction on one
// connection, whatever transaction mode the DSN asks for: it takes the
// write lock first (waiting up to the busy timeout), where a deferred
// transaction that reads the schema before writing could fail with
// SQLITE_BUSY at once while another pool migrates.
func (s *Store) migrateSQLite(ctx context.Context) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sqlstore: migrate: %w", err)
	}
	defer func() { _ = conn.Close() }()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		discardIfInTx(conn)
		return fmt.Errorf("sqlstore: migrate: %w", err)
	}
	if err := s.migrateIn(ctx, conn); err != nil {
		discardIfInTx(conn)
		return err
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		discardIfInTx(conn)
		return fmt.Errorf("sqlstore: migrate: %w", err)
	}
	return nil
}

// discardIfInTx rolls back conn's transaction after a failure; if that
// fails (there may be no transaction, or the connection may be broken),
// the connection is discarded rather than returned to the pool possibly
// inside a transaction that holds SQLite's write lock.
func discardIfInTx(conn *sql.Conn) {
	if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	}
}

// execQuerier is what migrateIn needs of a *sql.Tx or *sql.Conn.
type execQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// migrateIn creates the table, checks its columns, then creates the index,
// so that another program's table of the same name is not modified.
func (s *Store) migrateIn(ctx context.Context, ex execQuerier) error {
	table := s.table
	create := "CREATE TABLE IF NOT EXISTS " + table + ` (
	id TEXT NOT NULL PRIMARY KEY,
	user_id TEXT NOT NULL,
	name TEXT NOT NULL,
	value TEXT NOT NULL,
	type TEXT NOT NULL,
	default_fields TEXT NOT NULL DEFAULT '[]',
	created_at BIGINT NOT NULL,
	updated_at BIGINT,
	origin TEXT NOT NULL DEFAULT 'user'
)`
	if _, err := ex.ExecContext(ctx, create); err != nil {
		return fmt.Errorf("sqlstore: migrate: %w", err)
	}
	probe := "SELECT id, user_id, name, value, type, default_fields, created_at, updated_at, origin FROM " + table + " WHERE 1 = 0"
	rows, err := ex.QueryContext(ctx, probe)
	if err != nil {
		return fmt.Errorf("sqlstore: table %s exists with another schema (use Config.Table): %w", table, err)
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("sqlstore: migrate: %w", err)
	}
	index := "CREATE UNIQUE INDEX IF NOT EXISTS " + table + "_user_name ON " + table + " (user_id, name)"
	if _, err := ex.ExecContext(ctx, index); err != nil {
		return fmt.Errorf("sqlstore: migrate: %w", err)
	}
	return s.migrateChanges(ctx, ex)
}

func micros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

func fromMicros(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.UnixMicro(n.Int64).UTC()
}

func encodeFields(f []string) (string, error) {
	if len(f) == 0 {
		return "[]", nil
	}
	b, err := json.Marshal(f)
	return string(b), err
}

type scanner interface{ Scan(dest ...any) error }

// scanTarget holds every column of a row, so that scanning allocates one
// object rather than one per column.
type scanTarget struct {
	v                   variables.Variable
	typ, fields, origin string
	created, updated    sql.NullInt64
}

func scan(row scanner) (variables.Variable, error) {
	d := &scanTarget{}
	if err := row.Scan(&d.v.ID, &d.v.UserID, &d.v.Name, &d.v.Value, &d.typ, &d.fields, &d.created, &d.updated, &d.origin); err != nil {
		return variables.Variable{}, err
	}
	v := d.v
	v.Type = variables.Type(d.typ)
	v.Origin = variables.Origin(d.origin)
	v.CreatedAt = fromMicros(d.created)
	v.UpdatedAt = fromMicros(d.updated)
	v.DefaultFields = []string{}
	switch d.fields {
	case "", "[]", "null":
	default:
		if err := json.Unmarshal([]byte(d.fields), &v.DefaultFields); err != nil {
			return v, fmt.Errorf("sqlstore: variable %s: default_fields: %w", v.ID, err)
		}
	}
	return v, nil
}

// Create implements variables.Store.
func (s *Store) Create(ctx context.Context, v variables.Variable) error {
	fields, err := encodeFields(v.DefaultFields)
	if err != nil {
		return fmt.Errorf("sqlstore: create: %w", err)
	}
	origin := v.Origin
	if origin == "" {
		origin = variables.OriginUser
	}
	res, err := s.db.ExecContext(ctx, s.q.insert, v.ID, v.UserID, v.Name, v.Value, string(v.Type), fields,
		v.CreatedAt.UnixMicro(), micros(v.UpdatedAt), string(origin))
	if err != nil {
		return fmt.Errorf("sqlstore: create: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlstore: create: %w", err)
	} else if n == 0 {
		return variables.ErrDuplicate
	}
	return nil
}

func (s *Store) getOne(ctx context.Context, query, userID, key string) (variables.Variable, error) {
	v, err := scan(s.db.QueryRowContext(ctx, query, userID, key))
	if errors.Is(err, sql.ErrNoRows) {
		return variables.Variable{}, variables.ErrNotFound
	}
	if err != nil {
		return variables.Variable{}, fmt.Errorf("sqlstore: get: %w", err)
	}
	return v, nil
}

// Get implements variables.Store.
func (s *Store) Get(ctx context.Context, userID, id string) (variables.Variable, error) {
	return s.getOne(ctx, s.q.get, userID, id)
}

// GetByName implements variables.Store.
func (s *Store) GetByName(ctx context.Context, userID, name string) (variables.Variable, error) {
	return s.getOne(ctx, s.q.getByName, userID, name)
}

// ListByUser implements variables.Store with one query.
func (s *Store) ListByUser(ctx context.Context, userID string) ([]variables.Variable, error) {
	rows, err := s.list.QueryContext(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list: %w", err)
	}
	defer rows.Close()
	out := []variables.Variable{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: list: %w", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: list: %w", err)
	}
	return out, nil
}

// Update implements variables.Store.
func (s *Store) Update(ctx context.Context, prev, next variables.Variable) error {
	fields, err := encodeFields(next.DefaultFields)
	if err != nil {
		return fmt.Errorf("sqlstore: update: %w", err)
	}
	res, err := s.db.ExecContext(ctx, s.q.update, next.Name, next.Value, string(next.Type), fields,
		micros(next.UpdatedAt), string(next.Origin), next.UserID, next.ID, prev.Value, string(prev.Origin), micros(prev.UpdatedAt))
	if err != nil {
		if isUniqueViolation(err) {
			return variables.ErrDuplicate
		}
		return fmt.Errorf("sqlstore: update: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlstore: update: %w", err)
	}
	if n == 1 {
		return nil
	}
	// Nothing matched: the row is gone, or it changed since prev was read.
	if _, err := s.Get(ctx, next.UserID, next.ID); err != nil {
		return err
	}
	return variables.ErrConflict
}

// isUniqueViolation recognises a unique-constraint failure without importing
// a driver: PostgreSQL's SQLSTATE 23505 (pgx's *pgconn.PgError has
// SQLState()), SQLite's extended codes 2067/1555 (modernc's *sqlite.Error has
// Code()), and the messages of other drivers.
func isUniqueViolation(err error) bool {
	var state interface{ SQLState() string }
	if errors.As(err, &state) {
		return state.SQLState() == "23505"
	}
	var code interface{ Code() int }
	if errors.As(err, &code) && (code.Code() == 2067 || code.Code() == 1555) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "UNIQUE constraint failed") || strings.Contains(msg, "duplicate key value")
}

// Delete implements variables.Store.
func (s *Store) Delete(ctx context.Context, userID, id string) error {
	res, err := s.db.ExecContext(ctx, s.q.del, userID, id)
	if err != nil {
		return fmt.Errorf("sqlstore: delete: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlstore: delete: %w", err)
	}
	if n == 0 {
		return variables.ErrNotFound
	}
	return nil
}

// ListCiphertexts implements secrets.CiphertextStore: the values of all
// users that are Fernet tokens, by ID ascending (byte order). limit <= 0
// means no limit.
func (s *Store) ListCiphertexts(ctx context.Context, after string, limit int) ([]secrets.Ciphertext, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
		if s.dialect == sqldialect.Postgres {
			limit = 1<<31 - 1
		}
	}
	rows, err := s.db.QueryContext(ctx, s.q.listTokens, after, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list ciphertexts: %w", err)
	}
	defer rows.Close()
	var out []secrets.Ciphertext
	for rows.Next() {
		var c secrets.Ciphertext
		if err := rows.Scan(&c.ID, &c.Token); err != nil {
			return nil, fmt.Errorf("sqlstore: list ciphertexts: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: list ciphertexts: %w", err)
	}
	return out, nil
}

// SwapCiphertext implements secrets.CiphertextStore; it changes neither the
// timestamps nor the origin.
func (s *Store) SwapCiphertext(ctx context.Context, id, oldToken, newToken string) (bool, error) {
	res, err := s.db.ExecContext(ctx, s.q.swap, newToken, id, oldToken)
	if err != nil {
		return false, fmt.Errorf("sqlstore: swap ciphertext: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("sqlstore: swap ciphertext: %w", err)
	}
	return n == 1, nil
}
