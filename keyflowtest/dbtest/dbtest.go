// Package dbtest opens real databases for tests of code built on keyflow's
// SQL stores (a third-party store, a server, keyflow's own tests): a fresh
// SQLite file per test, and a fresh PostgreSQL schema per test on the server
// named by KEYFLOW_TEST_POSTGRES_DSN, so tests and packages may run in
// parallel on one database.
//
//	db := dbtest.Postgres(t) // skips the test, saying how to enable it, when the DSN is unset
//	s, err := sqlstore.New(ctx, db, sqlstore.Config{Dialect: sqldialect.Postgres})
//
// SkipSuite skips a suite that cannot run on this machine with one notice
// on the terminal; where the CI environment variable is set it fails the
// test instead, so a CI run never passes by skipping. Proxy cuts a
// database's connections on demand, for outage tests.
//
// Unlike the library packages it imports database drivers (pgx's stdlib
// driver and modernc.org/sqlite), so only tests and programs should import
// it.
package dbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/keyflow-dev/keyflow/sqlitedb"
)

// PostgresEnv names the environment variable that holds the PostgreSQL DSN
// used by tests, e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable.
const PostgresEnv = "KEYFLOW_TEST_POSTGRES_DSN"

// SQLite opens a new SQLite database in t.TempDir with WAL and a busy timeout,
// and closes it when the test ends.
func SQLite(t testing.TB) *sql.DB {
	t.Helper()
	db, err := OpenSQLite(filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatalf("testdb: open sqlite: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// OpenSQLite opens (creating if needed) the SQLite file at path as keyflow's
// users do, with sqlitedb.Open: WAL journal, a 5 s busy timeout, immediate
// transactions, foreign keys.
func OpenSQLite(path string) (*sql.DB, error) {
	return sqlitedb.Open(context.Background(), path)
}

// PostgresDSN returns the DSN from KEYFLOW_TEST_POSTGRES_DSN, or skips the
// test with a message saying how to enable it.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(PostgresEnv)
	if dsn == "" {
		SkipSuite(t, "PostgreSQL tests", "set "+PostgresEnv+"=postgres://postgres@127.0.0.1:5432/test?sslmode=disable to run them")
	}
	return dsn
}

// Postgres connects to the server named by KEYFLOW_TEST_POSTGRES_DSN (skipping
// the test when it is unset), creates a new schema for this test, and returns
// a *sql.DB whose connections all use that schema. The schema is dropped when
// the test ends, so tests and packages may run in parallel on one database.
func Postgres(t testing.TB) *sql.DB {
	t.Helper()
	db, _ := PostgresSchema(t)
	return db
}

// PostgresSchema is Postgres, and also returns the name of the test's schema,
// so that OpenPostgresSchema can open more pools on it (one per simulated
// server instance).
func PostgresSchema(t testing.TB) (*sql.DB, string) {
	t.Helper()
	dsn := PostgresDSN(t)
	schema := "t_" + strings.ReplaceAll(randomSuffix(), "-", "")
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatalf("testdb: open postgres: %v", err)
	}
	ctx := context.Background()
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		_ = admin.Close()
		t.Fatalf("testdb: create schema: %v", err)
	}
	db, err := OpenPostgresSchema(dsn, schema)
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	t.Cleanup(func() {
		_ = db.Close()
		_, _ = admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE")
		_ = admin.Close()
	})
	return db, schema
}

// OpenPostgresSchema opens dsn with search_path set to schema on every
// connection, so several *sql.DB (one per simulated instance) can share one
// test schema.
func OpenPostgresSchema(dsn, schema string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse dsn: %w", err)
	}
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["search_path"] = schema
	db := stdlib.OpenDB(*cfg)
	if err := db.Ping(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("ping postgres: %w", err)
	}
	return db, nil
}

func randomSuffix() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%x", b)
}
