package sqlstore_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/internal/latency"
	"github.com/keyflow-dev/keyflow/keyflowtest/dbtest"
	"github.com/keyflow-dev/keyflow/sqldialect"
)

// benchVerifyLimited: a warm verification of one key with the Store as the
// Limiter and the quota's store, as instances sharing the database run it:
// unlimited (the baseline), a rate limit, a quota. The limits are large
// (blocks of 10 000 units, 0.5 % of the limit, capped), so about one
// verification in 10 000 waits for the database; BenchmarkLimiterTake*
// measures that wait.
func benchVerifyLimited(b *testing.B, db *sql.DB, dialect sqldialect.Dialect) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		limits apikey.Limits
	}{
		{"unlimited", apikey.Limits{}},
		{"rate", apikey.Limits{Rate: []apikey.RateLimit{{Limit: apikey.MaxLimit, Window: time.Hour}}}},
		{"quota", apikey.Limits{Quota: &apikey.Quota{Limit: apikey.MaxLimit}}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			_, m := newBenchManager(b, db, dialect, apikey.Config{}, true)
			key, _, err := m.Create(ctx, "u", "bench", apikey.CreateOptions{Limits: tc.limits})
			if err != nil {
				b.Fatal(err)
			}
			latency.Measure(b, 100, func() error { _, err := m.Verify(ctx, key); return err })
		})
	}
}

func BenchmarkVerifyLimitedSQLite(b *testing.B) {
	benchVerifyLimited(b, dbtest.SQLite(b), sqldialect.SQLite)
}

func BenchmarkVerifyLimitedPostgres(b *testing.B) {
	benchVerifyLimited(b, dbtest.Postgres(b), sqldialect.Postgres)
}

// benchTake: one block reservation, what a limited key's verification waits
// for when its lease runs out: a rate-limit Take (one INSERT … ON CONFLICT
// … RETURNING) and a TakeQuota (one UPDATE … RETURNING).
func benchTake(b *testing.B, db *sql.DB, dialect sqldialect.Dialect) {
	ctx := context.Background()
	s, m := newBenchManager(b, db, dialect, apikey.Config{}, false)
	_, rec, err := m.Create(ctx, "u", "bench", apikey.CreateOptions{Limits: apikey.Limits{Quota: &apikey.Quota{Limit: apikey.MaxLimit}}})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("rate", func(b *testing.B) {
		w := apikey.Window{KeyID: rec.ID, Name: "hour", Limit: apikey.MaxLimit, Length: time.Hour, Index: time.Now().Unix() / 3600}
		latency.Measure(b, 0, func() error { _, _, err := s.Take(ctx, w, 50); return err })
	})
	b.Run("quota", func(b *testing.B) {
		latency.Measure(b, 0, func() error { _, err := s.TakeQuota(ctx, rec.ID, 50, time.Time{}); return err })
	})
}

func BenchmarkLimiterTakeSQLite(b *testing.B) {
	benchTake(b, dbtest.SQLite(b), sqldialect.SQLite)
}

func BenchmarkLimiterTakePostgres(b *testing.B) {
	benchTake(b, dbtest.Postgres(b), sqldialect.Postgres)
}
