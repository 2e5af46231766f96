// Package sqlitedb opens SQLite databases the way keyflow's SQL stores
// (apikey/sqlstore and variables/sqlstore) need them, with the pure-Go driver
// modernc.org/sqlite.
//
// The package imports no driver: the program imports modernc.org/sqlite
// (usually as _ "modernc.org/sqlite"), which registers itself under the name
// in Driver, and then calls Open, or sql.Open(sqlitedb.Driver, sqlitedb.DSN(path)).
//
// DSN asks every connection of the pool for:
//
//   - journal_mode(WAL): readers never wait for the writer, and a commit is one
//     append to the log, so verification (reads) keeps its speed while usage
//     counters and management calls write;
//   - busy_timeout(5000): a connection that finds the database locked by
//     another connection or process waits up to 5 s for it instead of failing
//     at once with SQLITE_BUSY;
//   - _txlock=immediate: every transaction takes the write lock when it
//     begins (BEGIN IMMEDIATE). A store transaction reads, then writes;
//     begun deferred, two of them can both read and then neither can upgrade
//     to write, and SQLite answers SQLITE_BUSY at once, without waiting for the
//     busy timeout. Immediate transactions queue on the timeout instead;
//   - foreign_keys(1): foreign-key constraints are enforced (SQLite leaves
//     them off by default), for hosts that reference keyflow's tables from
//     their own.
//
// Other drivers spell these settings differently; with
// github.com/mattn/go-sqlite3 the equivalent is
// "file:PATH?_busy_timeout=5000&_journal_mode=WAL&_txlock=immediate&_foreign_keys=1".
package sqlitedb

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// Driver is the database/sql driver name that modernc.org/sqlite registers.
const Driver = "sqlite"

// params are the settings DSN appends, in modernc.org/sqlite's syntax.
const params = "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_txlock=immediate"

// DSN returns the modernc.org/sqlite data source name for the database file
// at path (created when missing) with the settings described in the package
// comment. path is a file system path, relative or absolute; the characters
// that SQLite's URI syntax gives a meaning ('%', '?', '#') are escaped, so any
// file name works. An in-memory database is not supported: each connection of
// a pool would get its own.
func DSN(path string) string {
	return "file:" + escapePath(path) + params
}

// escapePath percent-encodes the characters that would end or alter the
// path of an SQLite "file:" URI.
func escapePath(path string) string {
	if !strings.ContainsAny(path, "%?#") {
		return path
	}
	var b strings.Builder
	for i := 0; i < len(path); i++ {
		switch c := path[i]; c {
		case '%', '?', '#':
			fmt.Fprintf(&b, "%%%02X", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// Open opens the SQLite database at path with DSN(path) and checks that it
// answers. The driver must be registered under Driver (import
// modernc.org/sqlite); otherwise Open returns database/sql's "unknown driver"
// error. The caller closes the *sql.DB.
func Open(ctx context.Context, path string) (*sql.DB, error) {
	db, err := sql.Open(Driver, DSN(path))
	if err != nil {
		return nil, fmt.Errorf("sqlitedb: %w", err)
	}
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("sqlitedb: open %s: %w", path, err)
	}
	return db, nil
}
