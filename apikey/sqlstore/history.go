package sqlstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/internal/sqlutil"
	"github.com/keyflow-dev/keyflow/observe"
	"github.com/keyflow-dev/keyflow/sqldialect"
)

// The usage history (apikey.UsageHistory) lives in "<table>_usage_hourly":
// one row per key, hour and outcome, with the count of verifications. The
// table has no foreign key to the key table: a deleted key's history stays
// until it ages out (PruneUsageHistory), like its audit trail. It is created
// by New when missing, apart from the versioned migrations of the key
// table, so that it can be added to a database of any schema version.

var _ apikey.UsageHistory = (*Store)(nil)

// historyQueries returns the statements of the usage history.
func (s *Store) historyQueries() (create []string, add, read, prune string) {
	t := s.table + "_usage_hourly"
	ts, bigint := "TEXT", "INTEGER"
	if s.dialect == sqldialect.Postgres {
		ts, bigint = "TIMESTAMPTZ", "BIGINT"
	}
	create = []string{
		"CREATE TABLE IF NOT EXISTS " + t + " (key_id TEXT NOT NULL, hour " + ts + " NOT NULL, outcome TEXT NOT NULL, " +
			"uses " + bigint + " NOT NULL, PRIMARY KEY (key_id, hour, outcome))",
		"CREATE INDEX IF NOT EXISTS " + t + "_hour_idx ON " + t + " (hour)",
	}
	add = "INSERT INTO " + t + " (key_id, hour, outcome, uses) VALUES (?, ?, ?, ?) " +
		"ON CONFLICT (key_id, hour, outcome) DO UPDATE SET uses = " + t + ".uses + excluded.uses"
	read = "SELECT hour, outcome, uses FROM " + t + " WHERE key_id = ? AND hour >= ? AND hour < ? ORDER BY hour, outcome"
	prune = "DELETE FROM " + t + " WHERE hour < ?"
	if s.dialect == sqldialect.Postgres {
		add, read, prune = sqlutil.Dollar(add), sqlutil.Dollar(read), sqlutil.Dollar(prune)
	}
	return create, add, read, prune
}

// createHistory creates the usage history's table when missing.
func (s *Store) createHistory(ctx context.Context) error {
	create, _, _, _ := s.historyQueries()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: create usage history: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if s.dialect == sqldialect.Postgres {
		if err := sqlutil.LockMigrations(ctx, tx, "keyflow/apikey/sqlstore:"+s.table); err != nil {
			return fmt.Errorf("sqlstore: create usage history: lock: %w", err)
		}
	}
	for _, q := range create {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("sqlstore: create usage history: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: create usage history: %w", err)
	}
	return nil
}

// AddUsageHistory implements apikey.UsageHistory: one transaction, one
// upsert per bucket, in (key, hour, outcome) order so that concurrent batches
// from several processes cannot deadlock.
func (s *Store) AddUsageHistory(ctx context.Context, batch []apikey.UsageBucket) error {
	if len(batch) == 0 {
		return ctx.Err()
	}
	batch = slices.Clone(batch)
	slices.SortFunc(batch, func(a, b apikey.UsageBucket) int {
		return cmp.Or(cmp.Compare(a.KeyID, b.KeyID), a.Hour.Compare(b.Hour), cmp.Compare(a.Outcome, b.Outcome))
	})
	_, add, _, _ := s.historyQueries()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: add usage history: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	stmt, err := tx.PrepareContext(ctx, add)
	if err != nil {
		return fmt.Errorf("sqlstore: add usage history: %w", err)
	}
	defer func() { _ = stmt.Close() }()
	for _, b := range batch {
		if b.KeyID == "" || b.Count < 0 || int(b.Outcome) >= observe.NumOutcomes {
			return fmt.Errorf("sqlstore: add usage history: invalid bucket (count %d, outcome %d)", b.Count, b.Outcome)
		}
		if _, err := stmt.ExecContext(ctx, b.KeyID, s.timeArg(b.Hour.Truncate(time.Hour)), b.Outcome.String(), b.Count); err != nil {
			return fmt.Errorf("sqlstore: add usage history: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: add usage history: %w", err)
	}
	return nil
}

// UsageHistory implements apikey.UsageHistory.
func (s *Store) UsageHistory(ctx context.Context, keyID string, since, until time.Time) ([]apikey.UsageBucket, error) {
	_, _, read, _ := s.historyQueries()
	rows, err := s.db.QueryContext(ctx, read, keyID, s.timeArg(since), s.timeArg(until))
	if err != nil {
		return nil, fmt.Errorf("sqlstore: usage history: %w", err)
	}
	defer func() { _ = rows.Close() }()
	out := []apikey.UsageBucket{}
	for rows.Next() {
		var (
			hour    sqlutil.NullTime
			outcome string
			b       = apikey.UsageBucket{KeyID: keyID}
		)
		if err := rows.Scan(&hour, &outcome, &b.Count); err != nil {
			return nil, fmt.Errorf("sqlstore: usage history: %w", err)
		}
		o, ok := observe.ParseOutcome(outcome)
		if !ok {
			return nil, fmt.Errorf("sqlstore: usage history: unknown outcome %q", outcome)
		}
		b.Hour, b.Outcome = hour.T, o
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: usage history: %w", err)
	}
	// SQL orders outcomes by name; keep the documented order.
	slices.SortStableFunc(out, func(a, b apikey.UsageBucket) int {
		return cmp.Or(a.Hour.Compare(b.Hour), cmp.Compare(a.Outcome, b.Outcome))
	})
	return out, nil
}

// PruneUsageHistory implements apikey.UsageHistory.
func (s *Store) PruneUsageHistory(ctx context.Context, before time.Time) error {
	_, _, _, prune := s.historyQueries()
	if _, err := s.db.ExecContext(ctx, prune, s.timeArg(before)); err != nil {
		return fmt.Errorf("sqlstore: prune usage history: %w", err)
	}
	return nil
}
