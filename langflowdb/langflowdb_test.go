package langflowdb_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/internal/ids"
	"github.com/keyflow-dev/keyflow/internal/sqlutil"
	"github.com/keyflow-dev/keyflow/keyflowtest/dbtest"
	"github.com/keyflow-dev/keyflow/langflowdb"
	"github.com/keyflow-dev/keyflow/langflowdb/langflowtest"
	"github.com/keyflow-dev/keyflow/secrets"
	"github.com/keyflow-dev/keyflow/sqldialect"
	"github.com/keyflow-dev/keyflow/variables"
)

// secret is the fixtures' LANGFLOW_SECRET_KEY (secrets.token_urlsafe(32)).
const secret = "dBuuRmX0a5Gx3kqzT0C7mB1g7eYcY2Jq2Vd9sRxk2M0"

func keyring(t testing.TB) *secrets.Keyring {
	t.Helper()
	k, err := secrets.NewKeyring(secret)
	require.NoError(t, err)
	return k
}

// env is one Langflow database of one generation, with a Manager and a
// Service on it.
type env struct {
	db      *sql.DB
	dialect sqldialect.Dialect
	fx      *langflowtest.Fixture
	ldb     *langflowdb.DB
	keys    *langflowdb.KeyStore
	vars    *langflowdb.VariableStore
	clock   *clock
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type dialect struct {
	name    string
	dialect sqldialect.Dialect
	open    func(testing.TB) *sql.DB
}

var dialects = []dialect{
	{"sqlite", sqldialect.SQLite, func(t testing.TB) *sql.DB { return dbtest.SQLite(t) }},
	{"postgres", sqldialect.Postgres, func(t testing.TB) *sql.DB { return dbtest.Postgres(t) }},
}

func newEnv(t *testing.T, d dialect, g langflowtest.Generation) *env {
	t.Helper()
	ctx := context.Background()
	db := d.open(t)
	fx, err := langflowtest.Create(ctx, db, d.dialect, g, keyring(t))
	require.NoError(t, err)
	ldb, err := langflowdb.Open(ctx, db, langflowdb.Config{Dialect: d.dialect, Keyring: keyring(t)})
	require.NoError(t, err)
	vars, err := ldb.Variables()
	require.NoError(t, err)
	return &env{db: db, dialect: d.dialect, fx: fx, ldb: ldb, keys: ldb.Keys(), vars: vars,
		clock: &clock{t: time.Now().UTC()}}
}

func (e *env) manager(t *testing.T) *apikey.Manager {
	t.Helper()
	m, err := apikey.NewManager(apikey.Config{Store: e.keys, Now: e.clock.Now, FlushInterval: -1})
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// forEach runs fn for every dialect and generation, in parallel.
func forEach(t *testing.T, fn func(t *testing.T, e *env)) {
	for _, d := range dialects {
		for _, g := range langflowtest.Generations {
			t.Run(d.name+"/"+g.String(), func(t *testing.T) {
				t.Parallel()
				fn(t, newEnv(t, d, g))
			})
		}
	}
}

func TestSchemaDetection(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		s := e.ldb.Schema()
		g := e.fx.Generation
		assert.Equal(t, g.HasHash(), s.HasAPIKeyHash)
		assert.Equal(t, g.HasExpiry(), s.HasExpiresAt)
		assert.Equal(t, g.HasCategory(), s.HasCategory)
		want := map[langflowtest.Generation]langflowdb.KeyStorage{
			langflowtest.Gen17: langflowdb.StoragePlaintext, langflowtest.Gen18: langflowdb.StorageToken,
			langflowtest.Gen18Hash: langflowdb.StorageTokenAndHash, langflowtest.GenNewest: langflowdb.StorageTokenAndHash,
		}[g]
		assert.Equal(t, want, s.KeyStorage, s.Generation())
	})
}

func TestOpenRefusesOtherDatabases(t *testing.T) {
	db := dbtest.SQLite(t)
	_, err := langflowdb.Open(context.Background(), db, langflowdb.Config{Dialect: sqldialect.SQLite, Keyring: keyring(t)})
	require.ErrorIs(t, err, langflowdb.ErrNotLangflow)
	_, err = langflowdb.Open(context.Background(), db, langflowdb.Config{})
	require.Error(t, err)
	_, err = langflowdb.Open(context.Background(), db, langflowdb.Config{Dialect: sqldialect.SQLite, Keyring: &secrets.Keyring{}})
	require.ErrorContains(t, err, "Keyring was not made by secrets.NewKeyring", "a zero Keyring is refused, not a store whose every token fails")
}

