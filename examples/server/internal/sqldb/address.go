// Package sqldb is the reference server's database plumbing: where the
// database is (ParseURL), the SQLite file's mode, the locks that order
// keyflow processes sharing one database (the database-use lock and the
// start-up lock), and the small helpers every table of the server uses (DB).
package sqldb

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/keyflow-dev/keyflow/sqldialect"
	"github.com/keyflow-dev/keyflow/sqlitedb"
)

// Address is a resolved --database-url.
type Address struct {
	Driver string // "sqlite" or "pgx"
	DSN    string
	// Postgres reports whether the SQL dialect is PostgreSQL.
	Postgres bool
	// Display is the URL without a password, for logs.
	Display string
}

// ParseURL understands Langflow's forms: "" (an SQLite file in the config
// dir), sqlite:///relative.db, sqlite:////absolute.db (SQLAlchemy's), and
// postgres:// or postgresql:// (also postgresql+psycopg://).
func ParseURL(raw, configDir string) (Address, error) {
	if raw == "" {
		raw = "sqlite:///" + filepath.Join(configDir, "keyflow.db")
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		// Not echoed: without "://" a password cannot be told apart.
		return Address{}, errors.New("database URL: want sqlite:///path or postgres://…")
	}
	scheme, _, _ = strings.Cut(strings.ToLower(scheme), "+") // postgresql+psycopg → postgresql
	switch scheme {
	case "sqlite":
		path := strings.TrimPrefix(rest, "/") // sqlite:///a.db → a.db; sqlite:////abs → /abs
		path, _, _ = strings.Cut(path, "?")
		if path == "" || path == ":memory:" {
			return Address{}, errors.New("database URL: an SQLite URL needs a file path (sqlite:///path/to.db)")
		}
		return Address{Driver: sqlitedb.Driver, DSN: sqlitedb.DSN(path), Display: "sqlite:///" + path}, nil
	case "postgres", "postgresql":
		dsn := "postgres://" + rest
		return Address{Driver: "pgx", DSN: dsn, Postgres: true, Display: RedactURL(dsn)}, nil
	}
	return Address{}, fmt.Errorf("database URL: unsupported scheme %q (want sqlite or postgres)", scheme)
}

// RedactURL hides a password in a URL for logs and errors: the user info's,
// and a password query parameter (which pgx also reads).
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// Dialect is the SQL dialect of the database.
func (a Address) Dialect() sqldialect.Dialect {
	if a.Postgres {
		return sqldialect.Postgres
	}
	return sqldialect.SQLite
}

// SQLitePath is the database file of an SQLite database (ParseURL's
// display form is sqlite:///<path>).
func (a Address) SQLitePath() string {
	return strings.TrimPrefix(a.Display, "sqlite:///")
}
