package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/internal/ids"
	"github.com/keyflow-dev/keyflow/keyflowtest/dbtest"
	"github.com/keyflow-dev/keyflow/sqldialect"
	"github.com/keyflow-dev/keyflow/sqlitedb"
	"github.com/keyflow-dev/keyflow/variables"
	"github.com/keyflow-dev/keyflow/variables/sqlstore"
)

// TestNewConcurrent: several server instances starting together, each with
// its own pool, call New at once on one fresh database (a PostgreSQL schema,
// a SQLite file). Every New succeeds, the table is created once, and the
// store works from every pool (SQLite pools are separate *sql.DB on one
// file, as separate processes would be). Before New serialised its migration,
// PostgreSQL failed this with `duplicate key value violates unique
// constraint "pg_class_relname_nsp_index"`.
func TestNewConcurrent(t *testing.T) {
	const pools = 6
	sqlitePools := func(dsn func(path string) string) func(t *testing.T) []*sql.DB {
		return func(t *testing.T) []*sql.DB {
			path := filepath.Join(t.TempDir(), "shared.db")
			dbs := make([]*sql.DB, pools)
			for i := range dbs {
				db, err := sql.Open("sqlite", dsn(path))
				require.NoError(t, err)
				t.Cleanup(func() { _ = db.Close() })
				// Connect now: the driver's first connections to a fresh
				// file, setting journal_mode(WAL) at once, can fail with
				// SQLITE_BUSY before any store code runs.
				require.NoError(t, db.Ping())
				dbs[i] = db
			}
			return dbs
		}
	}
	for _, tc := range []struct {
		name    string
		dialect sqldialect.Dialect
		open    func(t *testing.T) []*sql.DB
	}{
		{"Postgres", sqldialect.Postgres, func(t *testing.T) []*sql.DB {
			db, schema := dbtest.PostgresSchema(t)
			dbs := []*sql.DB{db}
			for len(dbs) < pools {
				more, err := dbtest.OpenPostgresSchema(dbtest.PostgresDSN(t), schema)
				require.NoError(t, err)
				t.Cleanup(func() { _ = more.Close() })
				dbs = append(dbs, more)
			}
			return dbs
		}},
		// The settings keyflow recommends (sqlitedb.DSN).
		{"SQLite", sqldialect.SQLite, sqlitePools(sqlitedb.DSN)},
		// Deferred transactions by default: New must not depend on the
		// DSN asking for immediate ones; a busy timeout is enough.
		{"SQLite deferred", sqldialect.SQLite, sqlitePools(func(path string) string {
			return "file:" + path + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)"
		})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dbs := tc.open(t)
			stores := make([]*sqlstore.Store, len(dbs))
			errs := make([]error, len(dbs))
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i, db := range dbs {
				wg.Go(func() {
					<-start
					stores[i], errs[i] = sqlstore.New(ctx, db, sqlstore.Config{Dialect: tc.dialect})
				})
			}
			close(start)
			wg.Wait()
			for i, err := range errs {
				require.NoError(t, err, "pool %d", i)
				t.Cleanup(func() { _ = stores[i].Close() })
			}

			// Each pool writes through its store; every pool reads all.
			created := time.Now().UTC()
			for i, s := range stores {
				v := variables.Variable{
					ID: ids.New(), UserID: "u", Name: fmt.Sprintf("VAR_%d", i), Value: "v",
					Type: variables.Generic, CreatedAt: created.Add(time.Duration(i) * time.Microsecond),
				}
				require.NoError(t, s.Create(ctx, v), "pool %d", i)
			}
			for i, s := range stores {
				vs, err := s.ListByUser(ctx, "u")
				require.NoError(t, err, "pool %d", i)
				require.Len(t, vs, len(stores), "pool %d", i)
				for j, v := range vs {
					assert.Equal(t, fmt.Sprintf("VAR_%d", j), v.Name)
				}
			}
			// The unique (user_id, name) index exists, created once.
			dup := variables.Variable{ID: ids.New(), UserID: "u", Name: "VAR_0", Value: "w", Type: variables.Generic, CreatedAt: created}
			assert.ErrorIs(t, stores[len(stores)-1].Create(ctx, dup), variables.ErrDuplicate)
		})
	}
}
