// Package sqlstore is an apikey.Store on database/sql for SQLite and
// PostgreSQL. It imports no driver: the host opens the *sql.DB with the driver
// it chooses (for example modernc.org/sqlite or pgx's stdlib) and names the
// dialect in Config; nothing is guessed from the driver.
//
// New creates or migrates the schema: one table (default "apikey") with a
// unique index on the key hash and an index on the user ID, and a table
// "<table>_migrations" that records the schema version. The table holds no
// key and no reversible form of one: only its SHA-256 (api_key_hash, 64 hex
// characters, as Langflow's column of that name) and an 8-character display
// prefix.
//
// The default table name is Langflow's, but the columns are not: to keep
// keyflow's keys in a Langflow database, pick another Config.Table (New
// refuses to take over an existing table it did not create).
//
// Schema version 2 serves several processes sharing the database. Triggers
// on the key table write the hash of every key inserted, deleted or changed
// (other than its usage counters) to "<table>_changes", in the transaction
// of the change, and [Store.Changes] reads that log: the Store is an
// apikey.ChangeFeed, to be set as apikey.Config.Changes (see changes.go for
// how the cursor stays exact when transactions commit out of order, and how
// the log is pruned). "<table>_changes_hz" holds pruning horizons, and
// "<table>_usage_batches" the IDs of applied usage batches, which make
// AddUsageOnce (apikey.IdempotentUsage) exact when a COMMIT's reply is lost.
// On PostgreSQL this needs version 13 or later (xid8, pg_current_snapshot).
//
// Schema version 3 makes the PostgreSQL trigger also send a notification
// (pg_notify, channel "<table>_changes", payload the table's schema) in the
// transaction of the change; [Store.Notification] names it, and package
// apikey/sqlstore/pgnotify listens for it (an apikey.ChangeNotifier), so
// that other processes poll the log as soon as the change commits. The log
// stays the source of truth: a notification may be lost. As with every
// version, New refuses a schema newer than its own: once one instance has
// migrated a shared database, restart the others with the new version too.
//
// Times are stored with microsecond precision: TIMESTAMPTZ on PostgreSQL,
// fixed-width UTC text ("2006-01-02T15:04:05.000000Z", which sorts in time
// order) on SQLite.
package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/internal/sqlchangelog"
	"github.com/keyflow-dev/keyflow/internal/sqlutil"
	"github.com/keyflow-dev/keyflow/sqldialect"
)

// Config configures a Store.
type Config struct {
	// Dialect of the database; required.
	Dialect sqldialect.Dialect
	// Table is the name of the key table: letters, digits and underscores,
	// starting with a letter or underscore, at most 48 characters.
	// "": "apikey".
	Table string
	// ChangeRetention is how long rows of the change log are kept before
	// Changes prunes them. A cursor the log can no longer answer for is
	// answered with apikey.ErrChangesLost: on PostgreSQL one older than half
	// of it, on SQLite one past which rows were pruned. At least a second;
	// 0: 10 minutes.
	ChangeRetention time.Duration
}

// DefaultChangeRetention is the default Config.ChangeRetention.
const DefaultChangeRetention = 10 * time.Minute

// Store is an apikey.Store on a *sql.DB, made by New (the zero value is not
// usable). It is safe for concurrent use.
type Store struct {
	db      *sql.DB
	dialect sqldialect.Dialect
	q       queries
	lq      limitQueries
	byHash  *sql.Stmt // SQLite only; pgx caches its prepared statements itself
	table   string

	retention time.Duration
	log       *sqlchangelog.Log[apikey.Hash] // the change log (changes.go)
}

var (
	_ apikey.Store           = (*Store)(nil)
	_ apikey.ChangeFeed      = (*Store)(nil)
	_ apikey.IdempotentUsage = (*Store)(nil)
)

type queries struct {
	insert, byHash, hashes, list, deleteRet, setActive, addUsage, probe, batch, pruneBatches string
}

var tableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,47}$`)

const columns = "id, user_id, name, api_key_hash, prefix, key_length, created_at, last_used_at, total_uses, is_active, expires_at, scopes, " +
	"limits, quota_remaining, quota_period"

// New returns a Store on db, creating or migrating its schema first. It does
// not close db.
func New(ctx context.Context, db *sql.DB, cfg Config) (*Store, error) {
	if db == nil {
		return nil, errors.New("sqlstore: db is nil")
	}
	if !cfg.Dialect.Valid() {
		return nil, fmt.Errorf("sqlstore: Config.Dialect must be sqldialect.SQLite or sqldialect.Postgres, not %q", cfg.Dialect)
	}
	table := cfg.Table
	if table == "" {
		table = "apikey"
	}
	if !tableName.MatchString(table) {
		return nil, fmt.Errorf("sqlstore: table name %q is not a plain SQL identifier", table)
	}
	s := &Store{db: db, dialect: cfg.Dialect, retention: cfg.ChangeRetention, table: table}
	if s.retention == 0 {
		s.retention = DefaultChangeRetention
	}
	if s.retention < time.Second {
		return nil, errors.New("sqlstore: Config.ChangeRetention must be at least a second")
	}
	s.q = newQueries(s.dialect, table)
	s.lq = newLimitQueries(s.dialect, table)
	if err := s.migrate(ctx, table); err != nil {
		return nil, err
	}
	if err := s.createHistory(ctx); err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, s.q.probe)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: table %s does not have keyflow's columns (is it another program's table? choose Config.Table): %w", table, err)
	}
	_ = rows.Close()
	if err := s.prepare(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// newQueries returns the Store's SQL for dialect d on table.
func newQueries(d sqldialect.Dialect, table string) queries {
	q := queries{
		insert:    "INSERT INTO " + table + " (" + columns + ", quota_refill) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
		byHash:    "SELECT " + columns + " FROM " + table + " WHERE api_key_hash = ?",
		hashes:    "SELECT api_key_hash FROM " + table,
		list:      "SELECT " + columns + " FROM " + table + " WHERE user_id = ? ORDER BY created_at, id",
		deleteRet: "DELETE FROM " + table + " WHERE id = ? AND user_id = ? RETURNING " + columns,
		setActive: "UPDATE " + table + " SET is_active = ? WHERE id = ? AND user_id = ? RETURNING " + columns,
		// last_used_at = max(last_used_at, ?), written with CASE because
		// SQLite's max() is NULL when an argument is NULL.
		addUsage: "UPDATE " + table + " SET total_uses = total_uses + ?, " +
			"last_used_at = CASE WHEN last_used_at IS NULL OR last_used_at < ? THEN ? ELSE last_used_at END WHERE id = ?",
		probe:        "SELECT " + columns + " FROM " + table + " WHERE 1 = 0",
		batch:        "INSERT INTO " + table + "_usage_batches (id, applied_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
		pruneBatches: "DELETE FROM " + table + "_usage_batches WHERE applied_at < ?",
	}
	if d == sqldialect.Postgres {
		for _, p := range []*string{&q.insert, &q.byHash, &q.list, &q.deleteRet, &q.setActive, &q.addUsage, &q.probe, &q.batch, &q.pruneBatches} {
			*p = sqlutil.Dollar(*p)
		}
	}
	return q
}

// prepare readies the Store's statements: on SQLite the two hot queries,
// on PostgreSQL the name of the schema holding the table (for the change
// notifications).
func (s *Store) prepare(ctx context.Context) error {
	var err error
	if s.dialect == sqldialect.SQLite {
		// Saves parsing the query on every cache miss: about a quarter of a
		// lookup with modernc.org/sqlite. (With pgx, an explicit statement
		// measured slower than pgx's own statement cache.)
		if s.byHash, err = s.db.PrepareContext(ctx, s.q.byHash); err != nil {
			return fmt.Errorf("sqlstore: prepare: %w", err)
		}
	}
	s.log, err = sqlchangelog.New(ctx, s.db, sqlchangelog.Config[apikey.Hash]{
		Dialect: s.dialect, Table: s.table, Column: "api_key_hash", Retention: s.retention,
		Lost: apikey.ErrChangesLost, Parse: apikey.ParseHash, Prune: s.PruneChanges,
	})
	if err != nil {
		if s.byHash != nil {
			_ = s.byHash.Close()
		}
		return err
	}
	return nil
}

// migrations[i] brings the schema from version i to i+1.
func migrations(d sqldialect.Dialect, table string) [][]string {
	text, ts, boolean, bigint, yes := "TEXT", "TEXT", "INTEGER", "INTEGER", "1"
	if d == sqldialect.Postgres {
		ts, boolean, bigint, yes = "TIMESTAMPTZ", "BOOLEAN", "BIGINT", "TRUE"
	}
	return [][]string{{
		// Plain CREATE TABLE: fail rather than adopt a table created by
		// another program (such as Langflow's own apikey table).
		"CREATE TABLE " + table + " (" +
			"id " + text + " NOT NULL PRIMARY KEY, " +
			"user_id " + text + " NOT NULL, " +
			"name " + text + " NOT NULL DEFAULT '', " +
			"api_key_hash " + text + " NOT NULL, " +
			"prefix " + text + " NOT NULL, " +
			"key_length INTEGER NOT NULL, " +
			"created_at " + ts + " NOT NULL, " +
			"last_used_at " + ts + ", " +
			"total_uses " + bigint + " NOT NULL DEFAULT 0, " +
			"is_active " + boolean + " NOT NULL DEFAULT " + yes + ", " +
			"expires_at " + ts + ", " +
			"scopes " + text + ")",
		"CREATE UNIQUE INDEX " + table + "_api_key_hash_key ON " + table + " (api_key_hash)",
		"CREATE INDEX " + table + "_user_id_idx ON " + table + " (user_id, created_at)",
	}, changeLogSchema(d, table), notifySchema(d, table), limitsSchema(d, table)}
}

func (s *Store) migrate(ctx context.Context, table string) error {
	// The lock serialises concurrent migrations of this table by several
	// processes.
	return sqlutil.Migrate(ctx, s.db, sqlutil.Migration{
		Dialect: s.dialect, Package: "sqlstore", Lock: "keyflow/apikey/sqlstore:" + table, Table: table,
		Steps: migrations(s.dialect, table), Hint: " (if the table belongs to another program, choose Config.Table)",
	})
}

// Insert implements apikey.Store.
func (s *Store) Insert(ctx context.Context, r apikey.Record) error {
	scopes, err := encodeScopes(r.Scopes)
	if err != nil {
		return err
	}
	limits, remaining, period, refill, err := limitArgs(r.Limits)
	if err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, s.q.insert,
		r.ID, r.UserID, r.Name, r.Hash.String(), r.Prefix, r.Length,
		s.timeArg(r.CreatedAt), s.nullTimeArg(r.LastUsedAt), r.TotalUses, r.Active,
		s.nullTimeArg(r.ExpiresAt), scopes, limits, remaining, period, refill)
	if err != nil {
		return fmt.Errorf("sqlstore: insert: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlstore: insert: %w", err)
	}
	if n == 0 { // ON CONFLICT DO NOTHING: the ID or the hash exists
		return apikey.ErrDuplicate
	}
	return nil
}

// ByHash implements apikey.Store.
func (s *Store) ByHash(ctx context.Context, h apikey.Hash) (apikey.Record, error) {
	if s.byHash != nil {
		return s.oneRow(s.byHash.QueryRowContext(ctx, h.String()), "by hash")
	}
	return s.one(ctx, "by hash", s.q.byHash, h.String())
}

// EachHash implements apikey.HashLister, in one query (one snapshot of the
// table).
func (s *Store) EachHash(ctx context.Context, fn func(apikey.Hash) error) error {
	rows, err := s.db.QueryContext(ctx, s.q.hashes)
	if err != nil {
		return fmt.Errorf("sqlstore: list hashes: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var text []byte
	for rows.Next() {
		if err := rows.Scan(&text); err != nil {
			return fmt.Errorf("sqlstore: list hashes: %w", err)
		}
		h, err := apikey.ParseHash(string(text))
		if err != nil {
			continue // not a hash ByHash could find: no key verifies by this row
		}
		if err := fn(h); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlstore: list hashes: %w", err)
	}
	return nil
}

// Close releases the store's prepared statements. It does not close the
// *sql.DB, and the store must not be used afterwards. Calling it is optional
// when the *sql.DB is closed anyway.
func (s *Store) Close() error {
	var errs []error
	if s.byHash != nil {
		errs = append(errs, s.byHash.Close())
	}
	errs = append(errs, s.log.Close())
	return errors.Join(errs...)
}

// ListByUser implements apikey.Store.
func (s *Store) ListByUser(ctx context.Context, userID string) ([]apikey.Record, error) {
	rows, err := s.db.QueryContext(ctx, s.q.list, userID)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list: %w", err)
	}
	defer func() { _ = rows.Close() }()
	out := []apikey.Record{}
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: list: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: list: %w", err)
	}
	return out, nil
}

// Delete implements apikey.Store.
func (s *Store) Delete(ctx context.Context, userID, id string) (apikey.Record, error) {
	return s.one(ctx, "delete", s.q.deleteRet, id, userID)
}

// SetActive implements apikey.Store.
func (s *Store) SetActive(ctx context.Context, userID, id string, active bool) (apikey.Record, error) {
	return s.one(ctx, "set active", s.q.setActive, active, id, userID)
}

// one runs a query that returns at most one record; none is ErrNotFound.
func (s *Store) one(ctx context.Context, op, query string, args ...any) (apikey.Record, error) {
	return s.oneRow(s.db.QueryRowContext(ctx, query, args...), op)
}

func (s *Store) oneRow(row *sql.Row, op string) (apikey.Record, error) {
	r, err := scanRecord(row)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return apikey.Record{}, apikey.ErrNotFound
	case err != nil:
		return apikey.Record{}, fmt.Errorf("sqlstore: %s: %w", op, err)
	}
	return r, nil
}

// AddUsage implements apikey.Store: one transaction, one atomic UPDATE per
// entry (total_uses = total_uses + n; last_used_at only forward), in ID order
// so that concurrent batches from several processes cannot deadlock.
func (s *Store) AddUsage(ctx context.Context, batch []apikey.Usage) error {
	return s.addUsage(ctx, "", batch)
}

// AddUsageOnce implements apikey.IdempotentUsage: AddUsage, and in the same
// transaction a row in "<table>_usage_batches" recording batchID; a batch
// whose ID is recorded already changes nothing. The rows are pruned after a
// day by PruneChanges.
func (s *Store) AddUsageOnce(ctx context.Context, batchID string, batch []apikey.Usage) error {
	if batchID == "" {
		return errors.New("sqlstore: add usage: empty batch ID")
	}
	return s.addUsage(ctx, batchID, batch)
}

func (s *Store) addUsage(ctx context.Context, batchID string, batch []apikey.Usage) error {
	if len(batch) == 0 {
		return ctx.Err()
	}
	batch = slices.Clone(batch)
	slices.SortFunc(batch, func(a, b apikey.Usage) int { return strings.Compare(a.ID, b.ID) })
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: add usage: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if batchID != "" {
		res, err := tx.ExecContext(ctx, s.q.batch, batchID, s.timeArg(time.Now()))
		if err != nil {
			return fmt.Errorf("sqlstore: add usage: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("sqlstore: add usage: %w", err)
		} else if n == 0 {
			return nil // applied before
		}
	}
	stmt, err := tx.PrepareContext(ctx, s.q.addUsage)
	if err != nil {
		return fmt.Errorf("sqlstore: add usage: %w", err)
	}
	defer func() { _ = stmt.Close() }()
	for _, u := range batch {
		last := s.timeArg(u.LastUsed)
		if u.LastUsed.IsZero() {
			last = nil // CASE keeps the stored value
		}
		if _, err := stmt.ExecContext(ctx, u.Uses, last, last, u.ID); err != nil {
			return fmt.Errorf("sqlstore: add usage: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: add usage: %w", err)
	}
	return nil
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

func (s *Store) nullTimeArg(t *time.Time) any {
	if t == nil {
		return nil
	}
	return s.timeArg(*t)
}

func encodeScopes(scopes []string) (any, error) {
	if len(scopes) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(scopes)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: encode scopes: %w", err)
	}
	return string(b), nil
}

type scanner interface{ Scan(dest ...any) error }

func scanRecord(row scanner) (apikey.Record, error) {
	var (
		r                          apikey.Record
		hash                       string
		created, lastUsed, expires sqlutil.NullTime
		scopes, limits             sql.NullString
		remaining                  sql.NullInt64
		period                     int64
	)
	err := row.Scan(&r.ID, &r.UserID, &r.Name, &hash, &r.Prefix, &r.Length,
		&created, &lastUsed, &r.TotalUses, &r.Active, &expires, &scopes, &limits, &remaining, &period)
	if err != nil {
		return apikey.Record{}, err
	}
	if r.Hash, err = apikey.ParseHash(hash); err != nil {
		return apikey.Record{}, fmt.Errorf("record %s: %w", r.ID, err)
	}
	if !created.Valid {
		return apikey.Record{}, fmt.Errorf("record %s: created_at is NULL", r.ID)
	}
	r.CreatedAt = created.T
	r.LastUsedAt, r.ExpiresAt = lastUsed.Ptr(), expires.Ptr()
	if scopes.Valid && scopes.String != "" {
		if err := json.Unmarshal([]byte(scopes.String), &r.Scopes); err != nil {
			return apikey.Record{}, fmt.Errorf("record %s: scopes: %w", r.ID, err)
		}
	}
	if r.Limits, err = decodeLimits(limits, remaining, period); err != nil {
		return apikey.Record{}, fmt.Errorf("record %s: %w", r.ID, err)
	}
	return r, nil
}
