package sqldialect_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/keyflow-dev/keyflow/sqldialect"
)

func TestValid(t *testing.T) {
	assert.True(t, sqldialect.SQLite.Valid())
	assert.True(t, sqldialect.Postgres.Valid())
	for _, d := range []sqldialect.Dialect{"", "mysql", "SQLite", "postgresql"} {
		assert.False(t, d.Valid(), "%q", d)
	}
}
