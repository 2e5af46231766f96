package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/keyflow-dev/keyflow/internal/sqlchangelog"
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
				"  PERFORM pg_notify('" + sqlchangelog.NotifyChannel(table) + "', TG_TABLE_SCHEMA);\n" +
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

// initChanges opens the change log (New calls it after Migrate).
func (s *Store) initChanges(ctx context.Context) error {
	var err error
	s.log, err = sqlchangelog.New(ctx, s.db, sqlchangelog.Config[string]{
		Dialect: s.dialect, Table: s.table, Column: "user_id", Retention: s.retention,
		Lost: variables.ErrChangesLost, Parse: func(u string) (string, error) { return u, nil }, Prune: s.PruneChanges,
	})
	return err
}

// Changes implements variables.ChangeFeed over the change log (see above).
// One call is one query; about once every tenth of Config.ChangeRetention a
// call also prunes the log (a failed prune is retried by a later call and
// does not fail this one). A cursor older than half of ChangeRetention
// (PostgreSQL), or one past which rows were pruned (SQLite), is answered
// with variables.ErrChangesLost and a fresh cursor. Safe for concurrent use.
func (s *Store) Changes(ctx context.Context, cursor string) ([]string, string, error) {
	return s.log.Changes(ctx, cursor)
}

// Notification returns the PostgreSQL notification that the change log's
// trigger sends in the transaction of every change: its channel
// ("<table>_changes", lower case) and its payload, the schema of the table.
// Package apikey/sqlstore/pgnotify listens for it (pgnotify.Config's Channel
// and Payload) and implements variables.ChangeNotifier. On SQLite both are
// "".
func (s *Store) Notification() (channel, payload string) { return s.log.Notification() }

// Position returns the current position of the change log: the cursor from
// which Changes reports later changes.
func (s *Store) Position(ctx context.Context) (string, error) { return s.log.Position(ctx) }

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
	if err := s.log.Prune(ctx, tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: prune changes: %w", err)
	}
	return nil
}
