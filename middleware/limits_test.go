package middleware_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/keyflowtest"
	"github.com/keyflow-dev/keyflow/middleware"
)

type limitedSetup struct {
	clock *keyflowtest.Clock
	keys  *apikey.Manager
	h     http.Handler
	fail  bool // the handler answers 500
	mu    sync.Mutex
}

func newLimitedSetup(t *testing.T, cfg apikey.Config, mw middleware.Config) *limitedSetup {
	t.Helper()
	s := &limitedSetup{clock: keyflowtest.NewClock(time.Date(2026, 3, 31, 23, 59, 30, 0, time.UTC))}
	cfg.Now = s.clock.Now
	s.keys = keyflowtest.NewManagerConfig(t, cfg)
	mw.Verifier = s.keys
	auth, err := middleware.New(mw)
	require.NoError(t, err)
	s.h = auth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		fail := s.fail
		s.mu.Unlock()
		if fail {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	return s
}

func (s *limitedSetup) do(key, path string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	s.h.ServeHTTP(w, keyflowtest.WithKey(httptest.NewRequest(http.MethodGet, path, nil), key))
	return w
}

// The 429: status, JSON detail, Retry-After and the RateLimit fields, and
// the fields on every response to a limited key (none for others).
func TestRateLimitAnswer(t *testing.T) {
	t.Parallel()
	s := newLimitedSetup(t, apikey.Config{}, middleware.Config{})
	l := keyflowtest.RateLimits(t, "2/1m", "100/24h")
	l.Quota = &apikey.Quota{Limit: 1000, Refill: apikey.Refill{Amount: 1000, Period: apikey.PeriodMonth}}
	key := keyflowtest.NewLimitedKey(t, s.keys, "u", l)
	free := keyflowtest.NewKey(t, s.keys, "u")

	w := s.do(key, "/")
	require.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, `"minute";q=2;w=60, "day";q=100;w=86400, "quota";q=1000;w=2678400`, w.Header().Get("RateLimit-Policy"))
	assert.Equal(t, `"minute";r=1;t=30, "day";r=99;t=30, "quota";r=999;t=30`, w.Header().Get("RateLimit"))
	assert.Empty(t, w.Header().Get("Retry-After"))

	require.Equal(t, http.StatusOK, s.do(key, "/").Code)
	w = s.do(key, "/")
	require.Equal(t, http.StatusTooManyRequests, w.Code)
	assert.Equal(t, "application/json", w.Header().Get("Content-Type"))
	assert.Equal(t, "API key rate limit exceeded", detail(t, w.Body.String()))
	assert.Equal(t, "30", w.Header().Get("Retry-After"))
	assert.Equal(t, `"minute";q=2;w=60, "day";q=100;w=86400, "quota";q=1000;w=2678400`, w.Header().Get("RateLimit-Policy"))
	assert.Equal(t, `"minute";r=0;t=30, "day";r=98;t=30, "quota";r=998;t=30`, w.Header().Get("RateLimit"))
	assert.NotContains(t, w.Body.String(), key)

	w = s.do(free, "/")
	require.Equal(t, http.StatusOK, w.Code)
	assert.Empty(t, w.Header().Get("RateLimit-Policy"), "no fields for an unlimited key")
	assert.Empty(t, w.Header().Get("RateLimit"))

	// Across midnight of the 1st of April: every window and the quota start again.
	s.clock.Advance(30 * time.Second)
	w = s.do(key, "/")
	require.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, `"minute";q=2;w=60, "day";q=100;w=86400, "quota";q=1000;w=2592000`, w.Header().Get("RateLimit-Policy"))
	assert.Equal(t, `"minute";r=1;t=60, "day";r=99;t=86400, "quota";r=999;t=2592000`, w.Header().Get("RateLimit"))
}

func TestQuotaAnswer(t *testing.T) {
	t.Parallel()
	s := newLimitedSetup(t, apikey.Config{}, middleware.Config{})
	key := keyflowtest.NewLimitedKey(t, s.keys, "u", apikey.Limits{Quota: &apikey.Quota{Limit: 2}})
	require.Equal(t, http.StatusOK, s.do(key, "/").Code)
	w := s.do(key, "/")
	require.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, `"quota";q=2`, w.Header().Get("RateLimit-Policy"))
	assert.Equal(t, `"quota";r=0`, w.Header().Get("RateLimit"))
	w = s.do(key, "/")
	require.Equal(t, http.StatusTooManyRequests, w.Code)
	assert.Equal(t, "API key quota exhausted", detail(t, w.Body.String()))
	assert.Equal(t, "86400", w.Header().Get("Retry-After"), "a quota never refilled: a day")
}

// Requests the server fails (5xx) give their quota back; others do not.
func TestFailedRequestsAreRefunded(t *testing.T) {
	t.Parallel()
	s := newLimitedSetup(t, apikey.Config{}, middleware.Config{})
	key := keyflowtest.NewLimitedKey(t, s.keys, "u", apikey.Limits{Quota: &apikey.Quota{Limit: 3}})
	s.fail = true
	for range 10 {
		w := s.do(key, "/")
		require.Equal(t, http.StatusInternalServerError, w.Code)
		assert.Equal(t, `"quota";r=2`, w.Header().Get("RateLimit"), "what the charge left, before the refund")
	}
	s.fail = false
	for range 3 {
		require.Equal(t, http.StatusOK, s.do(key, "/").Code)
	}
	assert.Equal(t, http.StatusTooManyRequests, s.do(key, "/").Code)
}

