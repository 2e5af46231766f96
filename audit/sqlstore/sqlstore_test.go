package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/audit"
	"github.com/keyflow-dev/keyflow/audit/sqlstore"
	"github.com/keyflow-dev/keyflow/audit/storetest"
	"github.com/keyflow-dev/keyflow/keyflowtest/dbtest"
	"github.com/keyflow-dev/keyflow/sqldialect"
)

var dialects = []struct {
	name    string
	dialect sqldialect.Dialect
	open    func(testing.TB) *sql.DB
}{
	{"SQLite", sqldialect.SQLite, dbtest.SQLite},
	{"Postgres", sqldialect.Postgres, dbtest.Postgres},
}

func newStore(t testing.TB, db *sql.DB, d sqldialect.Dialect) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.New(context.Background(), db, sqlstore.Config{Dialect: d})
	require.NoError(t, err)
	return s
}

func TestConformance(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) audit.Store { return newStore(t, d.open(t), d.dialect) })
		})
	}
}

func TestNewOptions(t *testing.T) {
	ctx := context.Background()
	db := dbtest.SQLite(t)
	for _, cfg := range []sqlstore.Config{{}, {Dialect: "mysql"}, {Dialect: sqldialect.SQLite, Table: "a b"}, {Dialect: sqldialect.SQLite, Table: "x; DROP TABLE y"}} {
		_, err := sqlstore.New(ctx, db, cfg)
		assert.Error(t, err, "%+v", cfg)
	}
	_, err := sqlstore.New(ctx, nil, sqlstore.Config{Dialect: sqldialect.SQLite})
	assert.Error(t, err)
	// A second New (a restart, another process) keeps the chain.
	s1 := newStore(t, db, sqldialect.SQLite)
	l1, err := audit.New(audit.Config{Store: s1})
	require.NoError(t, err)
	_, err = l1.Record(ctx, audit.Event{Action: audit.Login, Outcome: audit.Success})
	require.NoError(t, err)
	s2 := newStore(t, db, sqldialect.SQLite)
	h, err := s2.Head(ctx)
	require.NoError(t, err)
	assert.EqualValues(t, 1, h.Last.Seq)
}

// TestTamper: an event edited, deleted or moved by SQL, or events deleted at
// the end, make Verify report the chain broken at the first broken event.
func TestTamper(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			for _, tc := range []struct {
				name    string
				sql     []string
				wantSeq int64
				reason  string
			}{
				{"edit", []string{"UPDATE audit_event SET target_name = 'someone else' WHERE seq = 3"}, 3, "content"},
				{"edit the time", []string{"UPDATE audit_event SET time = (SELECT time FROM audit_event WHERE seq = 1) WHERE seq = 4"}, 4, "content"},
				{"edit the outcome", []string{"UPDATE audit_event SET outcome = 'failure' WHERE seq = 2"}, 2, "content"},
				{"edit details", []string{"UPDATE audit_event SET details = NULL WHERE seq = 5"}, 5, "content"},
				{"delete", []string{"DELETE FROM audit_event WHERE seq = 3"}, 4, "missing"},
				{"delete the first", []string{"DELETE FROM audit_event WHERE seq = 1"}, 2, "missing"},
				{"reorder", []string{
					"UPDATE audit_event SET seq = 100 WHERE seq = 3",
					"UPDATE audit_event SET seq = 3 WHERE seq = 4",
					"UPDATE audit_event SET seq = 4 WHERE seq = 100",
				}, 3, "does not follow"},
				{"delete the last", []string{"DELETE FROM audit_event WHERE seq = 6"}, 6, "missing"},
				{"rewrite the head", []string{"UPDATE audit_event_head SET last_hash = 'x'"}, 6, "head"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					ctx := context.Background()
					db := d.open(t)
					l, err := audit.New(audit.Config{Store: newStore(t, db, d.dialect)})
					require.NoError(t, err)
					for i := range 6 {
						_, err := l.Record(ctx, audit.Event{Action: audit.KeyCreated, Outcome: audit.Success,
							Actor: audit.Actor{UserID: "u"}, Target: audit.Target{Type: "api_key", ID: fmt.Sprint(i), Name: "k"},
							Details: map[string]string{"prefix": "sk-abcde"}})
						require.NoError(t, err)
					}
					_, err = l.Verify(ctx)
					require.NoError(t, err)
					for _, q := range tc.sql {
						_, err := db.ExecContext(ctx, q)
						require.NoError(t, err, q)
					}
					_, err = l.Verify(ctx)
					var be *audit.BrokenError
					require.ErrorAs(t, err, &be)
					assert.Equal(t, tc.wantSeq, be.Seq, err.Error())
					assert.Contains(t, be.Reason, tc.reason)
				})
			}
		})
	}
}

