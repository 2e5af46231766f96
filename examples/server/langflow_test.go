package main

import (
	"context"
	"database/sql"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/examples/internal/ids"
	"github.com/keyflow-dev/keyflow/examples/server/internal/accounts"
	"github.com/keyflow-dev/keyflow/examples/server/internal/cli"
	"github.com/keyflow-dev/keyflow/examples/server/internal/config"
	"github.com/keyflow-dev/keyflow/examples/server/internal/httpserver"
	"github.com/keyflow-dev/keyflow/examples/server/internal/langflowimport"
	"github.com/keyflow-dev/keyflow/examples/server/internal/login"
	"github.com/keyflow-dev/keyflow/examples/server/internal/sqldb"
	"github.com/keyflow-dev/keyflow/examples/server/internal/startup"
	"github.com/keyflow-dev/keyflow/keyflowtest/dbtest"
	"github.com/keyflow-dev/keyflow/keyflowtest/revoketest"
	"github.com/keyflow-dev/keyflow/langflowdb"
	"github.com/keyflow-dev/keyflow/langflowdb/langflowtest"
	"github.com/keyflow-dev/keyflow/middleware"
	"github.com/keyflow-dev/keyflow/secrets"
	"github.com/keyflow-dev/keyflow/sqldialect"
	"github.com/keyflow-dev/keyflow/variables"
)

// langflowSecret is the fixtures' LANGFLOW_SECRET_KEY, shared by Langflow
// and keyflow.
const langflowSecret = "dBuuRmX0a5Gx3kqzT0C7mB1g7eYcY2Jq2Vd9sRxk2M0"

// langflowDatabase makes a Langflow database of generation g and returns
// its URL, the fixture and a connection to it.
func langflowDatabase(t *testing.T, postgres bool, g langflowtest.Generation) (string, *langflowtest.Fixture, *sql.DB) {
	t.Helper()
	k, err := secrets.NewKeyring(langflowSecret)
	require.NoError(t, err)
	var db *sql.DB
	var url string
	if postgres {
		var schema string
		db, schema = dbtest.PostgresSchema(t)
		dsn := dbtest.PostgresDSN(t)
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		url = dsn + sep + "search_path=" + schema
	} else {
		path := filepath.Join(t.TempDir(), "langflow.db")
		db, err = dbtest.OpenSQLite(path)
		require.NoError(t, err)
		t.Cleanup(func() { _ = db.Close() })
		url = "sqlite:///" + path
	}
	fx, err := langflowtest.Create(context.Background(), db, testDialect(postgres), g, k)
	require.NoError(t, err)
	return url, fx, db
}

// testDialect is the dialect of a backend.
func testDialect(postgres bool) sqldialect.Dialect {
	if postgres {
		return sqldialect.Postgres
	}
	return sqldialect.SQLite
}

func langflowConfig(t *testing.T, dbURL, secret string) config.Config {
	return config.Config{
		ConfigDir:   t.TempDir(),
		DatabaseURL: dbURL,
		Host:        "127.0.0.1",
		Auth:        middleware.Config{AutoLogin: false},
		Getenv: func(name string) string {
			if name == "LANGFLOW_SECRET_KEY" {
				return secret
			}
			return ""
		},
	}
}

var backends = []struct {
	name     string
	postgres bool
}{{"sqlite", false}, {"postgres", true}}