// A panicking handler is refunded too, and the panic goes on.
func TestPanicIsRefunded(t *testing.T) {
	t.Parallel()
	clock := keyflowtest.NewClock(time.Time{})
	keys := keyflowtest.NewManagerConfig(t, apikey.Config{Now: clock.Now})
	key := keyflowtest.NewLimitedKey(t, keys, "u", apikey.Limits{Quota: &apikey.Quota{Limit: 1}})
	auth, err := middleware.New(middleware.Config{Verifier: keys})
	require.NoError(t, err)
	h := auth(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }))
	assert.PanicsWithValue(t, http.ErrAbortHandler, func() {
		h.ServeHTTP(httptest.NewRecorder(), keyflowtest.WithKey(httptest.NewRequest(http.MethodGet, "/", nil), key))
	})
	_, err = keys.Verify(context.Background(), key)
	assert.NoError(t, err, "the panicked request's use was given back")
}

// A client that hangs up mid-answer gets no refund: the panic
// httputil.ReverseProxy makes (http.ErrAbortHandler) after the status was
// written is charged, unlike a panic before any answer (TestPanicIsRefunded).
func TestAbortAfterAnswerIsCharged(t *testing.T) {
	t.Parallel()
	clock := keyflowtest.NewClock(time.Time{})
	keys := keyflowtest.NewManagerConfig(t, apikey.Config{Now: clock.Now})
	key := keyflowtest.NewLimitedKey(t, keys, "u", apikey.Limits{Quota: &apikey.Quota{Limit: 1}})
	auth, err := middleware.New(middleware.Config{Verifier: keys})
	require.NoError(t, err)
	h := auth(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("most of a long answer"))
		panic(http.ErrAbortHandler)
	}))
	assert.PanicsWithValue(t, http.ErrAbortHandler, func() {
		h.ServeHTTP(httptest.NewRecorder(), keyflowtest.WithKey(httptest.NewRequest(http.MethodGet, "/", nil), key))
	})
	_, err = keys.Verify(context.Background(), key)
	assert.ErrorIs(t, err, apikey.ErrQuotaExhausted, "the answered request's use was kept")
}

// Config.Cost charges by request.
func TestCost(t *testing.T) {
	t.Parallel()
	s := newLimitedSetup(t, apikey.Config{}, middleware.Config{Cost: func(r *http.Request) int64 {
		if r.URL.Path == "/run" {
			return 10
		}
		return 1
	}})
	key := keyflowtest.NewLimitedKey(t, s.keys, "u", keyflowtest.RateLimits(t, "12/1h"))
	assert.Equal(t, http.StatusOK, s.do(key, "/run").Code)
	assert.Equal(t, http.StatusTooManyRequests, s.do(key, "/run").Code, "2 units left, a run costs 10")
	assert.Equal(t, http.StatusOK, s.do(key, "/read").Code)
	w := s.do(key, "/read")
	assert.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, `"hour";r=0;t=30`, w.Header().Get("RateLimit"))
}

// failingLimiter is a Limiter that is down.
type failingLimiter struct{}

func (failingLimiter) Take(context.Context, apikey.Window, int64) (int64, int64, error) {
	return 0, 0, errors.New("dial tcp 127.0.0.1:6379: connection refused")
}

// A limiter outage: limited keys get 503 (fail closed) or pass (fail
// open); unlimited keys are never affected.
func TestLimiterOutage(t *testing.T) {
	t.Parallel()
	for _, failOpen := range []bool{false, true} {
		s := newLimitedSetup(t, apikey.Config{Limiter: failingLimiter{}, LimitsFailOpen: failOpen}, middleware.Config{Logger: slog.New(slog.DiscardHandler)})
		key := keyflowtest.NewLimitedKey(t, s.keys, "u", keyflowtest.RateLimits(t, "100/1m"))
		free := keyflowtest.NewKey(t, s.keys, "u")
		assert.Equal(t, http.StatusOK, s.do(free, "/").Code)
		w := s.do(key, "/")
		if failOpen {
			assert.Equal(t, http.StatusOK, w.Code)
		} else {
			assert.Equal(t, http.StatusServiceUnavailable, w.Code)
			assert.Equal(t, msgUnavailable, detail(t, w.Body.String()))
			assert.NotContains(t, w.Body.String(), "6379")
		}
	}
}

// Concurrent requests on one key: exactly the limit is accepted.
func TestConcurrentRequestsOneKey(t *testing.T) {
	t.Parallel()
	s := newLimitedSetup(t, apikey.Config{}, middleware.Config{})
	key := keyflowtest.NewLimitedKey(t, s.keys, "u", keyflowtest.RateLimits(t, "250/1h"))
	codes := make(chan int, 400)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				codes <- s.do(key, "/").Code
			}
		}()
	}
	wg.Wait()
	close(codes)
	n := map[int]int{}
	for c := range codes {
		n[c]++
	}
	assert.Equal(t, map[int]int{200: 250, 429: 150}, n)
}
