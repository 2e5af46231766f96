package langflowdb_test

import (
	"context"
	"testing"

	"github.com/fernet/fernet-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/keyflowtest/dbtest"
	"github.com/keyflow-dev/keyflow/langflowdb"
	"github.com/keyflow-dev/keyflow/langflowdb/langflowtest"
	"github.com/keyflow-dev/keyflow/secrets"
	"github.com/keyflow-dev/keyflow/sqldialect"
	"github.com/keyflow-dev/keyflow/variables"
)

// The Fernet keys CPython derives from the secret "langflow"
// (secrets/testdata/langflow_fernet_vectors.json): Langflow ≤ 1.10.0 seeds
// its PRNG with a short secret, 1.10.1 and later hash it.
const (
	shortSecret     = "langflow"
	shortLegacyKey  = "R-KBaWyIbRcHX_NjyOIUCW0JjZFvVVJntidEFekl8VA="
	shortCurrentKey = "0hP1vRJdfD5zNjigjtXiu91oeVR9i4xk9Mdnqa9clZU="
)

// opensWith reports whether token opens under the Fernet key (base64) alone,
// as the Langflow version deriving that key would open it.
func opensWith(t *testing.T, key, token string) bool {
	t.Helper()
	k, err := fernet.DecodeKey(key)
	require.NoError(t, err)
	return fernet.VerifyAndDecrypt([]byte(token), 0, []*fernet.Key{k}) != nil
}

// TestShortSecretFollowsLangflow: with a secret shorter than 32 characters,
// keyflow encrypts new key tokens and Credential values with the key the
// Langflow beside it uses, found from the newest tokens in its tables, so
// that Langflow ≤ 1.10.0 (every 1.8 database) opens them as well as newer
// versions do.
func TestShortSecretFollowsLangflow(t *testing.T) {
	short, err := secrets.NewKeyring(shortSecret)
	require.NoError(t, err)
	legacy, err := short.WithEncryption(secrets.DerivationLegacyMT19937)
	require.NoError(t, err)
	for _, d := range dialects {
		for _, c := range []struct {
			name     string
			writer   *secrets.Keyring // the Langflow version that made the fixture's tokens
			mode     langflowdb.ShortSecret
			empty    bool
			want     secrets.Derivation
			wantOpen string
		}{
			{"langflow-1.10.0-data", legacy, langflowdb.ShortSecretDetect, false, secrets.DerivationLegacyMT19937, shortLegacyKey},
			{"langflow-1.10.1-data", short, langflowdb.ShortSecretDetect, false, secrets.DerivationSHA256, shortCurrentKey},
			{"no-tokens", nil, langflowdb.ShortSecretDetect, true, secrets.DerivationSHA256, shortCurrentKey},
			{"forced-legacy", nil, langflowdb.ShortSecretLegacy, true, secrets.DerivationLegacyMT19937, shortLegacyKey},
			{"forced-current", legacy, langflowdb.ShortSecretCurrent, false, secrets.DerivationSHA256, shortCurrentKey},
		} {
			t.Run(d.name+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				ctx := context.Background()
				db := d.open(t)
				g := langflowtest.Gen18 // keys as tokens only: Langflow decrypts them to verify
				if c.empty {
					for _, stmt := range langflowtest.Schema(g, d.dialect) {
						_, err := db.ExecContext(ctx, stmt)
						require.NoError(t, err)
					}
				} else {
					_, err := langflowtest.Create(ctx, db, d.dialect, g, c.writer)
					require.NoError(t, err)
				}
				ldb, err := langflowdb.Open(ctx, db, langflowdb.Config{Dialect: d.dialect, Keyring: short, KeyStorage: langflowdb.StorageToken, ShortSecret: c.mode})
				require.NoError(t, err)
				assert.Equal(t, c.want, ldb.Schema().Encryption)
				if c.empty {
					return // no user to own a key
				}
				users, err := ldb.Users(ctx)
				require.NoError(t, err)
				var su string
				for _, u := range users {
					if u.Username == "langflow" {
						su = u.ID
					}
				}
				require.NotEmpty(t, su)
				m, err := apikey.NewManager(apikey.Config{Store: ldb.Keys(), FlushInterval: -1})
				require.NoError(t, err)
				defer m.Close()
				_, rec, err := m.Create(ctx, su, "keyflow", apikey.CreateOptions{})
				require.NoError(t, err)
				_, _, _, stored, err := langflowtest.KeyRow(ctx, db, d.dialect, g, rec.ID)
				require.NoError(t, err)
				assert.True(t, opensWith(t, c.wantOpen, stored), "the key token opens under the chosen key")

				vs, err := ldb.Variables()
				require.NoError(t, err)
				svc, err := variables.NewService(variables.ServiceConfig{Store: vs, Keyring: ldb.Keyring()})
				require.NoError(t, err)
				v, err := svc.Create(ctx, su, variables.CreateInput{Name: "KF_SHORT", Value: "v"})
				require.NoError(t, err)
				row, err := vs.Get(ctx, su, v.ID)
				require.NoError(t, err)
				assert.True(t, opensWith(t, c.wantOpen, row.Value), "the Credential opens under the chosen key")
				// Whatever it writes, keyflow reads both kinds.
				got, err := svc.Value(ctx, su, "OPENAI_API_KEY")
				require.NoError(t, err)
				assert.Equal(t, "sk-openai-fixture-value", got)
			})
		}
	}
	t.Run("long-secret", func(t *testing.T) {
		db := dbtest.SQLite(t)
		for _, stmt := range langflowtest.Schema(langflowtest.GenNewest, sqldialect.SQLite) {
			_, err := db.Exec(stmt)
			require.NoError(t, err)
		}
		ldb, err := langflowdb.Open(context.Background(), db, langflowdb.Config{Dialect: sqldialect.SQLite, Keyring: keyring(t), ShortSecret: langflowdb.ShortSecretLegacy})
		require.NoError(t, err)
		assert.Equal(t, secrets.DerivationBase64, ldb.Schema().Encryption, "a long secret has one key for every version")
	})
}
