package sqlstore_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/apikey/sqlstore"
	"github.com/keyflow-dev/keyflow/internal/ids"
	"github.com/keyflow-dev/keyflow/keyflowtest/dbtest"
	"github.com/keyflow-dev/keyflow/sqldialect"
)

func testRecord(t *testing.T, user string) (string, apikey.Record) {
	t.Helper()
	key, err := apikey.Langflow.Generate()
	require.NoError(t, err)
	return key, apikey.Record{
		ID: ids.New(), UserID: user, Name: "k", Hash: apikey.HashKey(key), Prefix: key[:8],
		Length: len(key), CreatedAt: time.Now().UTC().Truncate(time.Microsecond), Active: true,
	}
}

// poll calls Changes and returns the hashes and the next cursor.
func poll(t *testing.T, s *sqlstore.Store, cursor string) ([]apikey.Hash, string) {
	t.Helper()
	hs, next, err := s.Changes(context.Background(), cursor)
	require.NoError(t, err)
	require.NotEmpty(t, next)
	return hs, next
}

// TestChangesReportsEveryChange: inserts, deletes and every kind of update
// that matters to verification are reported exactly once; usage counting is
// not reported.
func TestChangesReportsEveryChange(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			ctx := context.Background()
			s, err := sqlstore.New(ctx, d.open(t), sqlstore.Config{Dialect: d.dialect})
			require.NoError(t, err)
			hs, cur := poll(t, s, "")
			assert.Empty(t, hs)

			_, r1 := testRecord(t, "u")
			_, r2 := testRecord(t, "u")
			require.NoError(t, s.Insert(ctx, r1))
			require.NoError(t, s.Insert(ctx, r2))
			hs, cur = poll(t, s, cur)
			assert.ElementsMatch(t, []apikey.Hash{r1.Hash, r2.Hash}, hs)

			hs, cur = poll(t, s, cur)
			assert.Empty(t, hs, "a change is reported once")

			require.NoError(t, s.AddUsage(ctx, []apikey.Usage{{ID: r1.ID, Uses: 3, LastUsed: time.Now()}}))
			hs, cur = poll(t, s, cur)
			assert.Empty(t, hs, "usage counters are not changes")

			_, err = s.SetActive(ctx, "u", r1.ID, false)
			require.NoError(t, err)
			_, err = s.Delete(ctx, "u", r2.ID)
			require.NoError(t, err)
			hs, _ = poll(t, s, cur)
			assert.Equal(t, []apikey.Hash{r1.Hash, r2.Hash}, hs)
		})
	}
}

// TestChangesOutOfOrderCommit: a transaction that took its change-log id
// first but commits last is still reported — the reason the PostgreSQL
// cursor is a snapshot, not the highest id read.
func TestChangesOutOfOrderCommit(t *testing.T) {
	ctx := context.Background()
	db := dbtest.Postgres(t)
	s, err := sqlstore.New(ctx, db, sqlstore.Config{Dialect: sqldialect.Postgres})
	require.NoError(t, err)
	_, cur := poll(t, s, "")

	_, slow := testRecord(t, "u")
	_, fast := testRecord(t, "u")
	require.NoError(t, s.Insert(ctx, slow))
	require.NoError(t, s.Insert(ctx, fast))
	_, cur = poll(t, s, cur)

	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback() }()
	_, err = tx.ExecContext(ctx, "UPDATE apikey SET is_active = FALSE WHERE id = $1", slow.ID) // log id n
	require.NoError(t, err)
	_, err = s.SetActive(ctx, "u", fast.ID, false) // log id n+1, committed first
	require.NoError(t, err)

	hs, cur := poll(t, s, cur)
	assert.Equal(t, []apikey.Hash{fast.Hash}, hs)
	require.NoError(t, tx.Commit())
	hs, cur = poll(t, s, cur)
	assert.Equal(t, []apikey.Hash{slow.Hash}, hs, "the change committed late is not missed")
	hs, _ = poll(t, s, cur)
	assert.Empty(t, hs)

	var rows int
	require.NoError(t, db.QueryRowContext(ctx, "SELECT count(*) FROM apikey_changes").Scan(&rows))
	assert.Equal(t, 4, rows)
}