func TestVerifyEveryGeneration(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		// A token row without a hash verifies only with the secret that made
		// it (checked first: a verification backfills the hash).
		if e.fx.Generation >= langflowtest.Gen18 {
			other, err := secrets.NewKeyring("another-secret")
			require.NoError(t, err)
			ldb, err := langflowdb.Open(ctx, e.db, langflowdb.Config{Dialect: e.dialect, Keyring: other})
			require.NoError(t, err)
			m2, err := apikey.NewManager(apikey.Config{Store: ldb.Keys(), FlushInterval: -1})
			require.NoError(t, err)
			defer m2.Close()
			_, err = m2.Verify(ctx, e.fx.Keys[langflowtest.KeyToken].Plaintext)
			require.ErrorIs(t, err, apikey.ErrInvalid)
		}
		m := e.manager(t)
		for _, label := range e.fx.Valid() {
			k := e.fx.Keys[label]
			p, err := m.Verify(ctx, k.Plaintext)
			require.NoError(t, err, label)
			assert.Equal(t, k.UserID, p.UserID, label)
			assert.Equal(t, k.ID, p.KeyID, label)
		}
		wantErr := map[string]error{
			langflowtest.KeyInactive: apikey.ErrInactive,
			langflowtest.KeyDeleted:  apikey.ErrInvalid,
			langflowtest.KeyShared:   apikey.ErrInvalid,
			langflowtest.KeyExpired:  apikey.ErrExpired,
		}
		for _, label := range e.fx.Refused() {
			_, err := m.Verify(ctx, e.fx.Keys[label].Plaintext)
			require.ErrorIs(t, err, wantErr[label], label)
		}
	})
}

func TestHashBackfilled(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		if !e.fx.Generation.HasHash() {
			t.Skip("no api_key_hash column: nothing to backfill")
		}
		ctx := context.Background()
		m := e.manager(t)
		for _, label := range []string{langflowtest.KeyPlain, langflowtest.KeyToken} {
			k := e.fx.Keys[label]
			_, _, hash, _, err := langflowtest.KeyRow(ctx, e.db, e.dialect, e.fx.Generation, k.ID)
			require.NoError(t, err)
			require.Empty(t, hash, "%s: the fixture row starts without a hash", label)
			_, err = m.Verify(ctx, k.Plaintext)
			require.NoError(t, err, label)
			_, _, hash, _, err = langflowtest.KeyRow(ctx, e.db, e.dialect, e.fx.Generation, k.ID)
			require.NoError(t, err)
			assert.Equal(t, apikey.HashKey(k.Plaintext).String(), hash, label)
		}
		// The inactive key is not backfilled: Langflow backfills on success only.
		// (Its row has a hash in this generation already; nothing to check.)
	})
}

// TestRevocationBound: a key deleted or deactivated in Langflow's table is
// refused once MaxCacheAge (1 s) has passed since it was last read, even
// though the Manager cached it as valid. The clock is the Manager's.
func TestRevocationBound(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		m := e.manager(t)
		del, off := e.fx.Keys[langflowtest.KeyPlain], e.fx.Keys[langflowtest.KeyAlice]
		for _, k := range []langflowtest.Key{del, off} {
			_, err := m.Verify(ctx, k.Plaintext)
			require.NoError(t, err)
		}
		require.NoError(t, langflowtest.DeleteKey(ctx, e.db, e.dialect, del.ID))
		require.NoError(t, langflowtest.SetActive(ctx, e.db, e.dialect, off.ID, false))
		// Still cached: the change is not seen yet (this shows the cache is used).
		_, err := m.Verify(ctx, del.Plaintext)
		require.NoError(t, err, "cached verdict within the bound")
		e.clock.Advance(langflowdb.DefaultMaxCacheAge)
		_, err = m.Verify(ctx, del.Plaintext)
		require.ErrorIs(t, err, apikey.ErrInvalid, "deleted key after the bound")
		_, err = m.Verify(ctx, off.Plaintext)
		require.ErrorIs(t, err, apikey.ErrInactive, "deactivated key after the bound")
	})
}

func TestUsageWrittenAsLangflowReadsIt(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		m := e.manager(t)
		k := e.fx.Keys[langflowtest.KeyPlain]
		for range 3 {
			_, err := m.Verify(ctx, k.Plaintext)
			require.NoError(t, err)
		}
		require.NoError(t, m.Flush(ctx))
		uses, last, _, _, err := langflowtest.KeyRow(ctx, e.db, e.dialect, e.fx.Generation, k.ID)
		require.NoError(t, err)
		assert.Equal(t, k.Uses+3, uses)
		require.NotNil(t, last)
		assert.WithinDuration(t, e.clock.Now(), *last, time.Second)
		// Listing shows the counts.
		recs, err := m.List(ctx, k.UserID)
		require.NoError(t, err)
		for _, r := range recs {
			if r.ID == k.ID {
				assert.Equal(t, k.Uses+3, r.TotalUses)
				assert.Equal(t, k.Plaintext[:8], r.Prefix)
			}
		}
	})
}

