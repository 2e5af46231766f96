package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/keyflow-dev/keyflow/sqldialect"
	"github.com/keyflow-dev/keyflow/variables"
)

// The change log: a table "<table>_changes" that triggers fill, in the
// transaction of the change, with the user ID of every variable inserted,
// updated or deleted, whoever writes (this Store, another process, rotation,
// an operator's SQL). Store.Changes reads it (variables.ChangeFeed), so that
// the Services of several processes sharing the table keep their caches
// right (variables.ServiceConfig.Changes). It works as apikey/sqlstore's
// change log does:
//
// PostgreSQL: each row records its transaction ID (xid8); a cursor is the
// snapshot of the last poll (pg_current_snapshot, as text), and a poll
// returns the rows not visible in it, so rows of transactions that commit
// out of order are read when they commit, and none twice. Pruning deletes
// rows only of transactions that had finished before a snapshot taken more
// than Config.ChangeRetention ago ("<table>_changes_hz"). The trigger also
// sends a notification (Store.Notification), so listeners poll at once.
//
// SQLite: one writer at a time, so AUTOINCREMENT ids commit in order and the
// cursor is the last id read. Pruning keeps the newest row; changes are lost
// for a cursor when the oldest row left is past it.

// DefaultChangeRetention is the default Config.ChangeRetention.
const DefaultChangeRetention = 10 * time.Minute

// maxChangeTable bounds the table name when it carries a change log: its
// longest companion, "<table>_changes_hz", must fit PostgreSQL's 63 bytes.
const maxChangeTable = 48

var _ variables.ChangeFeed = (*Store)(nil)

// changeLogSchema returns the statements that create the change log when it
// is missing (idempotent; run inside Migrate's locked transaction), and, on
// PostgreSQL, the names of the triggers to create when missing.
func changeLogSchema(d sqldialect.Dialect, table string) (stmts []string, triggers map[string]string) {
	c := table + "_changes"
	if d == sqldialect.Postgres {
		fn := c + "_log"
		ins := func(v string) string {
			return "EXECUTE format('INSERT INTO %I." + c + " (user_id) VALUES (%L)', TG_TABLE_SCHEMA, " + v + ".user_id);"
		}
		stmts = []string{
			"CREATE TABLE IF NOT EXISTS " + c + " (" +
				"id BIGSERIAL PRIMARY KEY, " +
				"xid XID8 NOT NULL DEFAULT pg_current_xact_id(), " +
				"user_id TEXT NOT NULL, " +
				"changed_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp())",
			"CREATE INDEX IF NOT EXISTS " + c + "_xid ON " + c + " (xid)",
			"CREATE TABLE IF NOT EXISTS " + c + "_hz (taken_at TIMESTAMPTZ NOT NULL, horizon XID8 NOT NULL)",
			// The schema is the trigger's own, whatever the search_path of
			// the session that changes the variable.
			"CREATE OR REPLACE FUNCTION " + fn + "() RETURNS trigger LANGUAGE plpgsql AS $f$\n" +
				"BEGIN\n" +
				"  IF TG_OP <> 'INSERT' THEN " + ins("OLD") + " END IF;\n" +
				"  IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.user_id IS DISTINCT FROM OLD.user_id) THEN " + ins("NEW") + " END IF;\n" +
				"  PERFORM pg_notify('" + notifyChannel(table) + "', TG_TABLE_SCHEMA);\n" +
				"  RETURN NULL;\n" +
				"END\n$f$",
		}
		triggers = map[string]string{
			c + "_iud": "CREATE TRIGGER " + c + "_iud AFTER INSERT OR UPDATE OR DELETE ON " + table + " FOR EACH ROW EXECUTE FUNCTION " + fn + "()",
		}
		return stmts, triggers
	}
	ins := func(v string) string { return "INSERT INTO " + c + " (user_id) VALUES (" + v + ".user_id); " }
	return []string{
		"CREATE TABLE IF NOT EXISTS " + c + " (" +
			"id INTEGER PRIMARY KEY AUTOINCREMENT, " +
			"user_id TEXT NOT NULL, " +
			"changed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))",
		"CREATE TRIGGER IF NOT EXISTS " + c + "_ins AFTER INSERT ON " + table + " BEGIN " + ins("NEW") + "END",
		"CREATE TRIGGER IF NOT EXISTS " + c + "_del AFTER DELETE ON " + table + " BEGIN " + ins("OLD") + "END",
		"CREATE TRIGGER IF NOT EXISTS " + c + "_upd AFTER UPDATE ON " + table + " BEGIN " + ins("OLD") +
			"INSERT INTO " + c + " (user_id) SELECT NEW.user_id WHERE NEW.user_id <> OLD.user_id; END",
	}, nil
}

