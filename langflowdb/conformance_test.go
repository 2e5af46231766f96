package langflowdb_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/apikey/storetest"
	"github.com/keyflow-dev/keyflow/internal/sqlutil"
	"github.com/keyflow-dev/keyflow/langflowdb"
	"github.com/keyflow-dev/keyflow/langflowdb/langflowtest"
	"github.com/keyflow-dev/keyflow/secrets"
	"github.com/keyflow-dev/keyflow/sqldialect"
	"github.com/keyflow-dev/keyflow/variables"
	varstoretest "github.com/keyflow-dev/keyflow/variables/storetest"
)

// users maps the conformance suites' user names ("user-a", "u1") to users
// of Langflow's user table, whose IDs are UUIDs that the apikey and variable
// rows reference; a user is created the first time it is named. This is the
// only adaptation the suites need besides their Config.
type users struct {
	db      *sql.DB
	dialect sqldialect.Dialect
	mu      sync.Mutex
	byName  map[string]string
	byID    map[string]string
}

func newUsers(db *sql.DB, dialect sqldialect.Dialect) *users {
	return &users{db: db, dialect: dialect, byName: map[string]string{}, byID: map[string]string{}}
}

// id returns the UUID of the user named name; create makes its row.
func (u *users) id(ctx context.Context, name string, create bool) string {
	u.mu.Lock()
	defer u.mu.Unlock()
	if id, ok := u.byName[name]; ok {
		return id
	}
	h := sha256.Sum256([]byte(name))
	x := fmt.Sprintf("%x", h[:16])
	id := x[:8] + "-" + x[8:12] + "-4" + x[13:16] + "-8" + x[17:20] + "-" + x[20:32]
	if !create {
		return id
	}
	stored := any(strings.ReplaceAll(id, "-", ""))
	q := `INSERT INTO "user" (id, username, password, is_active, is_superuser, create_at, updated_at) VALUES (?, ?, 'x', ?, ?, '2026-01-01 00:00:00.000000', '2026-01-01 00:00:00.000000')`
	if u.dialect == sqldialect.Postgres {
		stored, q = id, sqlutil.Dollar(q)
	}
	if _, err := u.db.ExecContext(ctx, q, stored, name, true, false); err != nil {
		panic(fmt.Sprintf("create user %s: %v", name, err))
	}
	u.byName[name], u.byID[id] = id, name
	return id
}

func (u *users) name(id string) string {
	u.mu.Lock()
	defer u.mu.Unlock()
	if n, ok := u.byID[id]; ok {
		return n
	}
	return id
}

// keyAdapter is the KeyStore with the suite's user names.
type keyAdapter struct {
	s *langflowdb.KeyStore
	u *users
}

func (a keyAdapter) back(r apikey.Record, err error) (apikey.Record, error) {
	r.UserID = a.u.name(r.UserID)
	return r, err
}

func (a keyAdapter) Insert(ctx context.Context, r apikey.Record) error {
	r.UserID = a.u.id(ctx, r.UserID, true)
	return a.s.Insert(ctx, r)
}

func (a keyAdapter) InsertKey(ctx context.Context, r apikey.Record, key string) error {
	r.UserID = a.u.id(ctx, r.UserID, true)
	return a.s.InsertKey(ctx, r, key)
}

func (a keyAdapter) ByHash(ctx context.Context, h apikey.Hash) (apikey.Record, error) {
	return a.back(a.s.ByHash(ctx, h))
}

func (a keyAdapter) ListByUser(ctx context.Context, user string) ([]apikey.Record, error) {
	recs, err := a.s.ListByUser(ctx, a.u.id(ctx, user, false))
	for i := range recs {
		recs[i].UserID = a.u.name(recs[i].UserID)
	}
	return recs, err
}

func (a keyAdapter) Delete(ctx context.Context, user, id string) (apikey.Record, error) {
	return a.back(a.s.Delete(ctx, a.u.id(ctx, user, false), id))
}

func (a keyAdapter) SetActive(ctx context.Context, user, id string, active bool) (apikey.Record, error) {
	return a.back(a.s.SetActive(ctx, a.u.id(ctx, user, false), id, active))
}

