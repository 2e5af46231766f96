package sqlutil_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/internal/sqlutil"
)

func TestNullTimeScan(t *testing.T) {
	want := time.Date(2026, 1, 16, 9, 30, 15, 123456000, time.UTC)
	for _, src := range []any{
		"2026-01-16T09:30:15.123456Z",        // keyflow's SQLite form
		"2026-01-16 09:30:15.123456",         // SQLAlchemy's SQLite DateTime (Langflow)
		"2026-01-16 09:30:15.123456+00:00",   // with an offset
		"2026-01-16 11:30:15.123456+02:00",   // another zone: read as UTC
		"2026-01-16T09:30:15.123456",         // ISO without a zone
		[]byte("2026-01-16 09:30:15.123456"), // some drivers give text as bytes
		want.In(time.FixedZone("x", 3600)),   // a driver's time.Time
	} {
		var v sqlutil.NullTime
		require.NoError(t, v.Scan(src), "%v", src)
		assert.True(t, v.Valid)
		assert.True(t, v.T.Equal(want), "%v: %v", src, v.T)
		assert.Equal(t, time.UTC, v.T.Location())
		require.NotNil(t, v.Ptr())
	}
	var v sqlutil.NullTime
	require.NoError(t, v.Scan("2026-01-16 09:30:15"))
	assert.Equal(t, 15, v.T.Second())
	require.NoError(t, v.Scan(nil))
	assert.False(t, v.Valid)
	assert.Nil(t, v.Ptr())
	assert.Error(t, v.Scan("yesterday"))
	assert.Error(t, v.Scan(42))
}