// TestAppendTx: an event appended in a transaction that rolls back leaves
// no trace; one that commits is chained.
func TestAppendTx(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			ctx := context.Background()
			db := d.open(t)
			s := newStore(t, db, d.dialect)
			l, err := audit.New(audit.Config{Store: s})
			require.NoError(t, err)
			e, err := l.Prepare(audit.Event{Action: audit.VariableCreated, Outcome: audit.Success})
			require.NoError(t, err)

			tx, err := db.BeginTx(ctx, nil)
			require.NoError(t, err)
			_, err = s.AppendTx(ctx, tx, e)
			require.NoError(t, err)
			require.NoError(t, tx.Rollback())
			h, err := s.Head(ctx)
			require.NoError(t, err)
			assert.Zero(t, h.Last.Seq, "rolled back with the change")

			tx, err = db.BeginTx(ctx, nil)
			require.NoError(t, err)
			got, err := s.AppendTx(ctx, tx, e)
			require.NoError(t, err)
			require.NoError(t, tx.Commit())
			assert.EqualValues(t, 1, got.Seq)
			_, err = l.Verify(ctx)
			require.NoError(t, err)
		})
	}
}

// TestConcurrentHandles: appends through several *sql.DB handles (as from
// several processes) at once form one chain.
func TestConcurrentHandles(t *testing.T) {
	t.Run("Postgres", func(t *testing.T) {
		db, schema := dbtest.PostgresSchema(t)
		dsn := dbtest.PostgresDSN(t)
		handles := []*sql.DB{db}
		for range 2 {
			h, err := dbtest.OpenPostgresSchema(dsn, schema)
			require.NoError(t, err)
			t.Cleanup(func() { _ = h.Close() })
			handles = append(handles, h)
		}
		appendFrom(t, handles, sqldialect.Postgres)
	})
	t.Run("SQLite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "audit.db")
		var handles []*sql.DB
		for range 2 {
			h, err := dbtest.OpenSQLite(path)
			require.NoError(t, err)
			t.Cleanup(func() { _ = h.Close() })
			handles = append(handles, h)
		}
		appendFrom(t, handles, sqldialect.SQLite)
	})
}

func appendFrom(t *testing.T, handles []*sql.DB, d sqldialect.Dialect) {
	ctx := context.Background()
	const perHandle, workers = 40, 3
	var wg sync.WaitGroup
	errs := make(chan error, len(handles)*perHandle)
	for i, db := range handles {
		l, err := audit.New(audit.Config{Store: newStore(t, db, d)})
		require.NoError(t, err)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range perHandle / workers {
					_, err := l.Record(ctx, audit.Event{Action: audit.KeyCreated, Outcome: audit.Success,
						Actor: audit.Actor{UserID: fmt.Sprintf("h%d-w%d", i, w)}, Target: audit.Target{ID: fmt.Sprint(j)}})
					if err != nil {
						errs <- err
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	l, err := audit.New(audit.Config{Store: newStore(t, handles[0], d)})
	require.NoError(t, err)
	r, err := l.Verify(ctx)
	require.NoError(t, err, "one chain")
	want := len(handles) * workers * (perHandle / workers)
	assert.Equal(t, want, r.Events)
	assert.EqualValues(t, want, r.Head.Last.Seq)
}
