package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/keyflow-dev/keyflow/apikey"
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

// notifyChannel is the channel of the change log's notifications: lower
// case, since LISTEN folds unquoted names (at most 56 characters, under
// PostgreSQL's 63).
func notifyChannel(table string) string { return strings.ToLower(table) + "_changes" }

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
		send = "  PERFORM pg_notify('" + notifyChannel(table) + "', TG_TABLE_SCHEMA);\n"
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

// changeQueries returns the poll query, the position query and the prune
// statements (run in one transaction; $1/? is the retention in
// microseconds, or in seconds on SQLite).
func changeQueries(d sqldialect.Dialect, table string) (changes, position, prune []string) {
	c := table + "_changes"
	if d == sqldialect.Postgres {
		changes = []string{"WITH s AS (SELECT pg_current_snapshot() AS snap, now() AS at) " +
			"SELECT s.snap::text, s.at, c.api_key_hash FROM s LEFT JOIN " + c + " c " +
			"ON c.xid >= pg_snapshot_xmin($1::pg_snapshot) AND NOT pg_visible_in_snapshot(c.xid, $1::pg_snapshot)"}
		position = []string{"SELECT pg_current_snapshot()::text, now()"}
		old := "now() - $1::bigint * interval '1 microsecond'"
		prune = []string{
			"INSERT INTO " + c + "_hz (taken_at, horizon) VALUES (now(), pg_snapshot_xmin(pg_current_snapshot()))",
			"DELETE FROM " + c + " WHERE xid < (SELECT max(horizon) FROM " + c + "_hz WHERE taken_at < " + old + ")",
			"DELETE FROM " + c + "_hz WHERE taken_at < (SELECT max(taken_at) FROM " + c + "_hz WHERE taken_at < " + old + ")",
		}
		return changes, position, prune
	}
	changes = []string{"SELECT m.lo, c.id, c.api_key_hash FROM (SELECT MIN(id) AS lo FROM " + c + ") m " +
		"LEFT JOIN " + c + " c ON c.id > ? ORDER BY c.id"}
	position = []string{"SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = '" + c + "'), 0)"}
	prune = []string{"DELETE FROM " + c + " WHERE changed_at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?) " +
		"AND id < (SELECT MAX(id) FROM " + c + ")"}
	return changes, position, prune
}

// Changes implements apikey.ChangeFeed over the change log that triggers
// write in the transaction of every change (see the package comment). One
// call is one query; about once every tenth of Config.ChangeRetention, a
// call also prunes the log (a failed prune is retried by a later call and
// does not fail this one). A cursor older than half of ChangeRetention
// (PostgreSQL), or one past which rows were pruned (SQLite), is answered
// with apikey.ErrChangesLost and a fresh cursor. Safe for concurrent use.
func (s *Store) Changes(ctx context.Context, cursor string) ([]apikey.Hash, string, error) {
	if cursor == "" {
		next, err := s.Position(ctx)
		return nil, next, err
	}
	var (
		hashes []apikey.Hash
		next   string
		err    error
	)
	if s.dialect == sqldialect.Postgres {
		hashes, next, err = s.changesPostgres(ctx, cursor)
	} else {
		hashes, next, err = s.changesSQLite(ctx, cursor)
	}
	if err == nil || errors.Is(err, apikey.ErrChangesLost) {
		s.maybePrune(ctx)
	}
	return hashes, next, err
}

// Notification returns the PostgreSQL notification that the change log's
// trigger sends in the transaction of every change (schema version 3): its
// channel ("<table>_changes", lower case) and its payload, the name of the
// schema that holds the key table, so that a listener can tell the stores of
// several schemas of one database apart. A transaction sends it once
// however many keys it changes. Package apikey/sqlstore/pgnotify listens
// for it and implements apikey.ChangeNotifier. On SQLite, which has no
// notifications, both are "".
func (s *Store) Notification() (channel, payload string) {
	if s.dialect != sqldialect.Postgres {
		return "", ""
	}
	return notifyChannel(s.table), s.schema
}

// Position returns the current position of the change log: the cursor from
// which Changes reports later changes.
func (s *Store) Position(ctx context.Context) (string, error) {
	row := s.db.QueryRowContext(ctx, s.q.position[0])
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

func (s *Store) changesPostgres(ctx context.Context, cursor string) ([]apikey.Hash, string, error) {
	snap, atText, ok := strings.Cut(cursor, "@")
	at, err := strconv.ParseInt(atText, 10, 64)
	if !ok || err != nil || strings.Count(snap, ":") != 2 {
		return nil, "", errors.New("sqlstore: changes: malformed cursor")
	}
	rows, err := s.db.QueryContext(ctx, s.q.changes[0], snap)
	if err != nil {
		return nil, "", fmt.Errorf("sqlstore: changes: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var (
		hashes []apikey.Hash
		cur    string
		now    time.Time
	)
	for rows.Next() {
		var h sql.NullString
		if err := rows.Scan(&cur, &now, &h); err != nil {
			return nil, "", fmt.Errorf("sqlstore: changes: %w", err)
		}
		if h.Valid {
			if hashes, err = appendHash(hashes, h.String); err != nil {
				return nil, "", err
			}
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
		return hashes, next, fmt.Errorf("%w: cursor is %v old, the log keeps %v", apikey.ErrChangesLost, age.Round(time.Second), s.retention)
	}
	return hashes, next, nil
}

func (s *Store) changesSQLite(ctx context.Context, cursor string) ([]apikey.Hash, string, error) {
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
		hashes []apikey.Hash
		lo     sql.NullInt64
		top    = last
	)
	for rows.Next() {
		var (
			id sql.NullInt64
			h  sql.NullString
		)
		if err := rows.Scan(&lo, &id, &h); err != nil {
			return nil, "", fmt.Errorf("sqlstore: changes: %w", err)
		}
		if id.Valid && h.Valid {
			top = max(top, id.Int64)
			if hashes, err = appendHash(hashes, h.String); err != nil {
				return nil, "", err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("sqlstore: changes: %w", err)
	}
	next := strconv.FormatInt(top, 10)
	if lo.Valid && lo.Int64 > last+1 {
		return hashes, next, fmt.Errorf("%w: rows after the cursor were pruned", apikey.ErrChangesLost)
	}
	return hashes, next, nil
}

func appendHash(hashes []apikey.Hash, hex string) ([]apikey.Hash, error) {
	h, err := apikey.ParseHash(hex)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: changes: %w", err)
	}
	return append(hashes, h), nil
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
