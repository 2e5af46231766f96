// Package sqlstore is an audit.Store on database/sql for SQLite and
// PostgreSQL. It imports no driver: the host opens the *sql.DB with the
// driver it chooses and names the dialect in Config.
//
// New creates or migrates the schema: the event table (default
// "audit_event"; one row per event, keyed by its Seq, with indexes on time,
// actor and action), "<table>_head", one row holding the chain's last link
// and its anchor (the last event pruned), and "<table>_migrations".
//
// Appends are serialised by a lock on the head row taken inside the
// appending transaction (SELECT … FOR UPDATE on PostgreSQL; on SQLite a
// write to the row, which takes the database's write lock), so that several
// processes appending to one database never fork the chain: each reads the
// last link, seals its event after it, inserts it and moves the head, before
// the next one can read the head.
//
// AppendTx appends in the caller's transaction, so that a change and its
// audit record, when they live in the same database, commit together or not
// at all.
//
// Times are stored with microsecond precision: TIMESTAMPTZ on PostgreSQL,
// fixed-width UTC text ("2006-01-02T15:04:05.000000Z") on SQLite.
package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/keyflow-dev/keyflow/audit"
	"github.com/keyflow-dev/keyflow/internal/sqlutil"
	"github.com/keyflow-dev/keyflow/sqldialect"
)

// Config configures a Store.
type Config struct {
	// Dialect of the database; required.
	Dialect sqldialect.Dialect
	// Table is the name of the event table: letters, digits and
	// underscores, starting with a letter or underscore, at most 48
	// characters. "": "audit_event".
	Table string
}

// Store is an audit.Store on a *sql.DB, made by New. It is safe for
// concurrent use, by several processes too.
type Store struct {
	db      *sql.DB
	dialect sqldialect.Dialect
	table   string
	q       queries
}

var _ audit.Store = (*Store)(nil)

type queries struct {
	lockHead, readHead, insert, moveHead, walk, oneHash, minSeqSince, prune, moveAnchor string
}

var tableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,47}$`)

const columns = "seq, id, time, action, actor_user_id, actor_username, actor_key_id, actor_session, " +
	"target_type, target_id, target_name, target_owner_id, client_ip, user_agent, outcome, reason, details, prev_hash, hash"

// walkBatch is how many events Walk reads per query: no cursor stays open
// while its callback runs.
const walkBatch = 500

// New returns a Store on db, creating or migrating its schema first. It does
// not close db.
func New(ctx context.Context, db *sql.DB, cfg Config) (*Store, error) {
	if db == nil {
		return nil, errors.New("audit/sqlstore: db is nil")
	}
	if !cfg.Dialect.Valid() {
		return nil, fmt.Errorf("audit/sqlstore: Config.Dialect must be sqldialect.SQLite or sqldialect.Postgres, not %q", cfg.Dialect)
	}
	t := cfg.Table
	if t == "" {
		t = "audit_event"
	}
	if !tableName.MatchString(t) {
		return nil, fmt.Errorf("audit/sqlstore: table name %q is not a plain SQL identifier", t)
	}
	s := &Store{db: db, dialect: cfg.Dialect, table: t}
	head := t + "_head"
	s.q = queries{
		readHead:    "SELECT last_seq, last_hash, anchor_seq, anchor_hash FROM " + head + " WHERE id = 1",
		insert:      "INSERT INTO " + t + " (" + columns + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		moveHead:    "UPDATE " + head + " SET last_seq = ?, last_hash = ? WHERE id = 1",
		walk:        "SELECT " + columns + " FROM " + t + " WHERE seq > ? ORDER BY seq LIMIT " + fmt.Sprint(walkBatch),
		oneHash:     "SELECT hash FROM " + t + " WHERE seq = ?",
		minSeqSince: "SELECT MIN(seq) FROM " + t + " WHERE time >= ?",
		prune:       "DELETE FROM " + t + " WHERE seq <= ?",
		moveAnchor:  "UPDATE " + head + " SET anchor_seq = ?, anchor_hash = ? WHERE id = 1",
	}
	if s.dialect == sqldialect.Postgres {
		s.q.lockHead = "SELECT last_seq, last_hash, anchor_seq, anchor_hash FROM " + head + " WHERE id = 1 FOR UPDATE"
		for _, q := range []*string{&s.q.insert, &s.q.moveHead, &s.q.walk, &s.q.oneHash, &s.q.minSeqSince, &s.q.prune, &s.q.moveAnchor} {
			*q = sqlutil.Dollar(*q)
		}
	} else {
		// A write takes SQLite's write lock, held to the end of the
		// transaction; reading first would only take a shared lock.
		s.q.lockHead = "UPDATE " + head + " SET last_seq = last_seq WHERE id = 1"
	}
	if err := s.migrate(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// migrations[i] brings the schema from version i to i+1.
func (s *Store) migrations() [][]string {
	t, ts, bigint := s.table, "TEXT", "INTEGER"
	if s.dialect == sqldialect.Postgres {
		ts, bigint = "TIMESTAMPTZ", "BIGINT"
	}
	text := func(name string) string { return name + " TEXT NOT NULL DEFAULT ''" }
	return [][]string{{
		"CREATE TABLE " + t + " (" +
			"seq " + bigint + " NOT NULL PRIMARY KEY, " +
			"id TEXT NOT NULL UNIQUE, " +
			"time " + ts + " NOT NULL, " +
			"action TEXT NOT NULL, " +
			strings.Join([]string{text("actor_user_id"), text("actor_username"), text("actor_key_id"), text("actor_session"),
				text("target_type"), text("target_id"), text("target_name"), text("target_owner_id"),
				text("client_ip"), text("user_agent"), text("outcome"), text("reason")}, ", ") + ", " +
			"details TEXT, " +
			"prev_hash TEXT NOT NULL, " +
			"hash TEXT NOT NULL)",
		"CREATE INDEX " + t + "_time_idx ON " + t + " (time)",
		"CREATE INDEX " + t + "_actor_idx ON " + t + " (actor_user_id, seq)",
		"CREATE INDEX " + t + "_action_idx ON " + t + " (action, seq)",
		"CREATE TABLE " + t + "_head (id INTEGER NOT NULL PRIMARY KEY, last_seq " + bigint + " NOT NULL, last_hash TEXT NOT NULL, " +
			"anchor_seq " + bigint + " NOT NULL, anchor_hash TEXT NOT NULL)",
		"INSERT INTO " + t + "_head (id, last_seq, last_hash, anchor_seq, anchor_hash) VALUES (1, 0, '', 0, '')",
	}}
}

func (s *Store) migrate(ctx context.Context) error {
	return sqlutil.Migrate(ctx, s.db, sqlutil.Migration{
		Dialect: s.dialect, Package: "audit/sqlstore", Lock: "keyflow/audit/sqlstore:" + s.table, Table: s.table,
		Steps: s.migrations(),
	})
}

// Append implements audit.Store: one transaction that locks the head row,
// seals e after the last event, inserts it and moves the head.
func (s *Store) Append(ctx context.Context, e audit.Event) (audit.Event, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return audit.Event{}, fmt.Errorf("audit/sqlstore: append: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	out, err := s.AppendTx(ctx, tx, e)
	if err != nil {
		return audit.Event{}, err
	}
	if err := tx.Commit(); err != nil {
		return audit.Event{}, fmt.Errorf("audit/sqlstore: append: %w", err)
	}
	return out, nil
}

// AppendTx appends e in tx, a transaction on the Store's database that the
// caller commits (or rolls back) with the change e records. e must come from
// audit.Log.Prepare. The head row stays locked until tx ends, so keep the
// transaction short, and append last in it, after the change.
func (s *Store) AppendTx(ctx context.Context, tx *sql.Tx, e audit.Event) (audit.Event, error) {
	if tx == nil {
		return audit.Event{}, errors.New("audit/sqlstore: append: tx is nil")
	}
	head, err := s.lockHead(ctx, tx)
	if err != nil {
		return audit.Event{}, err
	}
	e = e.Clone()
	last := audit.Seal(&e, head.Last)
	details, err := encodeDetails(e.Details)
	if err != nil {
		return audit.Event{}, err
	}
	if _, err := tx.ExecContext(ctx, s.q.insert, e.Seq, e.ID, s.timeArg(e.Time), string(e.Action),
		e.Actor.UserID, e.Actor.Username, e.Actor.KeyID, e.Actor.Session,
		e.Target.Type, e.Target.ID, e.Target.Name, e.Target.OwnerID,
		e.ClientIP, e.UserAgent, string(e.Outcome), e.Reason, details, e.PrevHash, e.Hash); err != nil {
		return audit.Event{}, fmt.Errorf("audit/sqlstore: append: %w", err)
	}
	if _, err := tx.ExecContext(ctx, s.q.moveHead, last.Seq, last.Hash); err != nil {
		return audit.Event{}, fmt.Errorf("audit/sqlstore: append: %w", err)
	}
	return e.Clone(), nil
}

// lockHead takes the head row's lock in tx and reads it.
func (s *Store) lockHead(ctx context.Context, tx *sql.Tx) (audit.Head, error) {
	if s.dialect == sqldialect.SQLite {
		if _, err := tx.ExecContext(ctx, s.q.lockHead); err != nil {
			return audit.Head{}, fmt.Errorf("audit/sqlstore: lock head: %w", err)
		}
		return s.readHead(tx.QueryRowContext(ctx, s.q.readHead))
	}
	return s.readHead(tx.QueryRowContext(ctx, s.q.lockHead))
}

func (s *Store) readHead(row *sql.Row) (audit.Head, error) {
	var h audit.Head
	if err := row.Scan(&h.Last.Seq, &h.Last.Hash, &h.Anchor.Seq, &h.Anchor.Hash); err != nil {
		return audit.Head{}, fmt.Errorf("audit/sqlstore: read head: %w", err)
	}
	return h, nil
}

// Head implements audit.Store.
func (s *Store) Head(ctx context.Context) (audit.Head, error) {
	return s.readHead(s.db.QueryRowContext(ctx, s.q.readHead))
}

// Walk implements audit.Store. It reads walkBatch events per query, so no
// database cursor is open while fn runs.
func (s *Store) Walk(ctx context.Context, after int64, fn func(audit.Event) error) error {
	for {
		evs, err := s.query(ctx, s.q.walk, after)
		if err != nil {
			return fmt.Errorf("audit/sqlstore: walk: %w", err)
		}
		for _, e := range evs {
			if err := fn(e); err != nil {
				return err
			}
		}
		if len(evs) < walkBatch {
			return nil
		}
		after = evs[len(evs)-1].Seq
	}
}

// List implements audit.Store.
func (s *Store) List(ctx context.Context, f audit.Filter) ([]audit.Event, error) {
	var (
		where []string
		args  []any
	)
	if len(f.Actions) > 0 {
		where = append(where, "action IN ("+strings.TrimSuffix(strings.Repeat("?, ", len(f.Actions)), ", ")+")")
		for _, a := range f.Actions {
			args = append(args, string(a))
		}
	}
	if f.ActorID != "" {
		where, args = append(where, "actor_user_id = ?"), append(args, f.ActorID)
	}
	if !f.Since.IsZero() {
		where, args = append(where, "time >= ?"), append(args, s.timeArg(f.Since))
	}
	if !f.Until.IsZero() {
		where, args = append(where, "time < ?"), append(args, s.timeArg(f.Until))
	}
	if f.Before > 0 {
		where, args = append(where, "seq < ?"), append(args, f.Before)
	}
	q := "SELECT " + columns + " FROM " + s.table
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY seq DESC LIMIT ?"
	args = append(args, max(f.Limit, 1))
	if s.dialect == sqldialect.Postgres {
		q = sqlutil.Dollar(q)
	}
	evs, err := s.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("audit/sqlstore: list: %w", err)
	}
	return evs, nil
}

// Prune implements audit.Store, in one transaction holding the head's lock.
func (s *Store) Prune(ctx context.Context, before time.Time) (int64, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("audit/sqlstore: prune: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	head, err := s.lockHead(ctx, tx)
	if err != nil {
		return 0, err
	}
	var first sql.NullInt64
	if err := tx.QueryRowContext(ctx, s.q.minSeqSince, s.timeArg(before)).Scan(&first); err != nil {
		return 0, fmt.Errorf("audit/sqlstore: prune: %w", err)
	}
	cut := head.Last.Seq
	if first.Valid {
		cut = first.Int64 - 1
	}
	if cut <= head.Anchor.Seq {
		return 0, nil
	}
	var hash string
	if err := tx.QueryRowContext(ctx, s.q.oneHash, cut).Scan(&hash); err != nil {
		return 0, fmt.Errorf("audit/sqlstore: prune: read the new anchor (event %d): %w", cut, err)
	}
	res, err := tx.ExecContext(ctx, s.q.prune, cut)
	if err != nil {
		return 0, fmt.Errorf("audit/sqlstore: prune: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("audit/sqlstore: prune: %w", err)
	}
	if _, err := tx.ExecContext(ctx, s.q.moveAnchor, cut, hash); err != nil {
		return 0, fmt.Errorf("audit/sqlstore: prune: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("audit/sqlstore: prune: %w", err)
	}
	return n, nil
}

func (s *Store) query(ctx context.Context, q string, args ...any) ([]audit.Event, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	out := []audit.Event{}
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func scanEvent(rows *sql.Rows) (audit.Event, error) {
	var (
		e               audit.Event
		t               sqlutil.NullTime
		action, outcome string
		details         sql.NullString
	)
	err := rows.Scan(&e.Seq, &e.ID, &t, &action, &e.Actor.UserID, &e.Actor.Username, &e.Actor.KeyID, &e.Actor.Session,
		&e.Target.Type, &e.Target.ID, &e.Target.Name, &e.Target.OwnerID, &e.ClientIP, &e.UserAgent, &outcome, &e.Reason,
		&details, &e.PrevHash, &e.Hash)
	if err != nil {
		return audit.Event{}, err
	}
	e.Time, e.Action, e.Outcome = t.T, audit.Action(action), audit.Outcome(outcome)
	if details.Valid && details.String != "" {
		// A row whose details were mangled still verifies as broken rather
		// than failing the walk: keep what decodes.
		if err := json.Unmarshal([]byte(details.String), &e.Details); err != nil {
			e.Details = map[string]string{"": details.String}
		}
	}
	return e, nil
}

func encodeDetails(d map[string]string) (any, error) {
	if len(d) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("audit/sqlstore: encode details: %w", err)
	}
	return string(b), nil
}

// sqliteTime is the fixed-width, sortable text form of times in SQLite.
const sqliteTime = "2006-01-02T15:04:05.000000Z"

func (s *Store) timeArg(t time.Time) any {
	t = t.UTC().Truncate(time.Microsecond)
	if s.dialect == sqldialect.SQLite {
		return t.Format(sqliteTime)
	}
	return t
}
