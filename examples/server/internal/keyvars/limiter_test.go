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

	// A Redis URL that does not parse: the error (printed by the CLI) never
	// repeats the password. It used to repeat the whole URL.
	for _, bad := range []string{
		"redis://user:s3cretpw@127.0.0.1:badport/0",
		"redis://user:s3cret%zzpw@127.0.0.1:6379/0",
		"redis://:s3cretpw@127.0.0.1:6379/abc",
		"rediss://user:s3cretpw@127.0.0.1:6379/0/extra",
		"redis://user:s3cretpw@127.0.0.1:6379/0?foo=bar",
	} {
		_, _, err := newLimiter(config.Config{Limiter: bad}, sqlite, store)
		require.Error(t, err, bad)
		assert.NotContains(t, err.Error(), "s3cret", bad)
		assert.Contains(t, err.Error(), "KEYFLOW_LIMITER", bad)
	}
}