// TestCreatedKeysAreLangflowRows: a key made through the Manager is stored
// in the generation's own form, so Langflow accepts it.
func TestCreatedKeysAreLangflowRows(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		m := e.manager(t)
		key, rec, err := m.Create(ctx, e.fx.Alice.ID, "made by keyflow", apikey.CreateOptions{})
		require.NoError(t, err)
		uses, last, hash, stored, err := langflowtest.KeyRow(ctx, e.db, e.dialect, e.fx.Generation, rec.ID)
		require.NoError(t, err)
		assert.Zero(t, uses)
		assert.Nil(t, last)
		switch g := e.fx.Generation; {
		case g == langflowtest.Gen17:
			assert.Equal(t, key, stored, "Langflow 1.7 compares the key in clear")
		default:
			require.True(t, secrets.IsEncrypted(stored))
			plain, err := keyring(t).Decrypt(stored)
			require.NoError(t, err)
			assert.Equal(t, key, plain, "Langflow decrypts api_key with its secret")
			if g.HasHash() {
				assert.Equal(t, apikey.HashKey(key).String(), hash)
			}
		}
		// Another process on the same table accepts it.
		other, err := apikey.NewManager(apikey.Config{Store: e.ldb.Keys(), FlushInterval: -1})
		require.NoError(t, err)
		defer other.Close()
		p, err := other.Verify(ctx, key)
		require.NoError(t, err)
		assert.Equal(t, e.fx.Alice.ID, p.UserID)
		// Deleting through keyflow removes Langflow's row.
		require.NoError(t, m.Delete(ctx, e.fx.Alice.ID, rec.ID))
		_, _, _, _, err = langflowtest.KeyRow(ctx, e.db, e.dialect, e.fx.Generation, rec.ID)
		require.ErrorIs(t, err, sql.ErrNoRows)
		// What the schema cannot store is refused, not dropped.
		_, _, err = m.Create(ctx, e.fx.Alice.ID, "scoped", apikey.CreateOptions{Scopes: []string{"run"}})
		require.Error(t, err)
		_, _, err = m.Create(ctx, e.fx.Alice.ID, "limited", apikey.CreateOptions{Limits: apikey.Limits{Quota: &apikey.Quota{Limit: 10}}})
		require.ErrorIs(t, err, apikey.ErrLimitsUnsupported)
		_, err = m.SetLimits(ctx, e.fx.Alice.ID, rec.ID, apikey.Limits{Quota: &apikey.Quota{Limit: 10}}, true)
		require.ErrorIs(t, err, apikey.ErrLimitsUnsupported)
		limited := rec
		limited.Limits = apikey.Limits{Rate: []apikey.RateLimit{{Name: "minute", Limit: 1, Window: time.Minute}}}
		require.ErrorIs(t, e.ldb.Keys().InsertKey(ctx, limited, key), apikey.ErrLimitsUnsupported)
		exp := time.Now().Add(time.Hour)
		_, _, err = m.Create(ctx, e.fx.Alice.ID, "expiring", apikey.CreateOptions{ExpiresAt: &exp})
		if e.fx.Generation.HasExpiry() {
			require.NoError(t, err)
		} else {
			require.Error(t, err)
		}
	})
}

