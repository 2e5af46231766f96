package langflowdb_test

import (
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/internal/sqlutil"
	"github.com/keyflow-dev/keyflow/langflowdb/langflowtest"
	"github.com/keyflow-dev/keyflow/sqldialect"
	"github.com/keyflow-dev/keyflow/variables"
)

// sqlalchemyTime is how SQLAlchemy stores a DateTime in SQLite (naive, with
// microseconds); Langflow parses it back with datetime.fromisoformat.
var (
	sqlalchemyTime = regexp.MustCompile(`^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}$`)
	sqliteUUID     = regexp.MustCompile(`^[0-9a-f]{32}$`)
)

// TestRowsAsLangflowReadsThem looks at the rows keyflow writes the way
// Langflow's SQLAlchemy models and queries see them: on SQLite, UUIDs as 32
// lower-case hex digits, booleans as the integers 0 and 1 (Langflow's
// "is_active IS 1"), times in SQLAlchemy's text form; on both dialects,
// the key found by Langflow's own lookup for the generation, its owner
// found by user_id, and a variable's category set where the column exists
// (Langflow's model writes "Global"; fresh installs have no server
// default).
func TestRowsAsLangflowReadsThem(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		m := e.manager(t)
		g := e.fx.Generation
		var exp *time.Time
		if g.HasExpiry() {
			x := time.Now().Add(time.Hour)
			exp = &x
		}
		key, rec, err := m.Create(ctx, e.fx.Alice.ID, "keyflow", apikey.CreateOptions{ExpiresAt: exp})
		require.NoError(t, err)
		_, err = m.Verify(ctx, key)
		require.NoError(t, err)
		require.NoError(t, m.Flush(ctx))
		svc, err := variables.NewService(variables.ServiceConfig{Store: e.vars, Keyring: keyring(t)})
		require.NoError(t, err)
		v, err := svc.Create(ctx, e.fx.Alice.ID, variables.CreateInput{Name: "KF_VAR", Value: "x"})
		require.NoError(t, err)
		nv := "y"
		_, err = svc.Update(ctx, e.fx.Alice.ID, v.ID, variables.Patch{Value: &nv})
		require.NoError(t, err)

		q := func(s string) string {
			if e.dialect == sqldialect.Postgres {
				return sqlutil.Dollar(s)
			}
			return s
		}
		id := func(canonical string) any {
			if e.dialect == sqldialect.Postgres {
				return canonical
			}
			return canonical[:8] + canonical[9:13] + canonical[14:18] + canonical[19:23] + canonical[24:]
		}

		// Langflow's lookup of this generation, then session.get(User, user_id).
		lookup := "SELECT u.username FROM apikey k JOIN \"user\" u ON u.id = k.user_id WHERE "
		arg := any(key)
		isTrue := "IS 1"
		if e.dialect == sqldialect.Postgres {
			isTrue = "IS true"
		}
		switch {
		case g.HasHash():
			lookup += "k.api_key_hash = ? AND k.is_active " + isTrue
			arg = apikey.HashKey(key).String()
		case g == langflowtest.Gen17:
			lookup += "k.api_key = ?"
		default:
			lookup += "k.id = ?" // 1.8 decrypts every row; TestCreatedKeysAreLangflowRows opens the token
			arg = id(rec.ID)
		}
		var owner string
		require.NoError(t, e.db.QueryRowContext(ctx, q(lookup), arg).Scan(&owner))
		assert.Equal(t, "alice", owner)

		if e.dialect == sqldialect.Postgres {
			var active bool
			require.NoError(t, e.db.QueryRowContext(ctx, q("SELECT is_active FROM apikey WHERE id = ?"), id(rec.ID)).Scan(&active))
			assert.True(t, active)
		} else {
			var rowID, userID, activeType string
			var active int64
			var created, lastUsed string
			require.NoError(t, e.db.QueryRowContext(ctx,
				"SELECT CAST(id AS TEXT), CAST(user_id AS TEXT), typeof(is_active), is_active, CAST(created_at AS TEXT), CAST(last_used_at AS TEXT) FROM apikey WHERE id = ?",
				id(rec.ID)).Scan(&rowID, &userID, &activeType, &active, &created, &lastUsed))
			assert.Regexp(t, sqliteUUID, rowID)
			assert.Regexp(t, sqliteUUID, userID)
			assert.Equal(t, "integer", activeType)
			assert.Equal(t, int64(1), active)
			assert.Regexp(t, sqlalchemyTime, created)
			assert.Regexp(t, sqlalchemyTime, lastUsed)
			if g.HasExpiry() {
				var expires string
				require.NoError(t, e.db.QueryRowContext(ctx, "SELECT CAST(expires_at AS TEXT) FROM apikey WHERE id = ?", id(rec.ID)).Scan(&expires))
				assert.Regexp(t, sqlalchemyTime, expires)
			}
			// A key deactivated through keyflow is 0, which Langflow reads as false.
			require.NoError(t, m.SetActive(ctx, e.fx.Alice.ID, rec.ID, false))
			require.NoError(t, e.db.QueryRowContext(ctx, "SELECT typeof(is_active), is_active FROM apikey WHERE id = ?", id(rec.ID)).Scan(&activeType, &active))
			assert.Equal(t, "integer", activeType)
			assert.Equal(t, int64(0), active)

			var varID, varUser, vCreated, vUpdated string
			require.NoError(t, e.db.QueryRowContext(ctx,
				"SELECT CAST(id AS TEXT), CAST(user_id AS TEXT), CAST(created_at AS TEXT), CAST(updated_at AS TEXT) FROM variable WHERE id = ?",
				id(v.ID)).Scan(&varID, &varUser, &vCreated, &vUpdated))
			assert.Regexp(t, sqliteUUID, varID)
			assert.Regexp(t, sqliteUUID, varUser)
			assert.Regexp(t, sqlalchemyTime, vCreated)
			assert.Regexp(t, sqlalchemyTime, vUpdated)
		}
		if g.HasCategory() {
			var category *string
			require.NoError(t, e.db.QueryRowContext(ctx, q("SELECT category FROM variable WHERE id = ?"), id(v.ID)).Scan(&category))
			require.NotNil(t, category, "category is NULL: Langflow writes Global")
			assert.Equal(t, "Global", *category)
		}
	})
}
