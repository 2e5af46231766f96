package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/internal/sqlchangelog"
	"github.com/keyflow-dev/keyflow/sqldialect"
)

// The change log: schema version 2 adds a table "<table>_changes" that
// triggers fill, in the transaction of the change, with the hash of every key
// inserted, deleted, or updated in anything but its usage counters
// (total_uses, last_used_at). Triggers rather than Go code, so that every
// writer is logged: this Store, another version of it, or an operator's SQL.
//
// PostgreSQL: each row also records its transaction ID (xid8). A feed's
// cursor is the snapshot of its last poll (pg_current_snapshot, as text),
// and a poll returns exactly the rows not visible in that snapshot. Rows
// of transactions that were still running at the last poll (and so may
// commit with a lower id than rows already read: bigserial ids commit out of
// order) are therefore read when they commit, and no row is read twice.
// Pruning deletes rows only of transactions that had finished before a
// snapshot taken more than ChangeRetention ago (recorded in
// "<table>_changes_hz"), so a cursor younger than that has seen every pruned
// row.
//
// SQLite: one writer at a time, so AUTOINCREMENT ids commit in order and the
// cursor is the last id read. Pruning always keeps the newest row, and
// changes are lost for a cursor when the oldest row left is past it.

// changeLogSchema is schema version 2: the change log, and the table of
// applied usage batches (AddUsageOnce).
func changeLogSchema(d sqldialect.Dialect, table string) []string {
	ts := "TEXT"
	if d == sqldialect.Postgres {
		ts = "TIMESTAMPTZ"
	}
	return append(changeLogTables(d, table),
		"CREATE TABLE "+table+"_usage_batches (id TEXT NOT NULL PRIMARY KEY, applied_at "+ts+" NOT NULL)",
		"CREATE INDEX "+table+"_usage_at ON "+table+"_usage_batches (applied_at)")
}

// notifySchema is schema version 3: on PostgreSQL, the change log's trigger
// function also sends a notification (see Store.Notification) in the
// transaction of the change, so that listeners poll the log at once. Its
// payload is the table's schema, not the key's hash: PostgreSQL folds
// identical notifications of one transaction into one, so a statement that
// changes 10 000 keys sends one, and the log says which keys changed. On
// SQLite there is nothing to do.
func notifySchema(d sqldialect.Dialect, table string) []string {
	if d != sqldialect.Postgres {
		return nil
	}
	return []string{changeLogFunction(table, true)}
}

// changeLogFunction is the PostgreSQL trigger function that writes the
// change log (and, from schema version 3, notifies).
func changeLogFunction(table string, notify bool) string {
	c := table + "_changes"
	insert := func(v string) string {
		return "EXECUTE format('INSERT INTO %I." + c + " (api_key_hash) VALUES (%L)', TG_TABLE_SCHEMA, " + v + ".api_key_hash);"
	}
	create, send := "CREATE FUNCTION ", ""
	if notify {
		create = "CREATE OR REPLACE FUNCTION "
		send = "  PERFORM pg_notify('" + sqlchangelog.NotifyChannel(table) + "', TG_TABLE_SCHEMA);\n"
	}
	return create + table + "_changes_log() RETURNS trigger LANGUAGE plpgsql AS $f$\n" +
		"BEGIN\n" +
		"  IF TG_OP <> 'INSERT' THEN " + insert("OLD") + " END IF;\n" +
		"  IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.api_key_hash IS DISTINCT FROM OLD.api_key_hash) THEN " + insert("NEW") + " END IF;\n" +
		send +
		"  RETURN NULL;\n" +
		"END\n$f$"
}

