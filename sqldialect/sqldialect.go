// Package sqldialect names the SQL dialects keyflow's SQL stores speak. One
// Dialect value configures every store on the same database:
// apikey/sqlstore, variables/sqlstore and langflowdb all take it.
//
// The package imports no database driver: the program opens its *sql.DB
// with the driver it chooses (for example modernc.org/sqlite or
// github.com/jackc/pgx/v5/stdlib) and tells the stores which dialect it is.
package sqldialect

// Dialect is the SQL dialect of a database. The zero value is invalid, so a
// store never guesses.
type Dialect string

// The supported dialects.
const (
	SQLite   Dialect = "sqlite"   // SQLite 3.24 or later (e.g. modernc.org/sqlite)
	Postgres Dialect = "postgres" // PostgreSQL 11 or later (e.g. pgx's stdlib driver)
)

// Valid reports whether d is one of the supported dialects.
func (d Dialect) Valid() bool { return d == SQLite || d == Postgres }
