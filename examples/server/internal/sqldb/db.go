package sqldb

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
)

// DB is a database with its SQL dialect, as the server's own tables (users,
// flows, login tokens) use it. It is safe for concurrent use.
type DB struct {
	*sql.DB
	Postgres bool
}

// Q rewrites ? placeholders to $1, $2, … for PostgreSQL.
func (db DB) Q(query string) string {
	if !db.Postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Types returns the dialect's column types for timestamps and IDs.
func (db DB) Types() (timestamp, id string) {
	if db.Postgres {
		return "TIMESTAMPTZ", "VARCHAR(36)"
	}
	return "TIMESTAMP", "TEXT"
}

// Exec runs schema statements in order.
func (db DB) Exec(ctx context.Context, stmts ...string) error {
	for _, stmt := range stmts {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("create schema: %w", err)
		}
	}
	return nil
}

// AddColumn adds table.column when it is missing.
func (db DB) AddColumn(ctx context.Context, table, column, def string) error {
	if db.Postgres {
		_, err := db.ExecContext(ctx, `ALTER TABLE `+table+` ADD COLUMN IF NOT EXISTS `+column+` `+def)
		if err != nil {
			return fmt.Errorf("add %s.%s: %w", table, column, err)
		}
		return nil
	}
	var n int
	err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM pragma_table_info(?) WHERE name = ?`, table, column).Scan(&n)
	if err != nil {
		return fmt.Errorf("add %s.%s: %w", table, column, err)
	}
	if n > 0 {
		return nil
	}
	if _, err := db.ExecContext(ctx, `ALTER TABLE `+table+` ADD COLUMN `+column+` `+def); err != nil {
		return fmt.Errorf("add %s.%s: %w", table, column, err)
	}
	return nil
}

// NullString is s, or NULL when empty.
func NullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}
