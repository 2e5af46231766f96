// Package sqlchangelog reads and prunes the change logs of keyflow's SQL
// stores: a table "<table>_changes" that triggers fill, in the transaction of
// every change, with one column naming what changed (a key's hash, a user
// ID). The stores create the table and its triggers themselves; this package
// holds what they share: the poll, the cursor, the position and the pruning.
//
// PostgreSQL: each row records its transaction ID (xid8). A cursor is the
// snapshot of the last poll (pg_current_snapshot, as text, "@" the poll's
// time in Unix microseconds), and a poll returns exactly the rows not visible
// in that snapshot, so rows of transactions that commit out of order are read
// when they commit, and none twice. Pruning deletes rows only of
// transactions that had finished before a snapshot taken more than the
// retention ago (recorded in "<table>_changes_hz"), so a cursor younger than
// that has seen every pruned row.
//
// SQLite: one writer at a time, so AUTOINCREMENT ids commit in order and the
// cursor is the last id read. Pruning always keeps the newest row, and
// changes are lost for a cursor when the oldest row left is past it.
package sqlchangelog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/keyflow-dev/keyflow/sqldialect"
)

// Config configures New.
type Config[T any] struct {
	Dialect sqldialect.Dialect
	// Table is the changed table; the log is Table+"_changes".
	Table string
	// Column is the log's column naming what changed.
	Column string
	// Retention is how long rows are kept (at least a second).
	Retention time.Duration
	// Lost is the error that Changes wraps when a cursor is too old.
	Lost error
	// Parse turns a Column value into an item.
	Parse func(string) (T, error)
	// Prune prunes the log (a store's PruneChanges, which calls Log.Prune
	// in its transaction); Changes calls it about once every tenth of
	// Retention and ignores its error.
	Prune func(context.Context) error
}

// Log is the read side of one change log. Make one with New; it is safe
// for concurrent use.
type Log[T any] struct {
	cfg               Config[T]
	db                *sql.DB
	changes, position string
	prune             []string
	stmt              *sql.Stmt // the poll, prepared on SQLite only
	schema            string    // PostgreSQL: the schema of the table
	lastPrune         atomic.Int64
}

// New returns the Log of cfg.Table on db, whose change log must exist: on
// SQLite it prepares the poll (release it with Close), on PostgreSQL it
// looks up the schema of the table (for Notification).
func New[T any](ctx context.Context, db *sql.DB, cfg Config[T]) (*Log[T], error) {
	l := &Log[T]{cfg: cfg, db: db}
	l.changes, l.position, l.prune = queries(cfg.Dialect, cfg.Table, cfg.Column)
	if cfg.Dialect == sqldialect.Postgres {
		err := db.QueryRowContext(ctx, "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1)", cfg.Table).Scan(&l.schema)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: find the schema of table %s: %w", cfg.Table, err)
		}
		return l, nil
	}
	var err error
	if l.stmt, err = db.PrepareContext(ctx, l.changes); err != nil {
		return nil, fmt.Errorf("sqlstore: prepare: %w", err)
	}
	return l, nil
}

// Close releases the prepared poll, if any.
func (l *Log[T]) Close() error {
	if l.stmt != nil {
		return l.stmt.Close()
	}
	return nil
}

// NotifyChannel is the channel of a change log's PostgreSQL notifications:
// lower case, since LISTEN folds unquoted names.
func NotifyChannel(table string) string { return strings.ToLower(table) + "_changes" }

// Notification returns the channel and payload (the schema of the table) of
// the notification the log's trigger sends on PostgreSQL; "" on SQLite.
func (l *Log[T]) Notification() (channel, payload string) {
	if l.cfg.Dialect != sqldialect.Postgres {
		return "", ""
	}
	return NotifyChannel(l.cfg.Table), l.schema
}

