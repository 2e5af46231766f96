package sqlutil

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/keyflowtest/dbtest"
)

func TestDollar(t *testing.T) {
	tests := []struct{ in, want string }{
		{"SELECT 1", "SELECT 1"},
		{"WHERE a = ? AND b = ?", "WHERE a = $1 AND b = $2"},
		{"VALUES (?,?,?,?,?,?,?,?,?,?,?)", "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)"},
		{"name = 'é' AND x = ?", "name = 'é' AND x = $1"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, Dollar(tt.in), tt.in)
	}
}

// Two transactions holding the same lock name never overlap.
func TestLockMigrationsSerialises(t *testing.T) {
	db := dbtest.Postgres(t)
	var inside, overlaps atomic.Int32
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			tx, err := db.BeginTx(ctx, nil)
			if !assert.NoError(t, err) {
				return
			}
			defer func() { _ = tx.Rollback() }()
			require.NoError(t, LockMigrations(ctx, tx, "keyflow/test"))
			if inside.Add(1) > 1 {
				overlaps.Add(1)
			}
			time.Sleep(20 * time.Millisecond)
			inside.Add(-1)
			assert.NoError(t, tx.Commit())
		}()
	}
	wg.Wait()
	assert.Zero(t, overlaps.Load())
}
