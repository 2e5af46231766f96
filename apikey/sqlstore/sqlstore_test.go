package sqlstore_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/apikey/sqlstore"
	"github.com/keyflow-dev/keyflow/apikey/storetest"
	"github.com/keyflow-dev/keyflow/keyflowtest/dbtest"
	"github.com/keyflow-dev/keyflow/sqldialect"
)

var dialects = []struct {
	name    string
	dialect sqldialect.Dialect
	open    func(testing.TB) *sql.DB
}{
	{"SQLite", sqldialect.SQLite, dbtest.SQLite},
	{"Postgres", sqldialect.Postgres, dbtest.Postgres},
}

func TestConformance(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) apikey.Store {
				s, err := sqlstore.New(context.Background(), d.open(t), sqlstore.Config{Dialect: d.dialect})
				require.NoError(t, err)
				t.Cleanup(func() { assert.NoError(t, s.Close()) })
				return s
			})
		})
	}
}

func TestChangeFeedConformance(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			storetest.RunChangeFeed(t, func(t *testing.T) storetest.FeedStore {
				s, err := sqlstore.New(context.Background(), d.open(t), sqlstore.Config{Dialect: d.dialect})
				require.NoError(t, err)
				return s
			})
		})
	}
}

func TestNewOptions(t *testing.T) {
	ctx := context.Background()
	db := dbtest.SQLite(t)
	for _, tc := range []struct {
		name string
		cfg  sqlstore.Config
	}{
		{"no dialect", sqlstore.Config{}},
		{"unknown dialect", sqlstore.Config{Dialect: "mysql"}},
		{"table with a space", sqlstore.Config{Dialect: sqldialect.SQLite, Table: "api key"}},
		{"table with a quote", sqlstore.Config{Dialect: sqldialect.SQLite, Table: `x"; DROP TABLE y; --`}},
		{"table starting with a digit", sqlstore.Config{Dialect: sqldialect.SQLite, Table: "1keys"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := sqlstore.New(ctx, db, tc.cfg)
			assert.Error(t, err)
		})
	}
	_, err := sqlstore.New(ctx, nil, sqlstore.Config{Dialect: sqldialect.SQLite})
	assert.Error(t, err)
}

// TestMigrateTwice: a second New on the same database (a restart, or a
// second process) finds the schema in place and keeps the data.
func TestMigrateTwice(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			ctx := context.Background()
			db := d.open(t)
			s1, err := sqlstore.New(ctx, db, sqlstore.Config{Dialect: d.dialect, Table: "keys"})
			require.NoError(t, err)
			m, err := apikey.NewManager(apikey.Config{Store: s1})
			require.NoError(t, err)
			key, rec, err := m.Create(ctx, "user", "k", apikey.CreateOptions{})
			require.NoError(t, err)
			require.NoError(t, m.Close())

			s2, err := sqlstore.New(ctx, db, sqlstore.Config{Dialect: d.dialect, Table: "keys"})
			require.NoError(t, err)
			got, err := s2.ByHash(ctx, apikey.HashKey(key))
			require.NoError(t, err)
			assert.Equal(t, rec.ID, got.ID)
			var version int
			require.NoError(t, db.QueryRowContext(ctx, "SELECT MAX(version) FROM keys_migrations").Scan(&version))
			assert.Equal(t, 4, version)
		})
	}
}

// TestRefusesForeignTable: a table of the same name created by another
// program, such as Langflow's apikey table (docs/langflow-compatibility.md#api-key-storage), is not adopted.
func TestRefusesForeignTable(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			ctx := context.Background()
			db := d.open(t)
			_, err := db.ExecContext(ctx, `CREATE TABLE apikey (id CHAR(32) PRIMARY KEY, name VARCHAR, api_key VARCHAR NOT NULL, api_key_hash VARCHAR, user_id CHAR(32))`)
			require.NoError(t, err)
			_, err = sqlstore.New(ctx, db, sqlstore.Config{Dialect: d.dialect})
			require.Error(t, err)
			assert.Contains(t, err.Error(), "Config.Table")
			// Nothing of keyflow's was left behind.
			var n int
			require.NoError(t, db.QueryRowContext(ctx, "SELECT COUNT(*) FROM apikey").Scan(&n))
			_, err = sqlstore.New(ctx, db, sqlstore.Config{Dialect: d.dialect, Table: "keyflow_apikey"})
			assert.NoError(t, err)
		})
	}
}

// TestHashStoredAsHex: the hash column holds Langflow's api_key_hash form,
// sha256(key).hexdigest() (docs/langflow-compatibility.md#api-key-storage), and no column holds the key.
func TestHashStoredAsHex(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			ctx := context.Background()
			db := d.open(t)
			s, err := sqlstore.New(ctx, db, sqlstore.Config{Dialect: d.dialect})
			require.NoError(t, err)
			m, err := apikey.NewManager(apikey.Config{Store: s})
			require.NoError(t, err)
			t.Cleanup(func() { _ = m.Close() })
			const key = "sk-2F6qAva9ARClnm5EhopkmBUT4AVeVJga2JfSAzi782Y" // made by Langflow's create_api_key
			_, err = m.Import(ctx, "user", "imported", key, apikey.CreateOptions{})
			require.NoError(t, err)

			rows, err := db.QueryContext(ctx, "SELECT * FROM apikey")
			require.NoError(t, err)
			defer func() { _ = rows.Close() }()
			cols, err := rows.Columns()
			require.NoError(t, err)
			require.True(t, rows.Next())
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			require.NoError(t, rows.Scan(ptrs...))
			for i, c := range cols {
				v := vals[i]
				if b, ok := v.([]byte); ok {
					v = string(b)
				}
				if c == "api_key_hash" {
					assert.Equal(t, "ce0bc9f731b5f62d0c47dacc939eaae6f12c141d58d8fdd53237c9bb8cd1f92f", v)
				}
				if s, ok := v.(string); ok {
					assert.NotContains(t, s, key[8:], "column %s holds the key", c)
				}
			}
		})
	}
}

func TestLimiterConformance(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			storetest.RunLimiter(t, func(t *testing.T) apikey.Limiter {
				s, err := sqlstore.New(context.Background(), d.open(t), sqlstore.Config{Dialect: d.dialect})
				require.NoError(t, err)
				return s
			})
		})
	}
}