// TestVariablesBothWays: Langflow's variables read through a Service, and a
// Service's variables are rows Langflow reads.
func TestVariablesBothWays(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		svc, err := variables.NewService(variables.ServiceConfig{Store: e.vars, Keyring: keyring(t)})
		require.NoError(t, err)
		su := e.fx.Superuser.ID
		for _, name := range []string{"OPENAI_API_KEY", "MODEL_NAME", "OLD_GENERIC"} {
			got, err := svc.Value(ctx, su, name)
			require.NoError(t, err, name)
			assert.Equal(t, e.fx.Vars[name].Plain, got, name)
		}
		_, err = svc.Value(ctx, su, "ALICE_TOKEN")
		require.ErrorIs(t, err, variables.ErrNotFound, "another user's variable")
		list, err := svc.List(ctx, su)
		require.NoError(t, err)
		require.Len(t, list, 3)
		for _, v := range list {
			if v.Name == "OPENAI_API_KEY" {
				assert.Equal(t, []string{"OpenAI", "api_key"}, v.DefaultFields)
			}
		}

		v, err := svc.Create(ctx, su, variables.CreateInput{Name: "ANTHROPIC_API_KEY", Value: "sk-ant-value", DefaultFields: []string{"Anthropic", "api_key"}})
		require.NoError(t, err)
		g, err := svc.Create(ctx, su, variables.CreateInput{Name: "REGION", Value: "eu-west-1", Type: variables.Generic})
		require.NoError(t, err)
		_, err = svc.Create(ctx, su, variables.CreateInput{Name: "REGION", Value: "again", Type: variables.Generic})
		require.ErrorIs(t, err, variables.ErrDuplicate)

		// As Langflow reads them: a Credential token under the secret, a
		// Generic in clear, the type and default_fields as JSON.
		for _, c := range []struct {
			id, typ, plain string
			fields         []string
		}{{v.ID, "Credential", "sk-ant-value", []string{"Anthropic", "api_key"}}, {g.ID, "Generic", "eu-west-1", []string{}}} {
			value, typ, fields := rawVariable(t, e, c.id)
			assert.Equal(t, c.typ, typ)
			if c.typ == "Credential" {
				plain, err := keyring(t).Decrypt(value)
				require.NoError(t, err)
				assert.Equal(t, c.plain, plain)
			} else {
				assert.Equal(t, c.plain, value)
			}
			var got []string
			require.NoError(t, json.Unmarshal([]byte(fields), &got))
			assert.Equal(t, c.fields, got)
		}
		// Updates and deletes reach Langflow's table.
		newValue := "sk-ant-rotated"
		_, err = svc.Update(ctx, su, v.ID, variables.Patch{Value: &newValue})
		require.NoError(t, err)
		value, _, _ := rawVariable(t, e, v.ID)
		plain, err := keyring(t).Decrypt(value)
		require.NoError(t, err)
		assert.Equal(t, newValue, plain)
		require.NoError(t, svc.Delete(ctx, su, g.ID))
		_, err = svc.Get(ctx, su, g.ID)
		require.True(t, errors.Is(err, variables.ErrNotFound), "%v", err)
	})
}

func rawVariable(t *testing.T, e *env, id string) (value, typ, fields string) {
	t.Helper()
	q := "SELECT value, type, CAST(default_fields AS TEXT) FROM variable WHERE id = ?"
	arg := any(id)
	if e.dialect == sqldialect.Postgres {
		q = "SELECT value, type, CAST(default_fields AS TEXT) FROM variable WHERE id = $1"
	} else {
		arg = id[:8] + id[9:13] + id[14:18] + id[19:23] + id[24:]
	}
	require.NoError(t, e.db.QueryRowContext(context.Background(), q, arg).Scan(&value, &typ, &fields))
	return value, typ, fields
}

// TestConcurrentUse: verifications of hashless rows, creations and
// deletions at once, on one store (run with -race).
func TestConcurrentUse(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			e := newEnv(t, d, langflowtest.Gen18)
			ctx := context.Background()
			m, err := apikey.NewManager(apikey.Config{Store: e.keys, CacheSize: -1, FlushInterval: -1})
			require.NoError(t, err)
			defer m.Close()
			var wg sync.WaitGroup
			errs := make(chan error, 64)
			for w := range 4 {
				wg.Go(func() {
					for range 10 {
						if _, err := m.Verify(ctx, e.fx.Keys[langflowtest.KeyToken].Plaintext); err != nil {
							errs <- err
						}
						key, rec, err := m.Create(ctx, e.fx.Alice.ID, "concurrent", apikey.CreateOptions{})
						if err != nil {
							errs <- err
							continue
						}
						if _, err := m.Verify(ctx, key); err != nil {
							errs <- err
						}
						if w%2 == 0 {
							if err := m.Delete(ctx, e.fx.Alice.ID, rec.ID); err != nil {
								errs <- err
							}
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

// TestHashlessRowsSharingAKey: a key stored twice without a hash (in clear
// by 1.7 and as a token by 1.8) is refused too. Langflow's own check takes
// the first hashless row that matches; keyflow treats every pair of active
// rows of one key alike.
func TestHashlessRowsSharingAKey(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			e := newEnv(t, d, langflowtest.Gen18)
			ctx := context.Background()
			k := e.fx.Keys[langflowtest.KeyPlain]
			token, err := keyring(t).Encrypt(k.Plaintext)
			require.NoError(t, err)
			q := `INSERT INTO apikey (id, user_id, name, api_key, created_at, total_uses, is_active) VALUES (?, ?, 'copy', ?, '2026-01-01 00:00:00.000000', 0, ?)`
			id, user := any(strings.ReplaceAll(ids.New(), "-", "")), any(strings.ReplaceAll(k.UserID, "-", ""))
			if e.dialect == sqldialect.Postgres {
				q = sqlutil.Dollar(q)
				id, user = ids.New(), k.UserID
			}
			_, err = e.db.ExecContext(ctx, q, id, user, token, true)
			require.NoError(t, err)
			m := e.manager(t)
			_, err = m.Verify(ctx, k.Plaintext)
			require.ErrorIs(t, err, apikey.ErrInvalid)
		})
	}
}
