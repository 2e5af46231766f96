package sqlitedb_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"

	"github.com/keyflow-dev/keyflow/sqlitedb"
)

func TestOpenSettings(t *testing.T) {
	t.Parallel()
	db, err := sqlitedb.Open(context.Background(), filepath.Join(t.TempDir(), "k.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	for pragma, want := range map[string]string{
		"journal_mode": "wal",
		"busy_timeout": "5000",
		"foreign_keys": "1",
	} {
		var got string
		require.NoError(t, db.QueryRow("PRAGMA "+pragma).Scan(&got), pragma)
		assert.Equal(t, want, got, pragma)
	}
}

// TestImmediateTransactions: a transaction begun through the DSN holds the
// write lock before its first statement, so another connection that asks for
// it without waiting is refused.
func TestImmediateTransactions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "k.db")
	db, err := sqlitedb.Open(ctx, path)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tx.Rollback() })

	other, err := sql.Open(sqlitedb.Driver, "file:"+path) // no busy timeout: fail at once
	require.NoError(t, err)
	t.Cleanup(func() { _ = other.Close() })
	_, err = other.ExecContext(ctx, "BEGIN IMMEDIATE")
	require.Error(t, err, "the first transaction must already hold the write lock")
	assert.Contains(t, err.Error(), "locked")
}

func TestDSNEscapesURICharacters(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	name := "a?b#c%20d.db"
	db, err := sqlitedb.Open(context.Background(), filepath.Join(dir, name))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	_, err = db.Exec("CREATE TABLE t (x INTEGER)")
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(dir, name))
	assert.NoError(t, err, "the file keeps its literal name")
	assert.Equal(t, "file:x%3Fy%23z%2541.db?", sqlitedb.DSN("x?y#z%41.db")[:len("file:x%3Fy%23z%2541.db?")])
}

func TestOpenError(t *testing.T) {
	t.Parallel()
	_, err := sqlitedb.Open(context.Background(), filepath.Join(t.TempDir(), "missing-dir", "k.db"))
	assert.Error(t, err)
}
