package keyvars

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey/redislimit"
	keysql "github.com/keyflow-dev/keyflow/apikey/sqlstore"
	"github.com/keyflow-dev/keyflow/examples/server/internal/config"
	"github.com/keyflow-dev/keyflow/examples/server/internal/sqldb"
	"github.com/keyflow-dev/keyflow/keyflowtest/dbtest"
	"github.com/keyflow-dev/keyflow/sqldialect"
)

// --limiter selects where rate limits are counted; the default follows the
// database (in process on SQLite, the database on PostgreSQL).
func TestNewLimiter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.db")
	db, err := dbtest.OpenSQLite(path)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	store, err := keysql.New(context.Background(), db, keysql.Config{Dialect: sqldialect.SQLite})
	require.NoError(t, err)
	sqlite, err := sqldb.ParseURL("sqlite:///"+path, "")
	require.NoError(t, err)
	postgres := sqlite
	postgres.Postgres = true

	for _, tc := range []struct {
		name    string
		limiter string
		addr    sqldb.Address
		check   func(t *testing.T, lim any)
	}{
		{"default on SQLite: in process", "", sqlite, func(t *testing.T, lim any) { assert.Nil(t, lim) }},
		{"default on PostgreSQL: the database", "", postgres, func(t *testing.T, lim any) { assert.Same(t, store, lim) }},
		{"memory", config.LimiterMemory, postgres, func(t *testing.T, lim any) { assert.Nil(t, lim) }},
		{"database", config.LimiterDatabase, sqlite, func(t *testing.T, lim any) { assert.Same(t, store, lim) }},
		{"redis", "redis://127.0.0.1:1/0", sqlite, func(t *testing.T, lim any) { assert.IsType(t, &redislimit.Limiter{}, lim) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lim, closeLim, err := newLimiter(config.Config{Limiter: tc.limiter}, tc.addr, store)
			require.NoError(t, err)
			t.Cleanup(closeLim)
			if lim == nil {
				tc.check(t, nil)
				return
			}
			tc.check(t, lim)
		})
	}
	_, _, err = newLimiter(config.Config{Limiter: "redis://:bad:port"}, sqlite, store)
	assert.Error(t, err)
}
