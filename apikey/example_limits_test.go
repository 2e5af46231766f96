package apikey_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/keyflow-dev/keyflow/apikey"
)

// A key allowed 2 requests a minute and 100 uses a month (refilled on the
// 1st): the third request of the minute is refused, with when to retry.
func ExampleLimits() {
	now := time.Date(2026, 3, 31, 23, 59, 30, 0, time.UTC)
	m, err := apikey.NewManager(apikey.Config{Now: func() time.Time { return now }})
	if err != nil {
		panic(err)
	}
	defer m.Close()
	perMinute, err := apikey.ParseRateLimit("2/1m")
	if err != nil {
		panic(err)
	}
	monthly, err := apikey.ParseRefill("100/month")
	if err != nil {
		panic(err)
	}
	limits := apikey.Limits{Rate: []apikey.RateLimit{perMinute}, Quota: &apikey.Quota{Limit: 100, Refill: monthly}}
	key, _, err := m.Create(context.Background(), "user-1", "partner", apikey.CreateOptions{Limits: limits})
	if err != nil {
		panic(err)
	}
	for range 3 {
		_, charge, err := m.VerifyCharge(context.Background(), key, 1)
		var le *apikey.LimitError
		switch {
		case err == nil:
			fmt.Printf("ok: %+v\n", charge.Status())
		case errors.As(err, &le):
			fmt.Println(errors.Is(err, apikey.ErrRateLimited), le.Policy, "retry after", le.RetryAfter)
		}
	}
	// Output:
	// ok: [{Name:minute Limit:2 Window:1m0s Remaining:1 Reset:30s} {Name:quota Limit:100 Window:744h0m0s Remaining:99 Reset:30s}]
	// ok: [{Name:minute Limit:2 Window:1m0s Remaining:0 Reset:30s} {Name:quota Limit:100 Window:744h0m0s Remaining:98 Reset:30s}]
	// true minute retry after 30s
}

// Limits are changed on an existing key: here a trial key of 3 uses gets a
// new grant of 1 000 uses and a rate limit. Without resetQuota, the uses
// left would be kept.
func ExampleManager_SetLimits() {
	ctx := context.Background()
	m, err := apikey.NewManager(apikey.Config{})
	if err != nil {
		panic(err)
	}
	defer m.Close()
	key, rec, err := m.Create(ctx, "user-1", "trial", apikey.CreateOptions{Limits: apikey.Limits{Quota: &apikey.Quota{Limit: 3}}})
	if err != nil {
		panic(err)
	}
	for range 3 {
		if _, err := m.Verify(ctx, key); err != nil {
			panic(err)
		}
	}
	_, err = m.Verify(ctx, key)
	fmt.Println("trial:", err)

	perMinute, err := apikey.ParseRateLimit("100/1m")
	if err != nil {
		panic(err)
	}
	paid := apikey.Limits{Rate: []apikey.RateLimit{perMinute}, Quota: &apikey.Quota{Limit: 1000}}
	rec, err = m.SetLimits(ctx, "user-1", rec.ID, paid, true)
	if err != nil {
		panic(err)
	}
	_, err = m.Verify(ctx, key)
	fmt.Println("paid:", err, rec.Limits.Rate[0], rec.Limits.Quota.Limit)
	// Output:
	// trial: apikey: API key quota exhausted
	// paid: <nil> 100/1m 1000
}
