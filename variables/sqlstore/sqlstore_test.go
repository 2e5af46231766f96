package sqlstore_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/keyflowtest/dbtest"
	"github.com/keyflow-dev/keyflow/secrets"
	"github.com/keyflow-dev/keyflow/sqldialect"
	"github.com/keyflow-dev/keyflow/variables"
	"github.com/keyflow-dev/keyflow/variables/sqlstore"
	"github.com/keyflow-dev/keyflow/variables/storetest"
)

var dialects = []struct {
	name    string
	open    func(testing.TB) *sql.DB
	dialect sqldialect.Dialect
}{
	{"SQLite", dbtest.SQLite, sqldialect.SQLite},
	{"Postgres", dbtest.Postgres, sqldialect.Postgres},
}

func newStore(t *testing.T, open func(testing.TB) *sql.DB, d sqldialect.Dialect) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.New(context.Background(), open(t), sqlstore.Config{Dialect: d})
	require.NoError(t, err)
	return s
}

func TestConformance(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) variables.Store { return newStore(t, d.open, d.dialect) })
		})
	}
}

func TestNewOptions(t *testing.T) {
	db := dbtest.SQLite(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		db   *sql.DB
		cfg  sqlstore.Config
		ok   bool
	}{
		{"no dialect", db, sqlstore.Config{}, false},
		{"nil db", nil, sqlstore.Config{Dialect: sqldialect.SQLite}, false},
		{"bad table", db, sqlstore.Config{Dialect: sqldialect.SQLite, Table: "x; DROP TABLE y"}, false},
		{"custom table", db, sqlstore.Config{Dialect: sqldialect.SQLite, Table: "kf_variable"}, true},
		{"default table", db, sqlstore.Config{Dialect: sqldialect.SQLite}, true},
		{"default table again (idempotent)", db, sqlstore.Config{Dialect: sqldialect.SQLite}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := sqlstore.New(ctx, tc.db, tc.cfg)
			if tc.ok {
				assert.NoError(t, err)
			} else {
				assert.Error(t, err)
			}
		})
	}
}

// TestSchemaUniqueUserName checks the constraint Langflow lacks (docs/langflow-compatibility.md#variable-rules-and-messages) at
// the SQL level, not only through the Store.
func TestSchemaUniqueUserName(t *testing.T) {
	db := dbtest.SQLite(t)
	_, err := sqlstore.New(context.Background(), db, sqlstore.Config{Dialect: sqldialect.SQLite})
	require.NoError(t, err)
	ins := `INSERT INTO variable (id, user_id, name, value, type, created_at) VALUES (?, 'u', 'N', 'v', 'Generic', 0)`
	_, err = db.Exec(ins, "id-1")
	require.NoError(t, err)
	_, err = db.Exec(ins, "id-2")
	assert.Error(t, err)
}

// TestReencrypt rotates the master secret over the SQL store with
// secrets.Reencrypt: Credential values (and a legacy encrypted Generic value)
// move to the new secret, plaintext rows are not touched, and the Service
// reads everything back with a keyring that knows only the new secret.
func TestReencrypt(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			ctx := context.Background()
			store := newStore(t, d.open, d.dialect)
			oldKR, err := secrets.NewKeyring("old-secret-0123456789-abcdefghijkl")
			require.NoError(t, err)
			svc, err := variables.NewService(variables.ServiceConfig{Store: store, Keyring: oldKR})
			require.NoError(t, err)

			plain := map[string]string{}
			for i, name := range []string{"A", "B", "C", "D", "E"} {
				val := "secret-" + name
				plain[name] = val
				_, err := svc.Create(ctx, []string{"u1", "u2"}[i%2], variables.CreateInput{Name: name, Value: val})
				require.NoError(t, err)
			}
			g, err := svc.Create(ctx, "u1", variables.CreateInput{Name: "G", Value: "generic", Type: variables.Generic})
			require.NoError(t, err)
			legacyToken, err := oldKR.Encrypt("legacy generic")
			require.NoError(t, err)
			legacy := g
			legacy.ID, legacy.Name, legacy.Value = "00000000-0000-4000-8000-000000000000", "LEGACY", legacyToken
			require.NoError(t, store.Create(ctx, legacy))

			newKR, err := secrets.NewKeyring("new-secret-0123456789-abcdefghijkl", "old-secret-0123456789-abcdefghijkl")
			require.NoError(t, err)
			rep, err := secrets.Reencrypt(ctx, newKR, store, secrets.ReencryptOptions{BatchSize: 2})
			require.NoError(t, err)
			assert.Equal(t, 6, rep.Rotated)
			assert.Equal(t, 0, rep.Failed)

			onlyNew, err := secrets.NewKeyring("new-secret-0123456789-abcdefghijkl")
			require.NoError(t, err)
			svc2, err := variables.NewService(variables.ServiceConfig{Store: store, Keyring: onlyNew})
			require.NoError(t, err)
			for i, name := range []string{"A", "B", "C", "D", "E"} {
				got, err := svc2.Value(ctx, []string{"u1", "u2"}[i%2], name)
				require.NoError(t, err)
				assert.Equal(t, plain[name], got)
			}
			got, err := svc2.Value(ctx, "u1", "LEGACY")
			require.NoError(t, err)
			assert.Equal(t, "legacy generic", got)
			got, err = svc2.Value(ctx, "u1", "G")
			require.NoError(t, err)
			assert.Equal(t, "generic", got)

			// A second pass finds nothing left to rotate.
			rep, err = secrets.Reencrypt(ctx, onlyNew, store, secrets.ReencryptOptions{})
			require.NoError(t, err)
			assert.Equal(t, 0, rep.Rotated)
			assert.Equal(t, 6, rep.Current)
		})
	}
}