func (a keyAdapter) AddUsage(ctx context.Context, batch []apikey.Usage) error {
	return a.s.AddUsage(ctx, batch)
}

// varAdapter is the VariableStore with the suite's user names.
type varAdapter struct {
	s *langflowdb.VariableStore
	u *users
}

func (a varAdapter) back(v variables.Variable, err error) (variables.Variable, error) {
	v.UserID = a.u.name(v.UserID)
	return v, err
}

func (a varAdapter) Create(ctx context.Context, v variables.Variable) error {
	v.UserID = a.u.id(ctx, v.UserID, true)
	return a.s.Create(ctx, v)
}

func (a varAdapter) Get(ctx context.Context, user, id string) (variables.Variable, error) {
	return a.back(a.s.Get(ctx, a.u.id(ctx, user, false), id))
}

func (a varAdapter) GetByName(ctx context.Context, user, name string) (variables.Variable, error) {
	return a.back(a.s.GetByName(ctx, a.u.id(ctx, user, false), name))
}

func (a varAdapter) ListByUser(ctx context.Context, user string) ([]variables.Variable, error) {
	vs, err := a.s.ListByUser(ctx, a.u.id(ctx, user, false))
	for i := range vs {
		vs[i].UserID = a.u.name(vs[i].UserID)
	}
	return vs, err
}

func (a varAdapter) Update(ctx context.Context, prev, next variables.Variable) error {
	prev.UserID, next.UserID = a.u.id(ctx, prev.UserID, false), a.u.id(ctx, next.UserID, false)
	return a.s.Update(ctx, prev, next)
}

func (a varAdapter) Delete(ctx context.Context, user, id string) error {
	return a.s.Delete(ctx, a.u.id(ctx, user, false), id)
}

func (a varAdapter) ListCiphertexts(ctx context.Context, after string, limit int) ([]secrets.Ciphertext, error) {
	return a.s.ListCiphertexts(ctx, after, limit)
}

func (a varAdapter) SwapCiphertext(ctx context.Context, id, oldToken, newToken string) (bool, error) {
	return a.s.SwapCiphertext(ctx, id, oldToken, newToken)
}

// emptyLangflow makes an empty Langflow database of generation g.
func emptyLangflow(t *testing.T, d dialect, g langflowtest.Generation) (*langflowdb.DB, *users) {
	t.Helper()
	ctx := context.Background()
	db := d.open(t)
	for _, stmt := range langflowtest.Schema(g, d.dialect) {
		_, err := db.ExecContext(ctx, stmt)
		require.NoError(t, err)
	}
	ldb, err := langflowdb.Open(ctx, db, langflowdb.Config{Dialect: d.dialect, Keyring: keyring(t)})
	require.NoError(t, err)
	return ldb, newUsers(db, d.dialect)
}

// TestKeyStoreConformance runs apikey/storetest on every generation. The
// differences that Langflow's schema forces are the Config: no scopes, and
// no expiry before expires_at; Prefix and Length are the key's (the suite
// inserts through InsertKey).
func TestKeyStoreConformance(t *testing.T) {
	for _, d := range dialects {
		for _, g := range langflowtest.Generations {
			t.Run(d.name+"/"+g.String(), func(t *testing.T) {
				t.Parallel()
				storetest.RunWith(t, func(t *testing.T) apikey.Store {
					ldb, u := emptyLangflow(t, d, g)
					return keyAdapter{s: ldb.Keys(), u: u}
				}, storetest.Config{NoScopes: true, NoExpiry: !g.HasExpiry()})
			})
		}
	}
}

// TestVariableStoreConformance runs variables/storetest. Langflow's table
// has no origin column: Config.NoOrigin.
func TestVariableStoreConformance(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			varstoretest.RunWith(t, func(t *testing.T) variables.Store {
				ldb, u := emptyLangflow(t, d, langflowtest.GenNewest)
				vs, err := ldb.Variables()
				require.NoError(t, err)
				return varAdapter{s: vs, u: u}
			}, varstoretest.Config{NoOrigin: true})
		})
	}
}
