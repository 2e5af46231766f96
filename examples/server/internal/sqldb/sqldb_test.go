package sqldb

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseDatabaseURL(t *testing.T) {
	tests := []struct {
		raw, wantDriver, wantDSNPrefix string
		postgres                       bool
		wantErr                        string
	}{
		{"", "sqlite", "file:/cfg/keyflow.db?", false, ""},
		{"sqlite:///rel/app.DB", "sqlite", "file:rel/app.DB?", false, ""},
		{"sqlite:////abs/app.DB", "sqlite", "file:/abs/app.DB?", false, ""},
		{"postgres://u:pw@db:5432/lf?sslmode=disable", "pgx", "postgres://u:pw@db:5432/lf?sslmode=disable", true, ""},
		{"postgresql://db/lf", "pgx", "postgres://db/lf", true, ""},
		{"postgresql+psycopg://db/lf", "pgx", "postgres://db/lf", true, ""},
		{"mysql://db/lf", "", "", false, `unsupported scheme "mysql"`},
		{"sqlite://", "", "", false, "needs a file path"},
		{"just-a-path.db", "", "", false, "want sqlite:///path"},
		{"u:pw@db:5432/lf", "", "", false, "want sqlite:///path"}, // scheme forgotten
		{"mysql://u:pw@db/lf", "", "", false, `unsupported scheme "mysql"`},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			db, err := ParseURL(tt.raw, "/cfg")
			if tt.wantErr != "" {
				assert.ErrorContains(t, err, tt.wantErr)
				assert.NotContains(t, err.Error(), "pw", "no password in the error")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantDriver, db.Driver)
			assert.True(t, strings.HasPrefix(db.DSN, tt.wantDSNPrefix), db.DSN)
			assert.Equal(t, tt.postgres, db.Postgres)
			assert.NotContains(t, db.Display, "pw", "no password in what is logged")
		})
	}
}

func TestPlaceholders(t *testing.T) {
	assert.Equal(t, "SELECT a FROM t WHERE b = ? AND c = ?", DB{}.Q("SELECT a FROM t WHERE b = ? AND c = ?"))
	assert.Equal(t, "SELECT a FROM t WHERE b = $1 AND c = $2", DB{Postgres: true}.Q("SELECT a FROM t WHERE b = ? AND c = ?"))
}