// TestServeOnLangflowDatabase: pointed at a Langflow database, the server
// detects it and serves the API on Langflow's own rows, for every schema
// generation.
func TestServeOnLangflowDatabase(t *testing.T) {
	for _, b := range backends {
		for _, g := range langflowtest.Generations {
			t.Run(b.name+"/"+g.String(), func(t *testing.T) {
				t.Parallel()
				ctx := context.Background()
				url, fx, db := langflowDatabase(t, b.postgres, g)
				a, err := openApp(ctx, langflowConfig(t, url, langflowSecret), quietLog())
				require.NoError(t, err)
				t.Cleanup(func() { _ = a.Close() })
				require.NotNil(t, a.Langflow, "the Langflow database is detected")
				assert.Equal(t, fx.Superuser.ID, a.Superuser.ID, "Langflow's superuser")
				h, err := httpserver.Handler(a, nil)
				require.NoError(t, err)
				srv := httptest.NewServer(h)
				t.Cleanup(srv.Close)

				for _, label := range fx.Valid() {
					assert.Equal(t, http.StatusOK, get(t, srv, "GET", "/api/v1/api_key/", fx.Keys[label].Plaintext), label)
				}
				for _, label := range fx.Refused() {
					assert.Equal(t, http.StatusForbidden, get(t, srv, "GET", "/api/v1/api_key/", fx.Keys[label].Plaintext), label)
				}
				key := fx.Keys[langflowtest.KeyPlain].Plaintext

				// A key created through the API is a row of the generation's form.
				code, body := call(t, srv, "POST", "/api/v1/api_key/", key, `{"name":"from keyflow"}`)
				require.Equal(t, http.StatusOK, code, body)
				created := decode[struct {
					ID     string `json:"id"`
					APIKey string `json:"api_key"`
				}](t, body)
				_, _, hash, stored, err := langflowtest.KeyRow(ctx, db, testDialect(b.postgres), g, created.ID)
				require.NoError(t, err)
				if g == langflowtest.Gen17 {
					assert.Equal(t, created.APIKey, stored)
				} else {
					assert.True(t, secrets.IsEncrypted(stored))
				}
				if g.HasHash() {
					assert.Equal(t, apikey.HashKey(created.APIKey).String(), hash)
				}

				// Variables: Langflow's, Credential values hidden.
				code, body = call(t, srv, "GET", "/api/v1/variables/", key, "")
				require.Equal(t, http.StatusOK, code, body)
				assert.Contains(t, body, `"name":"OPENAI_API_KEY"`)
				assert.Contains(t, body, `"value":"gpt-4o-mini"`)
				assert.NotContains(t, body, fx.Vars["OPENAI_API_KEY"].Plain)

				// Langflow's users log in with their Langflow passwords.
				form := "username=alice&password=" + langflowtest.Password
				resp, err := srv.Client().Post(srv.URL+"/api/v1/login", "application/x-www-form-urlencoded", strings.NewReader(form))
				require.NoError(t, err)
				_ = resp.Body.Close()
				assert.Equal(t, http.StatusOK, resp.StatusCode, "login with the Langflow password")

				// Revoked in Langflow's table: refused within the bound (the
				// exact bound is tested with a fake clock in langflowdb).
				require.NoError(t, langflowtest.DeleteKey(ctx, db, testDialect(b.postgres), fx.Keys[langflowtest.KeyAlice].ID))
				require.Eventually(t, func() bool {
					return get(t, srv, "GET", "/api/v1/api_key/", fx.Keys[langflowtest.KeyAlice].Plaintext) == http.StatusForbidden
				}, 10*time.Second, 20*time.Millisecond)
			})
		}
	}
}

