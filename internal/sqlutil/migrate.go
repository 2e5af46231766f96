package sqlutil

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/keyflow-dev/keyflow/sqldialect"
)

// Migration describes the versioned schema of one store's table, for
// Migrate.
type Migration struct {
	Dialect sqldialect.Dialect
	// Package prefixes every error: "sqlstore", "audit/sqlstore".
	Package string
	// Lock names the PostgreSQL advisory lock (see LockMigrations).
	Lock string
	// Table is the store's table; the applied versions are kept in
	// Table+"_migrations".
	Table string
	// Steps[i] brings the schema from version i to i+1.
	Steps [][]string
	// Hint is added to the error of a failed step, such as " (if the table
	// belongs to another program, choose Config.Table)"; may be "".
	Hint string
}

// Migrate applies the steps of m not applied yet, in one transaction (under
// the advisory lock on PostgreSQL, so that processes starting together
// migrate once), and records each version applied. A schema newer than
// m.Steps is an error, and is left untouched.
func Migrate(ctx context.Context, db *sql.DB, m Migration) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: migrate: %w", m.Package, err)
	}
	defer func() { _ = tx.Rollback() }()
	if m.Dialect == sqldialect.Postgres {
		if err := LockMigrations(ctx, tx, m.Lock); err != nil {
			return fmt.Errorf("%s: migrate: lock: %w", m.Package, err)
		}
	}
	versions := m.Table + "_migrations"
	if _, err := tx.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS "+versions+" (version INTEGER NOT NULL PRIMARY KEY)"); err != nil {
		return fmt.Errorf("%s: migrate: %w", m.Package, err)
	}
	var current sql.NullInt64
	if err := tx.QueryRowContext(ctx, "SELECT MAX(version) FROM "+versions).Scan(&current); err != nil {
		return fmt.Errorf("%s: migrate: %w", m.Package, err)
	}
	if int(current.Int64) > len(m.Steps) {
		return fmt.Errorf("%s: schema version %d of table %s is newer than this program's (%d)", m.Package, current.Int64, m.Table, len(m.Steps))
	}
	insertVersion := "INSERT INTO " + versions + " (version) VALUES (?)"
	if m.Dialect == sqldialect.Postgres {
		insertVersion = Dollar(insertVersion)
	}
	for v := int(current.Int64); v < len(m.Steps); v++ {
		for _, stmt := range m.Steps[v] {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("%s: migrate table %s to version %d%s: %w", m.Package, m.Table, v+1, m.Hint, err)
			}
		}
		if _, err := tx.ExecContext(ctx, insertVersion, v+1); err != nil {
			return fmt.Errorf("%s: migrate: %w", m.Package, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: migrate: %w", m.Package, err)
	}
	return nil
}
