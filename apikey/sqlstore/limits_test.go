package sqlstore_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/apikey/sqlstore"
)

// Four Managers on one database, each with its own Store as Limiter, as
// four server processes run: the rate limit and the quota are never
// exceeded between them, also when one Manager "dies" holding a lease (it
// is never closed before the end: its reserved uses are lost, within one
// block).
func TestLimitsAcrossManagers(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			ctx := context.Background()
			db := d.open(t)
			newManager := func() *apikey.Manager {
				s, err := sqlstore.New(ctx, db, sqlstore.Config{Dialect: d.dialect})
				require.NoError(t, err)
				m, err := apikey.NewManager(apikey.Config{Store: s, Limiter: s, Changes: s})
				require.NoError(t, err)
				t.Cleanup(func() { _ = m.Close() })
				return m
			}
			ms := []*apikey.Manager{newManager(), newManager(), newManager(), newManager()}
			rate := apikey.Limits{Rate: []apikey.RateLimit{{Limit: 600, Window: 24 * time.Hour}}}
			quota := apikey.Limits{Quota: &apikey.Quota{Limit: 2000}}
			rateKey, _, err := ms[0].Create(ctx, "u", "rate", apikey.CreateOptions{Limits: rate})
			require.NoError(t, err)
			quotaKey, quotaRec, err := ms[0].Create(ctx, "u", "quota", apikey.CreateOptions{Limits: quota})
			require.NoError(t, err)

			// The "killed" instance takes a lease (a block of 10: 0.5 % of
			// 2000) and is never used again.
			dead := newManager()
			_, err = dead.Verify(ctx, quotaKey)
			require.NoError(t, err)

			count := func(key string, per int) (ok int64) {
				var n atomic.Int64
				var wg sync.WaitGroup
				for _, m := range ms {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for range per {
							_, err := m.Verify(ctx, key)
							switch {
							case err == nil:
								n.Add(1)
							case errors.Is(err, apikey.ErrRateLimited), errors.Is(err, apikey.ErrQuotaExhausted):
							default:
								t.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				return n.Load()
			}
			ok := count(rateKey, 200)
			assert.LessOrEqual(t, ok, int64(600), "rate: never more than the limit")
			assert.GreaterOrEqual(t, ok, int64(600-4*3), "rate: at most a block per other Manager held back")

			ok = count(quotaKey, 600)
			assert.LessOrEqual(t, ok+1, int64(2000), "quota: never more than granted (with the dead instance's use)")
			assert.GreaterOrEqual(t, ok+1, int64(2000-10-4*10), "quota: the dead instance's lease and the others' blocks at most")
			for _, m := range ms {
				require.NoError(t, m.Close()) // hand back what they hold
			}
			recs, err := ms[0].List(ctx, "u")
			require.NoError(t, err)
			for _, r := range recs {
				if r.ID == quotaRec.ID {
					lost := 2000 - ok - 1 - r.Limits.Quota.Remaining
					assert.GreaterOrEqual(t, lost, int64(0))
					assert.LessOrEqual(t, lost, int64(9), "at most the unused lease of the instance that was never closed (it may have returned it when idle)")
				}
			}
		})
	}
}
