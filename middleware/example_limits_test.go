package middleware_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/middleware"
)

// A key allowed 10 units a minute, where a run costs 5 and anything else 1:
// two runs spend the minute, and the third request is answered 429 with
// Retry-After and the RateLimit fields.
func ExampleConfig_cost() {
	now := time.Date(2026, 3, 31, 12, 0, 15, 0, time.UTC)
	keys, err := apikey.NewManager(apikey.Config{Now: func() time.Time { return now }})
	if err != nil {
		panic(err)
	}
	defer keys.Close()
	perMinute, err := apikey.ParseRateLimit("10/1m")
	if err != nil {
		panic(err)
	}
	key, _, err := keys.Create(context.Background(), "user-1", "partner",
		apikey.CreateOptions{Limits: apikey.Limits{Rate: []apikey.RateLimit{perMinute}}})
	if err != nil {
		panic(err)
	}
	auth, err := middleware.New(middleware.Config{
		Verifier: keys, // an *apikey.Manager charges limited keys
		Cost: func(r *http.Request) int64 {
			if r.URL.Path == "/run" {
				return 5
			}
			return 1
		},
	})
	if err != nil {
		panic(err)
	}
	h := auth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	for _, path := range []string{"/run", "/run", "/status"} {
		r := httptest.NewRequest(http.MethodPost, path, nil)
		r.Header.Set("x-api-key", key)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Println(w.Code, w.Header().Get("RateLimit"), w.Header().Get("Retry-After"), w.Body.String())
	}
	// Output:
	// 200 "minute";r=5;t=45  ok
	// 200 "minute";r=0;t=45  ok
	// 429 "minute";r=0;t=45 45 {"detail":"API key rate limit exceeded"}
}