func call(t *testing.T, srv *httptest.Server, method, path, key, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("x-api-key", key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b := new(strings.Builder)
	_, _ = io.Copy(b, resp.Body)
	return resp.StatusCode, b.String()
}

var importedRe = regexp.MustCompile(`(?m)^(users|api keys|variables):\s+(\d+) imported, (\d+) skipped`)

// importCounts parses the summary: kind → [imported, skipped].
func importCounts(t *testing.T, out string) map[string][2]string {
	t.Helper()
	m := map[string][2]string{}
	for _, g := range importedRe.FindAllStringSubmatch(out, -1) {
		m[g[1]] = [2]string{g[2], g[3]}
	}
	require.Len(t, m, 3, out)
	return m
}

// TestImportLangflowTwice: import-langflow copies every generation into
// keyflow's own database; keys that worked in Langflow work, revoked ones do
// not; Credential values open under keyflow's secret; a second run changes
// nothing.
func TestImportLangflowTwice(t *testing.T) {
	for _, b := range backends {
		for _, g := range langflowtest.Generations {
			t.Run(b.name+"/"+g.String(), func(t *testing.T) {
				url, fx, _ := langflowDatabase(t, b.postgres, g)
				dir := t.TempDir()
				// keyflow runs under its own secret: Langflow's comes from its file.
				secretFile := filepath.Join(t.TempDir(), "secret_key")
				require.NoError(t, os.WriteFile(secretFile, []byte(langflowSecret), 0o600))
				t.Setenv("LANGFLOW_SECRET_KEY", "keyflow-own-secret-which-is-long-enough-0123")
				t.Setenv("LANGFLOW_STORE_ENVIRONMENT_VARIABLES", "false")
				t.Setenv("LANGFLOW_DATABASE_URL", "")
				t.Setenv("KEYFLOW_SCHEMA", "")
				args := []string{"import-langflow", "--config-dir", dir, "--from", url, "--from-secret-key-file", secretFile, "--no-progress"}

				var stdout, stderr strings.Builder
				require.Equal(t, 0, cli.Main(args, nil, &stdout, &stderr), stderr.String())
				first := importCounts(t, stdout.String())
				keyRows := len(fx.Keys) - 1 // the deleted key has no row
				sharedRows := 0
				if g.HasHash() {
					keyRows++ // the shared key has two rows
					sharedRows = 2
				}
				assert.Equal(t, [2]string{strconv.Itoa(keyRows - sharedRows), strconv.Itoa(sharedRows)}, first["api keys"], stdout.String())
				assert.Equal(t, [2]string{"4", "0"}, first["variables"], stdout.String())
				assert.Equal(t, [2]string{"1", "1"}, first["users"], stdout.String()) // "langflow" exists in keyflow already
				assert.NotContains(t, stdout.String()+stderr.String(), fx.Keys[langflowtest.KeyPlain].Plaintext)

				stdout.Reset()
				require.Equal(t, 0, cli.Main(args, nil, &stdout, &stderr), stderr.String())
				second := importCounts(t, stdout.String())
				for kind, c := range second {
					assert.Equal(t, "0", c[0], "second run imports no %s:\n%s", kind, stdout.String())
				}
				assert.Contains(t, stdout.String(), langflowimport.SkipAlready)

				// The keys, as keyflow now serves them.
				cfg, err := config.Load(config.Flags{ConfigDir: dir, Schema: "keyflow", DefaultLevel: "warn"}, nil, nil)
				require.NoError(t, err)
				a, err := openApp(context.Background(), cfg, quietLog())
				require.NoError(t, err)
				defer a.Close()
				ctx := context.Background()
				for _, label := range fx.Valid() {
					_, err := a.Keys.Verify(ctx, fx.Keys[label].Plaintext)
					assert.NoError(t, err, label)
				}
				for _, label := range fx.Refused() {
					_, err := a.Keys.Verify(ctx, fx.Keys[label].Plaintext)
					assert.Error(t, err, label)
				}
				for _, name := range []string{"OPENAI_API_KEY", "MODEL_NAME", "OLD_GENERIC"} {
					got, err := a.Vars.Value(ctx, a.Superuser.ID, name)
					require.NoError(t, err, name)
					assert.Equal(t, fx.Vars[name].Plain, got, name)
				}
				acct, err := a.Users.Store.ByName(ctx, "alice")
				require.NoError(t, err)
				assert.Equal(t, langflowtest.PasswordHash, acct.PasswordHash, "alice keeps her Langflow password")
				alice, err := a.Vars.Value(ctx, fx.Alice.ID, "ALICE_TOKEN")
				require.NoError(t, err)
				assert.Equal(t, fx.Vars["ALICE_TOKEN"].Plain, alice)
				// Re-encrypted under keyflow's secret, not kept under Langflow's.
				v, err := a.VarStore.GetByName(ctx, a.Superuser.ID, "OPENAI_API_KEY")
				require.NoError(t, err)
				lf, err := secrets.NewKeyring(langflowSecret)
				require.NoError(t, err)
				_, err = lf.Decrypt(v.Value)
				assert.ErrorIs(t, err, secrets.ErrInvalidToken)
				assert.Equal(t, variables.Credential, v.Type)
			})
		}
	}
}

// TestImportProgressBar: a large Langflow database gets a progress bar.
func TestImportProgressBar(t *testing.T) {
	url, fx, db := langflowDatabase(t, false, langflowtest.GenNewest)
	tx, err := db.Begin()
	require.NoError(t, err)
	uid := strings.ReplaceAll(fx.Superuser.ID, "-", "")
	for i := range langflowimport.ProgressMin {
		_, err := tx.Exec(`INSERT INTO variable (id, user_id, name, value, type, default_fields, created_at) VALUES (?, ?, ?, 'v', 'Generic', '[]', '2026-01-01 00:00:00.000000')`,
			strings.ReplaceAll(ids.New(), "-", ""), uid, "BULK_"+strconv.Itoa(i))
		require.NoError(t, err)
	}
	require.NoError(t, tx.Commit())
	a, ldb := importTarget(t, url)
	var bar strings.Builder
	rep, err := importInto(context.Background(), a, ldb, &bar)
	require.NoError(t, err)
	assert.Equal(t, langflowimport.ProgressMin+4, rep.Imported["variables"])
	assert.Contains(t, bar.String(), "import-langflow")
}

// TestCommandsRefusedOnLangflow: rotating keyflow's secret over Langflow's
// rows would lock Langflow out of them; users and passwords are Langflow's.
func TestCommandsRefusedOnLangflow(t *testing.T) {
	url, _, _ := langflowDatabase(t, false, langflowtest.GenNewest)
	t.Setenv("LANGFLOW_SECRET_KEY", "")
	for _, args := range [][]string{
		{"rotate-secret"},
		{"superuser", "--username", "alice", "--password", "a-new-password-123"},
	} {
		var stdout, stderr strings.Builder
		code := cli.Main(append(args, "--config-dir", t.TempDir(), "--database-url", url), nil, &stdout, &stderr)
		assert.Equal(t, 1, code, args[0])
		assert.Contains(t, stderr.String(), "does not run on a Langflow database", args[0])
	}
}

// TestSchemaMismatch: a forced schema that does not fit the database is an
// error, never a table created in the other program's database.
func TestSchemaMismatch(t *testing.T) {
	ctx := context.Background()
	url, _, db := langflowDatabase(t, false, langflowtest.GenNewest)
	cfg := langflowConfig(t, url, langflowSecret)
	cfg.Schema = "keyflow"
	_, err := openApp(ctx, cfg, quietLog())
	require.Error(t, err, "keyflow's tables on a Langflow database")
	var n int
	require.NoError(t, db.QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE name IN ('users', 'flows')`).Scan(&n))
	assert.Zero(t, n, "no keyflow table in Langflow's database")

	cfg = langflowConfig(t, "", langflowSecret)
	cfg.Schema = "langflow"
	_, err = openApp(ctx, cfg, quietLog())
	require.ErrorIs(t, err, langflowdb.ErrNotLangflow)
}

// TestAPIKeyCommandOnLangflow: `api-key` on a Langflow database makes a key
// for a Langflow user, stored as that Langflow version stores keys; a user
// Langflow does not have is an error (keyflow does not create Langflow users).
func TestAPIKeyCommandOnLangflow(t *testing.T) {
	ctx := context.Background()
	url, fx, db := langflowDatabase(t, false, langflowtest.Gen17)
	t.Setenv("LANGFLOW_SECRET_KEY", langflowSecret)
	t.Setenv("LANGFLOW_STORE_ENVIRONMENT_VARIABLES", "false")
	dir := t.TempDir()
	var stdout, stderr strings.Builder
	require.Equal(t, 0, cli.Main([]string{"api-key", "--config-dir", dir, "--database-url", url, "--username", "alice"}, nil, &stdout, &stderr), stderr.String())
	key := strings.TrimSpace(stdout.String())
	require.NoError(t, apikey.Langflow.Check(key), stdout.String())
	var stored, owner string
	require.NoError(t, db.QueryRowContext(ctx, `SELECT api_key, user_id FROM apikey WHERE name = 'CLI'`).Scan(&stored, &owner))
	assert.Equal(t, key, stored, "a Langflow 1.7 table keeps the key itself")
	assert.Equal(t, strings.ReplaceAll(fx.Alice.ID, "-", ""), owner)

	stdout.Reset()
	stderr.Reset()
	assert.Equal(t, 1, cli.Main([]string{"api-key", "--config-dir", dir, "--database-url", url, "--username", "nobody"}, nil, &stdout, &stderr))
	assert.Contains(t, stderr.String(), `no Langflow user named "nobody"`)
}

// TestLangflowUsersReadAgain: on a Langflow database, a user deactivated,
// or given a new password, in Langflow while the server runs counts at once
// for logins and login tokens (the mirror is read again from Langflow's
// table) and within the bound for the user's API keys, which work again on
// reactivation; the server does not create or change users there.
func TestLangflowUsersReadAgain(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			url, fx, db := langflowDatabase(t, b.postgres, langflowtest.GenNewest)
			a, err := openApp(ctx, langflowConfig(t, url, langflowSecret), quietLog())
			require.NoError(t, err)
			t.Cleanup(func() { _ = a.Close() })
			h, err := httpserver.Handler(a, nil)
			require.NoError(t, err)
			srv := httptest.NewServer(h)
			t.Cleanup(srv.Close)

			alice := loginTokens(t, srv, "alice", langflowtest.Password)
			bearer := []string{"Authorization", "Bearer " + alice.AccessToken}
			res, body := httpDo(t, "GET", srv.URL+"/api/v1/users/whoami", nil, bearer...)
			require.Equal(t, 200, res.StatusCode, body)
			aliceKey := fx.Keys[langflowtest.KeyAlice].Plaintext
			require.Equal(t, 200, get(t, srv, "GET", "/api/v1/variables/", aliceKey))

			require.NoError(t, langflowtest.SetUserActive(ctx, db, testDialect(b.postgres), fx.Alice.ID, false))
			deactivated := time.Now()
			res, body = httpDo(t, "GET", srv.URL+"/api/v1/users/whoami", nil, bearer...)
			assert.Equal(t, 401, res.StatusCode, "deactivated in Langflow: the token stops at once; %s", body)
			res, _ = loginForm(t, srv, "alice", langflowtest.Password)
			assert.NotEqual(t, 200, res.StatusCode, "deactivated in Langflow: no login")
			w := revoketest.Until(10*time.Second, func() bool {
				return get(t, srv, "GET", "/api/v1/variables/", aliceKey) == http.StatusForbidden
			})
			assert.True(t, w.Refused, "the API key of a user Langflow deactivated")
			assert.Less(t, w.AcceptedAfter(deactivated), login.ActiveUserTTL, "refused within the bound")

			hash, err := bcrypt.GenerateFromPassword([]byte("a-new-langflow-password"), bcrypt.MinCost)
			require.NoError(t, err)
			_, err = db.ExecContext(ctx, `UPDATE "user" SET is_active = $1, password = $2 WHERE username = 'alice'`, true, string(hash))
			require.NoError(t, err)
			res, _ = loginForm(t, srv, "alice", langflowtest.Password)
			assert.Equal(t, 401, res.StatusCode, "the old password no longer works")
			loginTokens(t, srv, "alice", "a-new-langflow-password")
			assert.Equal(t, 200, get(t, srv, "GET", "/api/v1/variables/", aliceKey), "reactivated in Langflow: the key works again at once")

			_, err = db.ExecContext(ctx, `DELETE FROM "user" WHERE username = 'alice'`)
			if err == nil { // Langflow's foreign keys may keep the row
				res, _ = loginForm(t, srv, "alice", "a-new-langflow-password")
				assert.Equal(t, 401, res.StatusCode, "deleted in Langflow: no login")
			}

			su := loginTokens(t, srv, fx.Superuser.Username, langflowtest.Password)
			suBearer := []string{"Authorization", "Bearer " + su.AccessToken}
			res, body = httpDo(t, "POST", srv.URL+"/api/v1/users/", strings.NewReader(`{"username":"dave","password":"dave-password"}`), suBearer...)
			assert.Equal(t, 400, res.StatusCode)
			assert.JSONEq(t, `{"detail":"`+accounts.MsgUsersInLangflow+`"}`, body)
			res, _ = httpDo(t, "PATCH", srv.URL+"/api/v1/users/"+fx.Alice.ID, strings.NewReader(`{"is_active":false}`), suBearer...)
			assert.Equal(t, 400, res.StatusCode)
		})
	}
}

// stopAfter is a context whose Err reports Canceled from its n-th call on,
// as a Ctrl-C part-way through an import would.
type stopAfter struct {
	context.Context
	n atomic.Int64
}

func (c *stopAfter) Err() error {
	if c.n.Add(-1) < 0 {
		return context.Canceled
	}
	return nil
}

// importInto imports the Langflow database ldb into a, as import-langflow
// does, opening Langflow's tokens with a's own secret.
func importInto(ctx context.Context, a *startup.App, ldb *langflowdb.DB, bar io.Writer) (*langflowimport.Report, error) {
	to := langflowimport.Target{Users: a.Users.Store, Keys: a.KeyStore, Vars: a.VarStore, Keyring: a.Keyring}
	return langflowimport.Run(ctx, to, ldb, a.Keyring, bar)
}

// importTarget opens a keyflow app on a fresh config dir and the Langflow
// SQLite database at url as an import's source; both close when t ends.
func importTarget(t *testing.T, url string) (*startup.App, *langflowdb.DB) {
	t.Helper()
	cfg := langflowConfig(t, "", langflowSecret)
	cfg.Schema = "keyflow"
	a, err := openApp(context.Background(), cfg, quietLog())
	require.NoError(t, err)
	t.Cleanup(func() { _ = a.Close() })
	src, err := sqldb.ParseURL(url, "")
	require.NoError(t, err)
	lfdb, err := sql.Open(src.Driver, src.DSN)
	require.NoError(t, err)
	t.Cleanup(func() { _ = lfdb.Close() })
	ldb, err := langflowdb.Open(context.Background(), lfdb, langflowdb.Config{Dialect: sqldialect.SQLite, Keyring: a.Keyring})
	require.NoError(t, err)
	return a, ldb
}

// TestImportInterruptedResumes: an import stopped part-way leaves complete
// rows and a summary of them; the same import run again imports the rest
// and skips what is there.
func TestImportInterruptedResumes(t *testing.T) {
	url, fx, _ := langflowDatabase(t, false, langflowtest.GenNewest)
	a, ldb := importTarget(t, url)

	ctx := &stopAfter{Context: context.Background()}
	ctx.n.Store(6) // through the users and into the keys
	first, err := importInto(ctx, a, ldb, nil)
	require.ErrorIs(t, err, context.Canceled)
	require.Positive(t, first.Imported["users"], "the first run got somewhere")
	require.Less(t, first.Imported["api keys"], len(fx.Keys)-3, "and stopped before the end")

	second, err := importInto(context.Background(), a, ldb, nil)
	require.NoError(t, err)
	assert.Equal(t, first.Imported["api keys"], second.Skipped["api keys"][langflowimport.SkipAlready], "what the first run imported is skipped")
	keyRows := len(fx.Keys) - 1 + 1 // the deleted key has no row; the shared key has two
	assert.Equal(t, keyRows-2, first.Imported["api keys"]+second.Imported["api keys"], "every importable key once")
	assert.Equal(t, 4, second.Imported["variables"])
	for _, label := range fx.Valid() {
		_, err := a.Keys.Verify(context.Background(), fx.Keys[label].Plaintext)
		assert.NoError(t, err, label)
	}
}
