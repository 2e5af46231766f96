package apikeyhttp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/apikey/apikeyhttp"
	"github.com/keyflow-dev/keyflow/middleware"
)

// Usage limits through the API: created with the key, changed with PATCH
// (absent fields kept, null removes), listed with the quota's uses left
// (each request of the limited key used one, the refused one too). The
// limited key itself may not change them. Windows are written back in their
// largest whole unit (24h as 1d).
func ExampleConfig_limits() {
	keys, _ := apikey.NewManager(apikey.Config{})
	defer keys.Close()
	admin, _, _ := keys.Create(context.Background(), "user-1", "admin", apikey.CreateOptions{})
	auth, _ := middleware.New(middleware.Config{Verifier: keys})
	h, _ := apikeyhttp.New(apikeyhttp.Config{Manager: keys, User: middleware.FromRequest})
	mux := http.NewServeMux()
	mux.Handle("/api/v1/api_key/", auth(http.StripPrefix("/api/v1/api_key", h)))

	w := call(mux, "POST", "/api/v1/api_key/", admin,
		`{"name": "partner", "rate_limits": ["100/1m"], "quota": 1000, "refill": "1000/month"}`)
	var partner struct {
		ID     string `json:"id"`
		APIKey string `json:"api_key"`
	}
	_ = json.Unmarshal(w.Body.Bytes(), &partner)
	fmt.Println("create:", w.Code)

	call(mux, "GET", "/api/v1/api_key/", partner.APIKey, "") // one use of the quota
	w = call(mux, "PATCH", "/api/v1/api_key/"+partner.ID, partner.APIKey, `{"quota": null}`)
	fmt.Println("by the limited key:", w.Code, strings.TrimSpace(w.Body.String()))

	w = call(mux, "PATCH", "/api/v1/api_key/"+partner.ID, admin, `{"rate_limits": ["100/1m", "5000/24h"], "refill": null}`)
	var got struct {
		RateLimits     []string `json:"rate_limits"`
		Quota          *int64   `json:"quota"`
		QuotaRemaining *int64   `json:"quota_remaining"`
		Refill         *string  `json:"refill"`
	}
	_ = json.Unmarshal(w.Body.Bytes(), &got)
	fmt.Println("patch:", w.Code, got.RateLimits, *got.Quota, *got.QuotaRemaining, got.Refill)
	// Output:
	// create: 200
	// by the limited key: 403 {"detail":"An API key with usage limits cannot create keys or change limits"}
	// patch: 200 [100/1m 5000/1d] 1000 998 <nil>
}