// queries returns the poll query, the position query and the prune
// statements ($1/? is the retention in microseconds, or "-N seconds" on
// SQLite).
func queries(d sqldialect.Dialect, table, column string) (changes, position string, prune []string) {
	c := table + "_changes"
	if d == sqldialect.Postgres {
		changes = "WITH s AS (SELECT pg_current_snapshot() AS snap, now() AS at) " +
			"SELECT s.snap::text, s.at, c." + column + " FROM s LEFT JOIN " + c + " c " +
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
	changes = "SELECT m.lo, c.id, c." + column + " FROM (SELECT MIN(id) AS lo FROM " + c + ") m " +
		"LEFT JOIN " + c + " c ON c.id > ? ORDER BY c.id"
	position = "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = '" + c + "'), 0)"
	prune = []string{"DELETE FROM " + c + " WHERE changed_at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?) " +
		"AND id < (SELECT MAX(id) FROM " + c + ")"}
	return changes, position, prune
}

// Changes returns the items changed after cursor and the next cursor; ""
// asks for the current position and no items. A cursor older than half of
// the retention (PostgreSQL), or one past which rows were pruned (SQLite),
// is answered with an error wrapping Config.Lost and a fresh cursor. About
// once every tenth of the retention, a call (with a cursor) also calls
// Config.Prune.
func (l *Log[T]) Changes(ctx context.Context, cursor string) ([]T, string, error) {
	if cursor == "" {
		next, err := l.Position(ctx)
		return nil, next, err
	}
	var (
		items []T
		next  string
		err   error
	)
	if l.cfg.Dialect == sqldialect.Postgres {
		items, next, err = l.changesPostgres(ctx, cursor)
	} else {
		items, next, err = l.changesSQLite(ctx, cursor)
	}
	if err == nil || errors.Is(err, l.cfg.Lost) {
		l.maybePrune(ctx)
	}
	return items, next, err
}

// Position returns the current position of the log: the cursor from which
// Changes reports later changes.
func (l *Log[T]) Position(ctx context.Context) (string, error) {
	row := l.db.QueryRowContext(ctx, l.position)
	if l.cfg.Dialect == sqldialect.Postgres {
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

func (l *Log[T]) changesPostgres(ctx context.Context, cursor string) ([]T, string, error) {
	snap, atText, ok := strings.Cut(cursor, "@")
	at, err := strconv.ParseInt(atText, 10, 64)
	if !ok || err != nil || strings.Count(snap, ":") != 2 {
		return nil, "", errors.New("sqlstore: changes: malformed cursor")
	}
	rows, err := l.db.QueryContext(ctx, l.changes, snap)
	if err != nil {
		return nil, "", fmt.Errorf("sqlstore: changes: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var (
		items []T
		cur   string
		now   time.Time
	)
	for rows.Next() {
		var v sql.NullString
		if err := rows.Scan(&cur, &now, &v); err != nil {
			return nil, "", fmt.Errorf("sqlstore: changes: %w", err)
		}
		if v.Valid {
			if items, err = l.appendItem(items, v.String); err != nil {
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
	if age := now.Sub(time.UnixMicro(at)); age > l.cfg.Retention/2 {
		return items, next, fmt.Errorf("%w: cursor is %v old, the log keeps %v", l.cfg.Lost, age.Round(time.Second), l.cfg.Retention)
	}
	return items, next, nil
}

func (l *Log[T]) changesSQLite(ctx context.Context, cursor string) ([]T, string, error) {
	last, err := strconv.ParseInt(cursor, 10, 64)
	if err != nil || last < 0 {
		return nil, "", errors.New("sqlstore: changes: malformed cursor")
	}
	rows, err := l.stmt.QueryContext(ctx, last)
	if err != nil {
		return nil, "", fmt.Errorf("sqlstore: changes: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var (
		items []T
		lo    sql.NullInt64
		top   = last
	)
	for rows.Next() {
		var (
			id sql.NullInt64
			v  sql.NullString
		)
		if err := rows.Scan(&lo, &id, &v); err != nil {
			return nil, "", fmt.Errorf("sqlstore: changes: %w", err)
		}
		if id.Valid && v.Valid {
			top = max(top, id.Int64)
			if items, err = l.appendItem(items, v.String); err != nil {
				return nil, "", err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("sqlstore: changes: %w", err)
	}
	next := strconv.FormatInt(top, 10)
	if lo.Valid && lo.Int64 > last+1 {
		return items, next, fmt.Errorf("%w: rows after the cursor were pruned", l.cfg.Lost)
	}
	return items, next, nil
}

func (l *Log[T]) appendItem(items []T, s string) ([]T, error) {
	v, err := l.cfg.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: changes: %w", err)
	}
	return append(items, v), nil
}

// maybePrune calls Config.Prune when the last prune by this Log is older
// than a tenth of the retention.
func (l *Log[T]) maybePrune(ctx context.Context) {
	now := time.Now().UnixNano()
	last := l.lastPrune.Load()
	if now-last < int64(l.cfg.Retention/10) || !l.lastPrune.CompareAndSwap(last, now) {
		return
	}
	_ = l.cfg.Prune(ctx)
}

// Prune deletes, in tx, the rows older than the retention (see the package
// comment for the exact rule). Safe to run from several processes at once.
func (l *Log[T]) Prune(ctx context.Context, tx *sql.Tx) error {
	var arg any = l.cfg.Retention.Microseconds()
	if l.cfg.Dialect == sqldialect.SQLite {
		arg = fmt.Sprintf("-%d seconds", int64(l.cfg.Retention.Seconds()))
	}
	for i, q := range l.prune {
		args := []any{arg}
		if l.cfg.Dialect == sqldialect.Postgres && i == 0 {
			args = nil
		}
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("sqlstore: prune changes: %w", err)
		}
	}
	return nil
}