// TestForeignTable: a table of the same name with another schema (such as
// Langflow's own "variable" table) is reported, not silently used.
func TestForeignTable(t *testing.T) {
	db := dbtest.SQLite(t)
	_, err := db.Exec(`CREATE TABLE variable (id CHAR(32) PRIMARY KEY, name VARCHAR NOT NULL, value VARCHAR NOT NULL,
		type VARCHAR, default_fields JSON, created_at DATETIME, updated_at DATETIME, user_id CHAR(32) NOT NULL)`)
	require.NoError(t, err)
	_, err = sqlstore.New(context.Background(), db, sqlstore.Config{Dialect: sqldialect.SQLite})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Config.Table")
	s, err := sqlstore.New(context.Background(), db, sqlstore.Config{Dialect: sqldialect.SQLite, Table: "keyflow_variable"})
	require.NoError(t, err)
	require.NoError(t, s.Close())
}

// TestPostgresOrderIgnoresCollation: ListByUser breaks CreatedAt ties by ID
// in byte order, as SQLite and the memory store do, even where PostgreSQL's
// collation (here ICU's root locale, like a database created with en_US)
// sorts "a" before "B".
func TestPostgresOrderIgnoresCollation(t *testing.T) {
	db := dbtest.Postgres(t)
	ctx := context.Background()
	var icu bool
	require.NoError(t, db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_collation WHERE collname = 'und-x-icu')`).Scan(&icu))
	if !icu {
		t.Skip("this PostgreSQL has no ICU collations")
	}
	_, err := db.ExecContext(ctx, `CREATE TABLE variable (id TEXT COLLATE "und-x-icu" NOT NULL PRIMARY KEY,
		user_id TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL, type TEXT NOT NULL,
		default_fields TEXT NOT NULL DEFAULT '[]', created_at BIGINT NOT NULL, updated_at BIGINT,
		origin TEXT NOT NULL DEFAULT 'user')`)
	require.NoError(t, err)
	s, err := sqlstore.New(ctx, db, sqlstore.Config{Dialect: sqldialect.Postgres})
	require.NoError(t, err)
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, id := range []string{"a-lower", "B-upper"} {
		require.NoError(t, s.Create(ctx, variables.Variable{ID: id, UserID: "u", Name: id, Value: "gAAAAA" + id,
			Type: variables.Credential, DefaultFields: []string{}, CreatedAt: created, Origin: variables.OriginUser}))
	}
	list, err := s.ListByUser(ctx, "u")
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, []string{"B-upper", "a-lower"}, []string{list[0].ID, list[1].ID})
	tokens, err := s.ListCiphertexts(ctx, "", 0)
	require.NoError(t, err)
	require.Len(t, tokens, 2)
	assert.Equal(t, []string{"B-upper", "a-lower"}, []string{tokens[0].ID, tokens[1].ID})
}

func TestChangeFeedConformance(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			storetest.RunChangeFeed(t, func(t *testing.T) storetest.FeedStore { return newStore(t, d.open, d.dialect) })
		})
	}
}
