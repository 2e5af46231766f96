package testdb

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSQLiteOpensAndWrites(t *testing.T) {
	db := SQLite(t)
	_, err := db.Exec("CREATE TABLE x (v TEXT)")
	require.NoError(t, err)
	_, err = db.Exec("INSERT INTO x VALUES ('a')")
	require.NoError(t, err)
	var n int
	require.NoError(t, db.QueryRow("SELECT count(*) FROM x").Scan(&n))
	require.Equal(t, 1, n)
}

func TestPostgresSchemasAreIsolated(t *testing.T) {
	a, b := Postgres(t), Postgres(t)
	_, err := a.Exec("CREATE TABLE x (v TEXT)")
	require.NoError(t, err)
	_, err = b.Exec("CREATE TABLE x (v TEXT)")
	require.NoError(t, err, "a second test's schema must not see the first's table")
}
