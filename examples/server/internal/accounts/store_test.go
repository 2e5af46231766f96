package accounts

import (
	"context"
	"database/sql"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/keyflow-dev/keyflow/examples/server/internal/sqldb"
	"github.com/keyflow-dev/keyflow/keyflowtest/dbtest"
	"github.com/keyflow-dev/keyflow/langflowdb"
)

func init() { BcryptCost = bcrypt.MinCost } // fast hashes in tests

// backends opens a fresh users table on SQLite and, with
// KEYFLOW_TEST_POSTGRES_DSN, PostgreSQL.
var backends = []struct {
	name string
	open func(t *testing.T) sqldb.DB
}{
	{"sqlite", func(t *testing.T) sqldb.DB { return sqldb.DB{DB: dbtest.SQLite(t)} }},
	{"postgres", func(t *testing.T) sqldb.DB {
		var db *sql.DB
		db, _ = dbtest.PostgresSchema(t)
		return sqldb.DB{DB: db, Postgres: true}
	}},
}

func TestStore(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := b.open(t)
			s, err := OpenStore(ctx, db)
			require.NoError(t, err)
			_, err = OpenStore(ctx, db)
			require.NoError(t, err, "opening again changes nothing")

			u, created, err := s.Ensure(ctx, "langflow", true)
			require.NoError(t, err)
			assert.True(t, created)
			assert.True(t, u.IsSuperuser && u.IsActive)
			again, created, err := s.Ensure(ctx, "langflow", false)
			require.NoError(t, err)
			assert.False(t, created)
			assert.Equal(t, u.ID, again.ID)

			_, err = s.Create(ctx, "langflow", "", false, true)
			assert.ErrorIs(t, err, ErrUsernameTaken)
			_, _, err = s.Ensure(ctx, "ro\u200bot", false)
			assert.ErrorIs(t, err, ErrBadUsername, "a look-alike name")
			alice, err := s.Create(ctx, "alice", "hash", false, false)
			require.NoError(t, err)

			before := s.Changes()
			name, active := "alice2", true
			require.NoError(t, s.Update(ctx, alice.ID, Changes{Username: &name, IsActive: &active}))
			assert.Greater(t, s.Changes(), before, "a change is counted")
			got, err := s.ByName(ctx, "alice2")
			require.NoError(t, err)
			assert.True(t, got.IsActive)
			assert.Equal(t, "hash", got.PasswordHash)
			taken := "langflow"
			assert.ErrorIs(t, s.Update(ctx, alice.ID, Changes{Username: &taken}), ErrUsernameTaken)
			assert.ErrorIs(t, s.Update(ctx, "00000000-0000-0000-0000-000000000000", Changes{IsActive: &active}), ErrNotFound)

			set, err := s.SetPasswordIfNone(ctx, u.ID, "first")
			require.NoError(t, err)
			assert.True(t, set)
			set, err = s.SetPasswordIfNone(ctx, u.ID, "second")
			require.NoError(t, err)
			assert.False(t, set, "an existing password is kept")

			all, err := s.All(ctx)
			require.NoError(t, err)
			assert.Len(t, all, 2)
			_, err = s.ByID(ctx, "00000000-0000-0000-0000-000000000000")
			assert.ErrorIs(t, err, ErrNotFound)
		})
	}
}

// TestImportAndMirror: a Langflow user is imported with its ID unless the
// name is taken (then it is that user); a mirror follows Langflow's row.
func TestImportAndMirror(t *testing.T) {
	ctx := context.Background()
	s, err := OpenStore(ctx, sqldb.DB{DB: dbtest.SQLite(t)})
	require.NoError(t, err)
	su, _, err := s.Ensure(ctx, "langflow", true)
	require.NoError(t, err)

	lu := langflowdb.User{ID: "11111111-1111-1111-1111-111111111111", Username: "bob", PasswordHash: "h", IsActive: true}
	id, created, err := s.Import(ctx, lu)
	require.NoError(t, err)
	assert.True(t, created)
	assert.Equal(t, lu.ID, id)
	id, created, err = s.Import(ctx, lu)
	require.NoError(t, err)
	assert.False(t, created, "imported already")
	assert.Equal(t, lu.ID, id)
	id, created, err = s.Import(ctx, langflowdb.User{ID: "22222222-2222-2222-2222-222222222222", Username: "langflow"})
	require.NoError(t, err)
	assert.False(t, created)
	assert.Equal(t, su.ID, id, "the keyflow user of that name")

	lu.IsActive, lu.PasswordHash = false, ""
	require.NoError(t, s.Mirror(ctx, lu))
	got, err := s.ByID(ctx, lu.ID)
	require.NoError(t, err)
	assert.False(t, got.IsActive)
	assert.Empty(t, got.PasswordHash)
}

func TestHashPassword(t *testing.T) {
	h, err := HashPassword("a-good-password")
	require.NoError(t, err)
	assert.NoError(t, CompareHash([]byte(h), []byte("a-good-password")))
	_, err = HashPassword(string(make([]byte, 73)))
	assert.EqualError(t, err, "a password must be at most 72 bytes")
}