// migrateChanges creates the change log when it is missing; Migrate calls
// it in its transaction.
func (s *Store) migrateChanges(ctx context.Context, ex execQuerier) error {
	stmts, triggers := changeLogSchema(s.dialect, s.table)
	for _, q := range stmts {
		if _, err := ex.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("sqlstore: migrate: change log: %w", err)
		}
	}
	for name, create := range triggers {
		rows, err := ex.QueryContext(ctx, "SELECT 1 FROM pg_trigger WHERE tgrelid = to_regclass($1) AND tgname = $2", s.table, strings.ToLower(name))
		if err != nil {
			return fmt.Errorf("sqlstore: migrate: change log: %w", err)
		}
		exists := rows.Next()
		if err := rows.Close(); err != nil {
			return fmt.Errorf("sqlstore: migrate: change log: %w", err)
		}
		if !exists {
			if _, err := ex.ExecContext(ctx, create); err != nil {
				return fmt.Errorf("sqlstore: migrate: change log: %w", err)
			}
		}
	}
	return nil
}

// notifyChannel is the channel of the change log's notifications: lower
// case, since LISTEN folds unquoted names.
func notifyChannel(table string) string { return strings.ToLower(table) + "_changes" }

// changeQueries returns the poll query, the position query and the prune
// statements ($1/? is the retention in microseconds, or "-N seconds" on
// SQLite).
func changeQueries(d sqldialect.Dialect, table string) (changes, position string, prune []string) {
	c := table + "_changes"
	if d == sqldialect.Postgres {
		changes = "WITH s AS (SELECT pg_current_snapshot() AS snap, now() AS at) " +
			"SELECT s.snap::text, s.at, c.user_id FROM s LEFT JOIN " + c + " c " +
			"ON c.xid >= pg_snapshot_xmin($1::pg_snapshot) AND NOT pg_visible_in_snapshot(c.xid, $1::pg_snapshot)"
		position = "SELECT pg_current_snapshot()::text, now()"
		old := "now() - $1::bigint * interval '1 microsecond'"
		prune = []string{
			"INSERT INTO " + c + "_hz (taken_at, horizon) VALUES (now(), pg_snapshot_xmin(pg_current_snapshot()))",
			"DELETE FROM " + c + " WHERE xid < (SELECT max(horizon) FROM " + c + "_hz WHERE taken_at < " + old + ")",
			"DELETE FROM " + c + "_hz WHERE taken_at < (SELECT max(taken_at) FROM " + c + "_hz WHERE taken_at < " + old + ")",
		}
		return changes, position, prune
	}
	changes = "SELECT m.lo, c.id, c.user_id FROM (SELECT MIN(id) AS lo FROM " + c + ") m " +
		"LEFT JOIN " + c + " c ON c.id > ? ORDER BY c.id"
	position = "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = '" + c + "'), 0)"
	prune = []string{"DELETE FROM " + c + " WHERE changed_at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?) " +
		"AND id < (SELECT MAX(id) FROM " + c + ")"}
	return changes, position, prune
}

// initChanges prepares the change log's queries (New calls it after
// Migrate).
func (s *Store) initChanges(ctx context.Context) error {
	s.q.changes, s.q.position, s.q.prune = changeQueries(s.dialect, s.table)
	if s.dialect == sqldialect.Postgres {
		err := s.db.QueryRowContext(ctx, "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1)", s.table).Scan(&s.schema)
		if err != nil {
			return fmt.Errorf("sqlstore: find the schema of table %s: %w", s.table, err)
		}
		return nil
	}
	var err error
	if s.changesStmt, err = s.db.PrepareContext(ctx, s.q.changes); err != nil {
		return fmt.Errorf("sqlstore: prepare: %w", err)
	}
	return nil
}

// Changes implements variables.ChangeFeed over the change log (see above).
// One call is one query; about once every tenth of Config.ChangeRetention a
// call also prunes the log (a failed prune is retried by a later call and
// does not fail this one). A cursor older than half of ChangeRetention
// (PostgreSQL), or one past which rows were pruned (SQLite), is answered
// with variables.ErrChangesLost and a fresh cursor. Safe for concurrent use.
func (s *Store) Changes(ctx context.Context, cursor string) ([]string, string, error) {
	if cursor == "" {
		next, err := s.Position(ctx)
		return nil, next, err
	}
	var (
		users []string
		next  string
		err   error
	)
	if s.dialect == sqldialect.Postgres {
		users, next, err = s.changesPostgres(ctx, cursor)
	} else {
		users, next, err = s.changesSQLite(ctx, cursor)
	}
	if err == nil || errors.Is(err, variables.ErrChangesLost) {
		s.maybePrune(ctx)
	}
	return users, next, err
}