// TestChangesLost: a cursor the log can no longer answer for gets
// ErrChangesLost and a fresh cursor; pruning keeps what younger cursors need.
func TestChangesLost(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel() // each waits out the retention twice: overlap the waits
			ctx := context.Background()
			db := d.open(t)
			s, err := sqlstore.New(ctx, db, sqlstore.Config{Dialect: d.dialect, ChangeRetention: time.Second})
			require.NoError(t, err)
			_, old := poll(t, s, "")
			_, r := testRecord(t, "u")
			require.NoError(t, s.Insert(ctx, r))
			_, recent := poll(t, s, old)

			time.Sleep(1100 * time.Millisecond)
			require.NoError(t, s.PruneChanges(ctx)) // records a horizon (PostgreSQL)
			_, r2 := testRecord(t, "u")
			require.NoError(t, s.Insert(ctx, r2))
			time.Sleep(1100 * time.Millisecond)
			require.NoError(t, s.PruneChanges(ctx)) // prunes behind the horizon
			_, r3 := testRecord(t, "u")
			require.NoError(t, s.Insert(ctx, r3))
			var rows int
			require.NoError(t, db.QueryRowContext(ctx, "SELECT count(*) FROM apikey_changes").Scan(&rows))
			assert.Equal(t, 2, rows, "the first change was pruned, the later ones kept")

			hs, next, err := s.Changes(ctx, old)
			require.ErrorIs(t, err, apikey.ErrChangesLost)
			require.NotEmpty(t, next)
			if d.dialect == sqldialect.SQLite {
				hs, _, err = s.Changes(ctx, recent)
				require.ErrorIs(t, err, apikey.ErrChangesLost)
			}
			_ = hs
			hs, _ = poll(t, s, next)
			assert.Empty(t, hs)
		})
	}
}

// TestNewConcurrent: N instances starting together on one fresh database
// create the schema once, and all of them work.
func TestNewConcurrent(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			ctx := context.Background()
			var dbs []*sql.DB
			if d.dialect == sqldialect.Postgres {
				db, schema := dbtest.PostgresSchema(t)
				dbs = append(dbs, db)
				for range 5 {
					more, err := dbtest.OpenPostgresSchema(dbtest.PostgresDSN(t), schema)
					require.NoError(t, err)
					t.Cleanup(func() { _ = more.Close() })
					dbs = append(dbs, more)
				}
			} else {
				db := dbtest.SQLite(t)
				for range 6 {
					dbs = append(dbs, db)
				}
			}
			errs := make(chan error, len(dbs))
			stores := make(chan *sqlstore.Store, len(dbs))
			start := make(chan struct{})
			for _, db := range dbs {
				go func() {
					<-start
					s, err := sqlstore.New(ctx, db, sqlstore.Config{Dialect: d.dialect})
					errs <- err
					stores <- s
				}()
			}
			close(start)
			for range dbs {
				require.NoError(t, <-errs)
			}
			for range dbs {
				s := <-stores
				_, r := testRecord(t, "u")
				require.NoError(t, s.Insert(ctx, r))
			}
			var versions int
			require.NoError(t, dbs[0].QueryRowContext(ctx, "SELECT count(*) FROM apikey_migrations").Scan(&versions))
			assert.Equal(t, 4, versions)
		})
	}
}

