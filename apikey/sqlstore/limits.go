package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/sqldialect"
)

// Usage limits (schema version 4).
//
// The key table gains the columns
//
//	limits           the rate limits and the quota's configuration, JSON; NULL: unlimited
//	quota_remaining  uses left; NULL: no quota
//	quota_period     start of the refill period of quota_remaining, Unix seconds; 0: no refill
//	quota_refill     the refill amount; 0: no refill
//	quota_epoch      incremented by each new grant (SetLimits with a reset)
//	quota_taken      what the last TakeQuota took (read back by its RETURNING)
//
// and the change log's update trigger also fires on limits, so that other
// instances pick up new limits within their change feed's bound. Quotas are
// taken with one UPDATE … RETURNING that refills a quota whose period is
// over, takes min(n, remaining) and reports it: atomic on both databases, so
// processes sharing the database never take more than granted. The quota
// columns are not in the trigger's column list: taking uses changes no
// cached verdict.
//
// "<table>_rate" counts the windows of rate limits for the Store as an
// apikey.Limiter: one row per key, limit name and window length, holding the
// current window and the units taken in it, updated by one INSERT … ON
// CONFLICT DO UPDATE … RETURNING that never takes more than the limit and
// never moves a row back to an older window.
func limitsSchema(d sqldialect.Dialect, table string) []string {
	bigint := "INTEGER"
	if d == sqldialect.Postgres {
		bigint = "BIGINT"
	}
	c := table + "_changes"
	stmts := []string{
		"ALTER TABLE " + table + " ADD COLUMN limits TEXT",
		"ALTER TABLE " + table + " ADD COLUMN quota_remaining " + bigint,
		"ALTER TABLE " + table + " ADD COLUMN quota_period " + bigint + " NOT NULL DEFAULT 0",
		"ALTER TABLE " + table + " ADD COLUMN quota_refill " + bigint + " NOT NULL DEFAULT 0",
		"ALTER TABLE " + table + " ADD COLUMN quota_epoch " + bigint + " NOT NULL DEFAULT 0",
		"ALTER TABLE " + table + " ADD COLUMN quota_taken " + bigint + " NOT NULL DEFAULT 0",
		"CREATE TABLE " + table + "_rate (key_id TEXT NOT NULL, name TEXT NOT NULL, len " + bigint + " NOT NULL, " +
			"win " + bigint + " NOT NULL, used " + bigint + " NOT NULL, granted " + bigint + " NOT NULL, " +
			"PRIMARY KEY (key_id, name, len))",
	}
	const watched = "user_id, name, api_key_hash, is_active, expires_at, scopes, limits"
	if d == sqldialect.Postgres {
		return append(stmts,
			"DROP TRIGGER "+c+"_upd ON "+table,
			"CREATE TRIGGER "+c+"_upd AFTER UPDATE OF "+watched+" ON "+table+
				" FOR EACH ROW EXECUTE FUNCTION "+table+"_changes_log()")
	}
	return append(stmts,
		"DROP TRIGGER "+c+"_upd",
		"CREATE TRIGGER "+c+"_upd AFTER UPDATE OF "+watched+" ON "+table+
			" BEGIN INSERT INTO "+c+" (api_key_hash) VALUES (OLD.api_key_hash); "+
			"INSERT INTO "+c+" (api_key_hash) SELECT NEW.api_key_hash WHERE NEW.api_key_hash <> OLD.api_key_hash; END")
}

type limitQueries struct {
	setLimits, takeQuota, returnQuota, take, pruneRate string
}

