package langflowdb_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/internal/ids"
	"github.com/keyflow-dev/keyflow/langflowdb"
	"github.com/keyflow-dev/keyflow/langflowdb/langflowtest"
	"github.com/keyflow-dev/keyflow/sqldialect"
)

// BenchmarkByHash measures one cache miss (KeyStore.ByHash) on Langflow
// SQLite databases holding 1 000 more token rows: a row with api_key_hash
// (one indexed query; 1.8 with hash), a hashless row found through the
// in-memory index (one query by ID; 1.8 without hash), and a full rescan of
// the hashless rows (what an unknown key costs at most once per
// LegacyRescanInterval). Every case also decrypts the row's token for its
// display prefix.
func BenchmarkByHash(b *testing.B) {
	ctx := context.Background()
	k := keyring(b)
	type fixture struct {
		db *sql.DB
		fx *langflowtest.Fixture
	}
	build := func(g langflowtest.Generation) fixture {
		db := dialects[0].open(b)
		fx, err := langflowtest.Create(ctx, db, sqldialect.SQLite, g, k)
		require.NoError(b, err)
		tx, err := db.Begin()
		require.NoError(b, err)
		uid := strings.ReplaceAll(fx.Superuser.ID, "-", "")
		for range 1000 {
			key, _ := apikey.Langflow.Generate()
			token, _ := k.Encrypt(key)
			_, err := tx.Exec(`INSERT INTO apikey (id, user_id, name, api_key, created_at, total_uses, is_active) VALUES (?, ?, 'bulk', ?, '2026-01-01 00:00:00.000000', 0, 1)`,
				strings.ReplaceAll(ids.New(), "-", ""), uid, token)
			require.NoError(b, err)
		}
		require.NoError(b, tx.Commit())
		return fixture{db, fx}
	}
	withHash, noHash := build(langflowtest.Gen18Hash), build(langflowtest.Gen18)

	for _, c := range []struct {
		name     string
		f        fixture
		key      string
		interval time.Duration
	}{
		{"hashed", withHash, withHash.fx.Keys[langflowtest.KeyHashed].Plaintext, 0},
		{"hashless-indexed", noHash, noHash.fx.Keys[langflowtest.KeyToken].Plaintext, 0},
		{"unknown-rescan-1000-rows", noHash, "sk-unknown", time.Nanosecond},
	} {
		b.Run(c.name, func(b *testing.B) {
			ldb, err := langflowdb.Open(ctx, c.f.db, langflowdb.Config{Dialect: sqldialect.SQLite, Keyring: k, LegacyRescanInterval: c.interval})
			require.NoError(b, err)
			s := ldb.Keys()
			h := apikey.HashKey(c.key)
			_, _ = s.ByHash(ctx, h) // builds the index
			for b.Loop() {
				_, _ = s.ByHash(ctx, h)
			}
		})
	}
}