// TestAddUsageOnce: a batch resent under the same ID (its first COMMIT's
// reply was lost) is applied once.
func TestAddUsageOnce(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			ctx := context.Background()
			s, err := sqlstore.New(ctx, d.open(t), sqlstore.Config{Dialect: d.dialect})
			require.NoError(t, err)
			_, r := testRecord(t, "u")
			require.NoError(t, s.Insert(ctx, r))
			batch := []apikey.Usage{{ID: r.ID, Uses: 5, LastUsed: time.Now()}}
			id := ids.New()
			require.NoError(t, s.AddUsageOnce(ctx, id, batch))
			require.NoError(t, s.AddUsageOnce(ctx, id, batch))
			require.NoError(t, s.AddUsageOnce(ctx, ids.New(), batch))
			require.Error(t, s.AddUsageOnce(ctx, "", batch))
			got, err := s.ByHash(ctx, r.Hash)
			require.NoError(t, err)
			assert.Equal(t, int64(10), got.TotalUses)
			require.NoError(t, s.PruneChanges(ctx))
		})
	}
}

// TestMigrateFromVersion1: a database at schema version 1 (before the change
// log) is migrated to the current version with its keys, and changes are
// then logged.
func TestMigrateFromVersion1(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			ctx := context.Background()
			db := d.open(t)
			s, err := sqlstore.New(ctx, db, sqlstore.Config{Dialect: d.dialect})
			require.NoError(t, err)
			_, r := testRecord(t, "u")
			require.NoError(t, s.Insert(ctx, r))
			downToVersion3(t, db, d.dialect)
			// Back to version 1: drop what version 2 added.
			down := []string{"DROP TABLE apikey_changes", "DROP TABLE apikey_usage_batches", "DELETE FROM apikey_migrations WHERE version >= 2"}
			if d.dialect == sqldialect.Postgres {
				down = append([]string{"DROP FUNCTION apikey_changes_log() CASCADE", "DROP TABLE apikey_changes_hz"}, down...)
			} else {
				down = append([]string{"DROP TRIGGER apikey_changes_ins", "DROP TRIGGER apikey_changes_del", "DROP TRIGGER apikey_changes_upd"}, down...)
			}
			for _, q := range down {
				_, err := db.ExecContext(ctx, q)
				require.NoError(t, err, q)
			}

			s2, err := sqlstore.New(ctx, db, sqlstore.Config{Dialect: d.dialect})
			require.NoError(t, err)
			got, err := s2.ByHash(ctx, r.Hash)
			require.NoError(t, err)
			assert.Equal(t, r.ID, got.ID)
			_, cur := poll(t, s2, "")
			_, err = s2.Delete(ctx, "u", r.ID)
			require.NoError(t, err)
			hs, _ := poll(t, s2, cur)
			assert.Equal(t, []apikey.Hash{r.Hash}, hs)
		})
	}
}

// TestMigrateFromVersion2: on PostgreSQL, a database at schema version 2
// (the change log without notifications) gets the notifying trigger
// function; its keys and log are kept.
func TestMigrateFromVersion2(t *testing.T) {
	ctx := context.Background()
	db := dbtest.Postgres(t)
	s, err := sqlstore.New(ctx, db, sqlstore.Config{Dialect: sqldialect.Postgres})
	require.NoError(t, err)
	_, r := testRecord(t, "u")
	require.NoError(t, s.Insert(ctx, r))
	notifies := func() bool {
		var def string
		require.NoError(t, db.QueryRowContext(ctx, "SELECT pg_get_functiondef('apikey_changes_log'::regproc)").Scan(&def))
		return strings.Contains(def, "pg_notify")
	}
	require.True(t, notifies())
	// Back to version 2: the function without the notification.
	var def string
	require.NoError(t, db.QueryRowContext(ctx, "SELECT pg_get_functiondef('apikey_changes_log'::regproc)").Scan(&def))
	var kept []string
	for _, line := range strings.Split(def, "\n") {
		if !strings.Contains(line, "pg_notify") {
			kept = append(kept, line)
		}
	}
	_, err = db.ExecContext(ctx, strings.Join(kept, "\n"))
	require.NoError(t, err)
	downToVersion3(t, db, sqldialect.Postgres)
	_, err = db.ExecContext(ctx, "DELETE FROM apikey_migrations WHERE version = 3")
	require.NoError(t, err)
	require.False(t, notifies())

	s2, err := sqlstore.New(ctx, db, sqlstore.Config{Dialect: sqldialect.Postgres})
	require.NoError(t, err)
	assert.True(t, notifies())
	got, err := s2.ByHash(ctx, r.Hash)
	require.NoError(t, err)
	assert.Equal(t, r.ID, got.ID)
	_, cur := poll(t, s2, "")
	_, err = s2.Delete(ctx, "u", r.ID)
	require.NoError(t, err)
	hs, _ := poll(t, s2, cur)
	assert.Equal(t, []apikey.Hash{r.Hash}, hs)
}