func changeLogTables(d sqldialect.Dialect, table string) []string {
	c := table + "_changes"
	if d == sqldialect.Postgres {
		fn := table + "_changes_log"
		return []string{
			"CREATE TABLE " + c + " (" +
				"id BIGSERIAL PRIMARY KEY, " +
				"xid XID8 NOT NULL DEFAULT pg_current_xact_id(), " +
				"api_key_hash TEXT NOT NULL, " +
				"changed_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp())",
			"CREATE INDEX " + c + "_xid ON " + c + " (xid)",
			"CREATE TABLE " + c + "_hz (taken_at TIMESTAMPTZ NOT NULL, horizon XID8 NOT NULL)",
			// The schema is the trigger's own, whatever the search_path of
			// the session that changes the key.
			changeLogFunction(table, false),
			"CREATE TRIGGER " + c + "_iud AFTER INSERT OR DELETE ON " + table + " FOR EACH ROW EXECUTE FUNCTION " + fn + "()",
			"CREATE TRIGGER " + c + "_upd AFTER UPDATE OF user_id, name, api_key_hash, is_active, expires_at, scopes ON " + table +
				" FOR EACH ROW EXECUTE FUNCTION " + fn + "()",
		}
	}
	ins := func(v string) string { return "INSERT INTO " + c + " (api_key_hash) VALUES (" + v + ".api_key_hash); " }
	return []string{
		"CREATE TABLE " + c + " (" +
			"id INTEGER PRIMARY KEY AUTOINCREMENT, " +
			"api_key_hash TEXT NOT NULL, " +
			"changed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))",
		"CREATE TRIGGER " + c + "_ins AFTER INSERT ON " + table + " BEGIN " + ins("NEW") + "END",
		"CREATE TRIGGER " + c + "_del AFTER DELETE ON " + table + " BEGIN " + ins("OLD") + "END",
		"CREATE TRIGGER " + c + "_upd AFTER UPDATE OF user_id, name, api_key_hash, is_active, expires_at, scopes ON " + table +
			" BEGIN " + ins("OLD") +
			"INSERT INTO " + c + " (api_key_hash) SELECT NEW.api_key_hash WHERE NEW.api_key_hash <> OLD.api_key_hash; END",
	}
}

// Changes implements apikey.ChangeFeed over the change log that triggers
// write in the transaction of every change (see the package comment). One
// call is one query; about once every tenth of Config.ChangeRetention, a
// call also prunes the log (a failed prune is retried by a later call and
// does not fail this one). A cursor older than half of ChangeRetention
// (PostgreSQL), or one past which rows were pruned (SQLite), is answered
// with apikey.ErrChangesLost and a fresh cursor. Safe for concurrent use.
func (s *Store) Changes(ctx context.Context, cursor string) ([]apikey.Hash, string, error) {
	return s.log.Changes(ctx, cursor)
}

// Notification returns the PostgreSQL notification that the change log's
// trigger sends in the transaction of every change (schema version 3): its
// channel ("<table>_changes", lower case) and its payload, the name of the
// schema that holds the key table, so that a listener can tell the stores of
// several schemas of one database apart. A transaction sends it once
// however many keys it changes. Package apikey/sqlstore/pgnotify listens
// for it and implements apikey.ChangeNotifier. On SQLite, which has no
// notifications, both are "".
func (s *Store) Notification() (channel, payload string) { return s.log.Notification() }

// Position returns the current position of the change log: the cursor from
// which Changes reports later changes.
func (s *Store) Position(ctx context.Context) (string, error) { return s.log.Position(ctx) }

// PruneChanges deletes the change-log rows older than Config.ChangeRetention
// (see the package comment for the exact rule), and the IDs of usage batches
// (AddUsageOnce) older than a day. Changes calls it regularly;
// a deployment where no process polls Changes may call it itself (the log
// otherwise grows by one row per key created, deleted or changed). Safe to
// run from several processes at once.
func (s *Store) PruneChanges(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: prune changes: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := s.log.Prune(ctx, tx); err != nil {
		return err
	}
	old := s.timeArg(time.Now().Add(-usageBatchRetention))
	if _, err := tx.ExecContext(ctx, s.q.pruneBatches, old); err != nil {
		return fmt.Errorf("sqlstore: prune changes: %w", err)
	}
	// The rate-limit counts of deleted keys.
	if _, err := tx.ExecContext(ctx, s.lq.pruneRate); err != nil {
		return fmt.Errorf("sqlstore: prune changes: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: prune changes: %w", err)
	}
	return nil
}

// usageBatchRetention is how long the IDs of applied usage batches are kept:
// far longer than a Manager keeps a batch whose outcome it does not know.
const usageBatchRetention = 24 * time.Hour