// limitQueries are written with $n placeholders; on SQLite they become ?n.
func newLimitQueries(d sqldialect.Dialect, table string) limitQueries {
	least, greatest := "LEAST", "GREATEST"
	if d == sqldialect.SQLite {
		least, greatest = "MIN", "MAX"
	}
	refill := "(quota_refill > 0 AND $3 > quota_period)"
	avail := "(CASE WHEN " + refill + " THEN quota_refill ELSE quota_remaining END)"
	rate := table + "_rate"
	q := limitQueries{
		// $1 limits, $2 has quota (0/1), $3 reset (0/1), $4 grant, $5 period,
		// $6 refill, $7 id, $8 user_id.
		setLimits: "UPDATE " + table + " SET limits = $1, quota_refill = $6, " +
			"quota_remaining = CASE WHEN $2 = 0 THEN NULL WHEN $3 = 1 OR quota_remaining IS NULL THEN $4 ELSE quota_remaining END, " +
			"quota_period = CASE WHEN $2 = 0 THEN 0 WHEN $3 = 1 OR quota_remaining IS NULL THEN $5 ELSE quota_period END, " +
			"quota_epoch = CASE WHEN $2 = 1 AND ($3 = 1 OR quota_remaining IS NULL) THEN quota_epoch + 1 ELSE quota_epoch END " +
			"WHERE id = $7 AND user_id = $8 RETURNING " + columns,
		// $1 id, $2 n, $3 current period.
		takeQuota: "UPDATE " + table + " SET " +
			"quota_taken = " + least + "($2, " + avail + "), " +
			"quota_remaining = " + avail + " - " + least + "($2, " + avail + "), " +
			"quota_period = CASE WHEN " + refill + " THEN $3 ELSE quota_period END " +
			"WHERE id = $1 AND quota_remaining IS NOT NULL " +
			"RETURNING quota_taken, quota_remaining, quota_period, quota_epoch",
		// $1 id, $2 n, $3 period, $4 epoch.
		returnQuota: "UPDATE " + table + " SET quota_remaining = quota_remaining + $2 " +
			"WHERE id = $1 AND quota_remaining IS NOT NULL AND quota_period = $3 AND quota_epoch = $4",
		// $1 key, $2 name, $3 len, $4 win, $5 n, $6 limit.
		take: "INSERT INTO " + rate + " (key_id, name, len, win, used, granted) " +
			"VALUES ($1, $2, CAST($3 AS BIGINT), CAST($4 AS BIGINT), " + least + "(CAST($5 AS BIGINT), CAST($6 AS BIGINT)), " + least + "(CAST($5 AS BIGINT), CAST($6 AS BIGINT))) " +
			"ON CONFLICT (key_id, name, len) DO UPDATE SET " +
			"granted = CASE WHEN " + rate + ".win = excluded.win THEN " + least + "($5, " + greatest + "($6 - " + rate + ".used, 0)) " +
			"WHEN " + rate + ".win < excluded.win THEN excluded.used ELSE 0 END, " +
			"used = CASE WHEN " + rate + ".win = excluded.win THEN " + rate + ".used + " + least + "($5, " + greatest + "($6 - " + rate + ".used, 0)) " +
			"WHEN " + rate + ".win < excluded.win THEN excluded.used ELSE " + rate + ".used END, " +
			"win = " + greatest + "(" + rate + ".win, excluded.win) " +
			"RETURNING granted, used, win",
		pruneRate: "DELETE FROM " + rate + " WHERE NOT EXISTS (SELECT 1 FROM " + table + " k WHERE k.id = " + rate + ".key_id)",
	}
	if d == sqldialect.SQLite {
		for _, s := range []*string{&q.setLimits, &q.takeQuota, &q.returnQuota, &q.take} {
			*s = strings.ReplaceAll(*s, "$", "?")
		}
	}
	return q
}

var (
	_ apikey.LimitStore = (*Store)(nil)
	_ apikey.Limiter    = (*Store)(nil)
)

// limitsJSON is the limits column.
type limitsJSON struct {
	Rate  []rateJSON `json:"rate,omitempty"`
	Quota *quotaJSON `json:"quota,omitempty"`
}

type rateJSON struct {
	Name   string `json:"name"`
	Limit  int64  `json:"limit"`
	Window int64  `json:"window"` // seconds
}

type quotaJSON struct {
	Limit        int64  `json:"limit"`
	RefillAmount int64  `json:"refill_amount,omitempty"`
	RefillPeriod string `json:"refill_period,omitempty"`
}