// downToVersion3 takes the table "apikey" back to schema version 3: no
// limits columns, no rate table, the update trigger on version 3's columns.
func downToVersion3(t *testing.T, db *sql.DB, d sqldialect.Dialect) {
	t.Helper()
	const watched = "user_id, name, api_key_hash, is_active, expires_at, scopes"
	down := []string{"DROP TABLE apikey_rate"}
	if d == sqldialect.Postgres {
		down = append(down, "DROP TRIGGER apikey_changes_upd ON apikey")
	} else {
		down = append(down, "DROP TRIGGER apikey_changes_upd")
	}
	for _, c := range []string{"limits", "quota_remaining", "quota_period", "quota_refill", "quota_epoch", "quota_taken"} {
		down = append(down, "ALTER TABLE apikey DROP COLUMN "+c)
	}
	if d == sqldialect.Postgres {
		down = append(down, "CREATE TRIGGER apikey_changes_upd AFTER UPDATE OF "+watched+" ON apikey FOR EACH ROW EXECUTE FUNCTION apikey_changes_log()")
	} else {
		down = append(down, "CREATE TRIGGER apikey_changes_upd AFTER UPDATE OF "+watched+" ON apikey BEGIN "+
			"INSERT INTO apikey_changes (api_key_hash) VALUES (OLD.api_key_hash); "+
			"INSERT INTO apikey_changes (api_key_hash) SELECT NEW.api_key_hash WHERE NEW.api_key_hash <> OLD.api_key_hash; END")
	}
	down = append(down, "DELETE FROM apikey_migrations WHERE version = 4")
	for _, q := range down {
		_, err := db.ExecContext(context.Background(), q)
		require.NoError(t, err, q)
	}
}

// TestMigrateFromVersion3: a database at schema version 3 (before limits)
// gets the limits columns and the rate table; its keys are kept, unlimited,
// and a change of limits is logged for other instances.
func TestMigrateFromVersion3(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			ctx := context.Background()
			db := d.open(t)
			s, err := sqlstore.New(ctx, db, sqlstore.Config{Dialect: d.dialect})
			require.NoError(t, err)
			_, r := testRecord(t, "u")
			require.NoError(t, s.Insert(ctx, r))
			downToVersion3(t, db, d.dialect)

			s2, err := sqlstore.New(ctx, db, sqlstore.Config{Dialect: d.dialect})
			require.NoError(t, err)
			got, err := s2.ByHash(ctx, r.Hash)
			require.NoError(t, err)
			assert.Equal(t, r.ID, got.ID)
			assert.True(t, got.Limits.IsZero())
			_, cur := poll(t, s2, "")
			_, err = s2.SetLimits(ctx, "u", r.ID, apikey.Limits{Quota: &apikey.Quota{Limit: 5, Remaining: 5}}, true)
			require.NoError(t, err)
			hs, cur := poll(t, s2, cur)
			assert.Equal(t, []apikey.Hash{r.Hash}, hs, "a change of limits is logged")
			_, err = s2.TakeQuota(ctx, r.ID, 2, time.Time{})
			require.NoError(t, err)
			hs, _ = poll(t, s2, cur)
			assert.Empty(t, hs, "taking quota is not a change of the key")
		})
	}
}
