package sqlstore_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/apikey/sqlstore"
	"github.com/keyflow-dev/keyflow/keyflowtest/dbtest"
	"github.com/keyflow-dev/keyflow/sqldialect"
)

// newBenchManager returns a new Store on db and a Manager with cfg on it
// (set as cfg.Store, and as cfg.Limiter when limiter is true), closed at the
// end of the benchmark.
func newBenchManager(b *testing.B, db *sql.DB, dialect sqldialect.Dialect, cfg apikey.Config, limiter bool) (*sqlstore.Store, *apikey.Manager) {
	b.Helper()
	s, err := sqlstore.New(context.Background(), db, sqlstore.Config{Dialect: dialect})
	if err != nil {
		b.Fatal(err)
	}
	cfg.Store = s
	if limiter {
		cfg.Limiter = s
	}
	m, err := apikey.NewManager(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.Close() })
	return s, m
}

// benchVerifyCold measures Verify on a cache miss: the cache is disabled, so
// every call is a format check, a hash and one ByHash query on an indexed
// table of 10 000 keys.
func benchVerifyCold(b *testing.B, db *sql.DB, dialect sqldialect.Dialect) {
	ctx := context.Background()
	_, m := newBenchManager(b, db, dialect, apikey.Config{CacheSize: -1}, false)
	const n = 5000
	keys := make([]string, 0, n)
	for i := range n {
		key, _, err := m.Create(ctx, "user-"+string(rune('a'+i%26)), "bench", apikey.CreateOptions{})
		if err != nil {
			b.Fatal(err)
		}
		keys = append(keys, key)
	}
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Verify(ctx, keys[i%n]); err != nil {
			b.Fatal(err)
		}
		i += 7
	}
}

func BenchmarkVerifyColdSQLite(b *testing.B) {
	benchVerifyCold(b, dbtest.SQLite(b), sqldialect.SQLite)
}

func BenchmarkVerifyColdPostgres(b *testing.B) {
	benchVerifyCold(b, dbtest.Postgres(b), sqldialect.Postgres)
}

// benchChangesIdle measures one change-feed poll when nothing changed: what
// a Manager pays per poll (every ChangesPollInterval while keys are being
// verified), on a log of 1 000 rows.
func benchChangesIdle(b *testing.B, db *sql.DB, dialect sqldialect.Dialect) {
	ctx := context.Background()
	s, m := newBenchManager(b, db, dialect, apikey.Config{}, false)
	for range 1000 {
		if _, _, err := m.Create(ctx, "user", "bench", apikey.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	_, cursor, err := s.Changes(ctx, "")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		hs, next, err := s.Changes(ctx, cursor)
		if err != nil || len(hs) != 0 {
			b.Fatal(err, len(hs))
		}
		cursor = next
	}
}

func BenchmarkChangesIdleSQLite(b *testing.B) {
	benchChangesIdle(b, dbtest.SQLite(b), sqldialect.SQLite)
}

func BenchmarkChangesIdlePostgres(b *testing.B) {
	benchChangesIdle(b, dbtest.Postgres(b), sqldialect.Postgres)
}