// Notification returns the PostgreSQL notification that the change log's
// trigger sends in the transaction of every change: its channel
// ("<table>_changes", lower case) and its payload, the schema of the table.
// Package apikey/sqlstore/pgnotify listens for it (pgnotify.Config's Channel
// and Payload) and implements variables.ChangeNotifier. On SQLite both are
// "".
func (s *Store) Notification() (channel, payload string) {
	if s.dialect != sqldialect.Postgres {
		return "", ""
	}
	return notifyChannel(s.table), s.schema
}

// Position returns the current position of the change log: the cursor from
// which Changes reports later changes.
func (s *Store) Position(ctx context.Context) (string, error) {
	row := s.db.QueryRowContext(ctx, s.q.position)
	if s.dialect == sqldialect.Postgres {
		var (
			snap string
			at   time.Time
		)
		if err := row.Scan(&snap, &at); err != nil {
			return "", fmt.Errorf("sqlstore: changes: %w", err)
		}
		return snap + "@" + strconv.FormatInt(at.UnixMicro(), 10), nil
	}
	var id int64
	if err := row.Scan(&id); err != nil {
		return "", fmt.Errorf("sqlstore: changes: %w", err)
	}
	return strconv.FormatInt(id, 10), nil
}

func (s *Store) changesPostgres(ctx context.Context, cursor string) ([]string, string, error) {
	snap, atText, ok := strings.Cut(cursor, "@")
	at, err := strconv.ParseInt(atText, 10, 64)
	if !ok || err != nil || strings.Count(snap, ":") != 2 {
		return nil, "", errors.New("sqlstore: changes: malformed cursor")
	}
	rows, err := s.db.QueryContext(ctx, s.q.changes, snap)
	if err != nil {
		return nil, "", fmt.Errorf("sqlstore: changes: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var (
		users []string
		cur   string
		now   time.Time
	)
	for rows.Next() {
		var u sql.NullString
		if err := rows.Scan(&cur, &now, &u); err != nil {
			return nil, "", fmt.Errorf("sqlstore: changes: %w", err)
		}
		if u.Valid {
			users = append(users, u.String)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("sqlstore: changes: %w", err)
	}
	if cur == "" {
		return nil, "", errors.New("sqlstore: changes: no snapshot returned")
	}
	next := cur + "@" + strconv.FormatInt(now.UnixMicro(), 10)
	if age := now.Sub(time.UnixMicro(at)); age > s.retention/2 {
		return users, next, fmt.Errorf("%w: cursor is %v old, the log keeps %v", variables.ErrChangesLost, age.Round(time.Second), s.retention)
	}
	return users, next, nil
}

func (s *Store) changesSQLite(ctx context.Context, cursor string) ([]string, string, error) {
	last, err := strconv.ParseInt(cursor, 10, 64)
	if err != nil || last < 0 {
		return nil, "", errors.New("sqlstore: changes: malformed cursor")
	}
	rows, err := s.changesStmt.QueryContext(ctx, last)
	if err != nil {
		return nil, "", fmt.Errorf("sqlstore: changes: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var (
		users []string
		lo    sql.NullInt64
		top   = last
	)
	for rows.Next() {
		var (
			id sql.NullInt64
			u  sql.NullString
		)
		if err := rows.Scan(&lo, &id, &u); err != nil {
			return nil, "", fmt.Errorf("sqlstore: changes: %w", err)
		}
		if id.Valid && u.Valid {
			top = max(top, id.Int64)
			users = append(users, u.String)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("sqlstore: changes: %w", err)
	}
	next := strconv.FormatInt(top, 10)
	if lo.Valid && lo.Int64 > last+1 {
		return users, next, fmt.Errorf("%w: rows after the cursor were pruned", variables.ErrChangesLost)
	}
	return users, next, nil
}

// maybePrune prunes the change log when the last prune by this Store is
// older than a tenth of the retention.
func (s *Store) maybePrune(ctx context.Context) {
	now := time.Now().UnixNano()
	last := s.lastPrune.Load()
	if now-last < int64(s.retention/10) || !s.lastPrune.CompareAndSwap(last, now) {
		return
	}
	_ = s.PruneChanges(ctx)
}

// PruneChanges deletes the change-log rows older than Config.ChangeRetention.
// Changes calls it regularly; a deployment where no process polls Changes
// may call it itself (the log otherwise grows by a row per variable
// written). Safe to run from several processes at once.
func (s *Store) PruneChanges(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: prune changes: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	var arg any = s.retention.Microseconds()
	if s.dialect == sqldialect.SQLite {
		arg = fmt.Sprintf("-%d seconds", int64(s.retention.Seconds()))
	}
	for i, q := range s.q.prune {
		args := []any{arg}
		if s.dialect == sqldialect.Postgres && i == 0 {
			args = nil
		}
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("sqlstore: prune changes: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: prune changes: %w", err)
	}
	return nil
}
