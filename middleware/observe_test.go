package middleware_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/middleware"
	"github.com/keyflow-dev/keyflow/observe"
)

type authRecorder struct {
	observe.Nop
	mu  sync.Mutex
	got []observe.Authentication
}

func (r *authRecorder) Authenticated(_ context.Context, a observe.Authentication) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, a)
}

func (r *authRecorder) take() []observe.Authentication {
	r.mu.Lock()
	defer r.mu.Unlock()
	got := r.got
	r.got = nil
	return got
}

// TestHooksAuthenticated: every authenticated request is reported once,
// with its outcome; unauthenticated passes are not.
func TestHooksAuthenticated(t *testing.T) {
	f := newFixture(t)
	const envKey = "sk-the-env-key"
	for _, tc := range []struct {
		name     string
		cfg      middleware.Config
		key      string
		method   string
		preflite bool
		want     []observe.Authentication
	}{
		{"valid key", middleware.Config{}, f.valid, "GET", false, []observe.Authentication{{Outcome: observe.OK, Source: "db"}}},
		{"no key", middleware.Config{}, "", "GET", false, []observe.Authentication{{Outcome: observe.Missing}}},
		{"no key, auto-login without skip", middleware.Config{AutoLogin: true}, "", "GET", false, []observe.Authentication{{Outcome: observe.Missing}}},
		{"no key, auto-login", middleware.Config{AutoLogin: true, SkipAuthAutoLogin: true}, "", "GET", false, []observe.Authentication{{Outcome: observe.OK, Source: "auto-login"}}},
		{"env key", middleware.Config{EnvKey: envKey}, envKey, "GET", false, []observe.Authentication{{Outcome: observe.OK, Source: "env"}}},
		{"expired", middleware.Config{}, f.expired, "GET", false, []observe.Authentication{{Outcome: observe.Expired}}},
		{"disabled", middleware.Config{}, f.inactive, "GET", false, []observe.Authentication{{Outcome: observe.Disabled}}},
		{"revoked", middleware.Config{}, f.revoked, "GET", false, []observe.Authentication{{Outcome: observe.Unknown}}},
		{"optional, bad key", middleware.Config{Optional: true}, f.revoked, "GET", false, []observe.Authentication{{Outcome: observe.Unknown}}},
		{"optional, no key", middleware.Config{Optional: true}, "", "GET", false, nil},
		{"preflight", middleware.Config{}, "", "OPTIONS", true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &authRecorder{}
			cfg := tc.cfg
			cfg.Verifier, cfg.Hooks = f.m, rec
			cfg.Superuser = apikey.Principal{UserID: "su"}
			mw, err := middleware.New(cfg)
			require.NoError(t, err)
			r := httptest.NewRequest(tc.method, "/x", nil)
			if tc.key != "" {
				r.Header.Set("x-api-key", tc.key)
			}
			if tc.preflite {
				r.Header.Set("Access-Control-Request-Method", "GET")
			}
			mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})).ServeHTTP(httptest.NewRecorder(), r)
			assert.Equal(t, tc.want, rec.take())
		})
	}
}

func TestOutcomeOf(t *testing.T) {
	assert.Equal(t, observe.Missing, middleware.OutcomeOf(middleware.ErrNoKey))
	assert.Equal(t, observe.Missing, middleware.OutcomeOf(middleware.ErrAutoLoginNoKey))
	assert.Equal(t, observe.Disabled, middleware.OutcomeOf(apikey.ErrInactive))
	assert.Equal(t, observe.OK, middleware.OutcomeOf(nil))
}
