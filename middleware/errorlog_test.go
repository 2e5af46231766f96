package middleware_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/middleware"
)

// outageVerifier fails like a store that went down: the first error says
// why, the later ones say something else.
type outageVerifier struct{ calls atomic.Int64 }

func (v *outageVerifier) Verify(context.Context, string) (apikey.Principal, error) {
	if v.calls.Add(1) == 1 {
		return apikey.Principal{}, fmt.Errorf("%w: dial tcp 10.0.0.7:5432: connection refused", apikey.ErrUnavailable)
	}
	return apikey.Principal{}, fmt.Errorf("%w: FATAL: terminating connection due to administrator command", apikey.ErrUnavailable)
}

// TestMiddleware_OutageLogsFewLines: a thousand requests refused with 503
// while the store is down write one Error line at once, with the first
// cause, then one summary per ErrorLogInterval with the count and the
// latest cause, and an Info line when the failures stop — not one line per
// request. Every request still gets its 503.
func TestMiddleware_OutageLogsFewLines(t *testing.T) {
	var logs logBuf
	v := &outageVerifier{}
	mw, err := middleware.New(middleware.Config{Verifier: v, Logger: debugLogger(&logs), ErrorLogInterval: 100 * time.Millisecond})
	require.NoError(t, err)
	h := mw(http.NotFoundHandler())
	errorLines := func() []string {
		var out []string
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "level=ERROR") {
				out = append(out, l)
			}
		}
		return out
	}
	for range 1000 {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("x-api-key", "sk-some-key")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		require.Equal(t, http.StatusServiceUnavailable, w.Code)
	}
	lines := errorLines()
	require.NotEmpty(t, lines)
	assert.Contains(t, lines[0], "connection refused", "the first cause is logged at once")
	assert.LessOrEqual(t, len(lines), 3, "not one line per request")
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "level=INFO") }, 5*time.Second, 10*time.Millisecond,
		"the run is closed once the failures stop")
	lines = errorLines()
	last := lines[len(lines)-1]
	assert.Contains(t, last, "repeated=")
	assert.Contains(t, last, "administrator command", "the summary gives the latest cause")
	assert.Contains(t, logs.String(), "failures=1000")
	assert.NotContains(t, logs.String(), "sk-some-key")
}

// TestMiddleware_ErrorLogIntervalNegative keeps one line per failure.
func TestMiddleware_ErrorLogIntervalNegative(t *testing.T) {
	var logs logBuf
	mw, err := middleware.New(middleware.Config{Verifier: brokenVerifier{}, Logger: debugLogger(&logs), ErrorLogInterval: -1})
	require.NoError(t, err)
	for range 5 {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("x-api-key", "sk-some-key")
		mw(http.NotFoundHandler()).ServeHTTP(httptest.NewRecorder(), r)
	}
	assert.Equal(t, 5, strings.Count(logs.String(), "level=ERROR"))
}

// TestMiddleware_ClientGoneIsNoOutage: a verification that fails because
// the client went away (its context cancelled) is not a store failure: no
// Error line.
func TestMiddleware_ClientGoneIsNoOutage(t *testing.T) {
	var logs logBuf
	mw, err := middleware.New(middleware.Config{Verifier: &outageVerifier{}, Logger: debugLogger(&logs)})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx)
	r.Header.Set("x-api-key", "sk-some-key")
	mw(http.NotFoundHandler()).ServeHTTP(httptest.NewRecorder(), r)
	assert.NotContains(t, logs.String(), "level=ERROR")
	assert.Contains(t, logs.String(), "request cancelled")
}