// limitArgs returns the columns of l: the JSON (nil when unlimited), the
// remaining uses and the period (Unix seconds) of its quota, and its refill.
func limitArgs(l apikey.Limits) (js any, remaining any, period, refill int64, err error) {
	if l.IsZero() {
		return nil, nil, 0, 0, nil
	}
	var v limitsJSON
	for _, r := range l.Rate {
		v.Rate = append(v.Rate, rateJSON{r.Name, r.Limit, int64(r.Window / time.Second)})
	}
	if q := l.Quota; q != nil {
		v.Quota = &quotaJSON{Limit: q.Limit, RefillAmount: q.Refill.Amount, RefillPeriod: string(q.Refill.Period)}
		remaining, refill = q.Remaining, q.Refill.Amount
		if !q.PeriodStart.IsZero() {
			period = q.PeriodStart.Unix()
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, nil, 0, 0, fmt.Errorf("sqlstore: encode limits: %w", err)
	}
	return string(b), remaining, period, refill, nil
}

// decodeLimits reads the limits columns back.
func decodeLimits(js sql.NullString, remaining sql.NullInt64, period int64) (apikey.Limits, error) {
	if !js.Valid || js.String == "" {
		return apikey.Limits{}, nil
	}
	var v limitsJSON
	if err := json.Unmarshal([]byte(js.String), &v); err != nil {
		return apikey.Limits{}, fmt.Errorf("limits: %w", err)
	}
	var l apikey.Limits
	for _, r := range v.Rate {
		l.Rate = append(l.Rate, apikey.RateLimit{Name: r.Name, Limit: r.Limit, Window: time.Duration(r.Window) * time.Second})
	}
	if q := v.Quota; q != nil {
		l.Quota = &apikey.Quota{
			Limit:     q.Limit,
			Refill:    apikey.Refill{Amount: q.RefillAmount, Period: apikey.Period(q.RefillPeriod)},
			Remaining: remaining.Int64,
		}
		if period != 0 {
			l.Quota.PeriodStart = time.Unix(period, 0).UTC()
		}
	}
	return l, nil
}

// SetLimits implements apikey.LimitStore in one UPDATE.
func (s *Store) SetLimits(ctx context.Context, userID, id string, l apikey.Limits, resetQuota bool) (apikey.Record, error) {
	js, remaining, period, refill, err := limitArgs(l)
	if err != nil {
		return apikey.Record{}, err
	}
	hasQuota, reset := 0, 0
	if l.Quota != nil {
		hasQuota = 1
	}
	if resetQuota {
		reset = 1
	}
	return s.one(ctx, "set limits", s.lq.setLimits, js, hasQuota, reset, remaining, period, refill, id, userID)
}

// TakeQuota implements apikey.LimitStore in one UPDATE … RETURNING.
func (s *Store) TakeQuota(ctx context.Context, id string, n int64, period time.Time) (apikey.QuotaTake, error) {
	var p int64
	if !period.IsZero() {
		p = period.Unix()
	}
	var t apikey.QuotaTake
	var stored int64
	err := s.db.QueryRowContext(ctx, s.lq.takeQuota, id, max(n, 0), p).Scan(&t.Taken, &t.Remaining, &stored, &t.Epoch)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return apikey.QuotaTake{}, apikey.ErrNotFound
	case err != nil:
		return apikey.QuotaTake{}, fmt.Errorf("sqlstore: take quota: %w", err)
	}
	if stored != 0 {
		t.Period = time.Unix(stored, 0).UTC()
	}
	return t, nil
}

// ReturnQuota implements apikey.LimitStore.
func (s *Store) ReturnQuota(ctx context.Context, id string, n int64, t apikey.QuotaTake) error {
	if n <= 0 {
		return ctx.Err()
	}
	var p int64
	if !t.Period.IsZero() {
		p = t.Period.Unix()
	}
	if _, err := s.db.ExecContext(ctx, s.lq.returnQuota, id, n, p, t.Epoch); err != nil {
		return fmt.Errorf("sqlstore: return quota: %w", err)
	}
	return nil
}

// Take implements apikey.Limiter on the table "<table>_rate": one statement
// (one round trip) per block of units. Instances that share the database
// share the counts.
func (s *Store) Take(ctx context.Context, w apikey.Window, n int64) (taken, left int64, err error) {
	var used, win int64
	err = s.db.QueryRowContext(ctx, s.lq.take, w.KeyID, w.Name, int64(w.Length/time.Second), w.Index, max(n, 0), w.Limit).Scan(&taken, &used, &win)
	if err != nil {
		return 0, 0, fmt.Errorf("sqlstore: take rate limit units: %w", err)
	}
	if win != w.Index {
		return 0, 0, nil // the row is in a later window: this clock lags
	}
	return taken, w.Limit - used, nil
}
