package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/keyflow-dev/keyflow/keyflowtest"
)

// TestStoreUnavailableDuringAnOutage: every failed request gets its 503,
// but the log gets one Error line per operation (with its first cause), not
// one per request; a request whose client went away is no outage.
func TestStoreUnavailableDuringAnOutage(t *testing.T) {
	var logs keyflowtest.LogBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	for i := range 500 {
		for _, op := range []string{"list flows", "read user"} {
			w := httptest.NewRecorder()
			StoreUnavailable(log, w, httptest.NewRequest(http.MethodGet, "/api/v1/flows/", nil), op, errors.New("connection refused #"+string(rune('0'+i%10))))
			assert.Equal(t, http.StatusServiceUnavailable, w.Code)
			assert.JSONEq(t, `{"detail":"`+MsgStoreUnavailable+`"}`, w.Body.String())
		}
	}
	out := logs.String()
	assert.Equal(t, 2, strings.Count(out, "level=ERROR"), out)
	assert.Contains(t, out, `op="list flows"`)
	assert.Contains(t, out, `op="read user"`)
	assert.Contains(t, out, "connection refused #0", "the first cause")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var other keyflowtest.LogBuffer
	log = slog.New(slog.NewTextHandler(&other, &slog.HandlerOptions{Level: slog.LevelDebug}))
	w := httptest.NewRecorder()
	StoreUnavailable(log, w, httptest.NewRequest(http.MethodGet, "/api/v1/flows/", nil).WithContext(ctx), "list flows", context.Canceled)
	assert.NotContains(t, other.String(), "level=ERROR")
	assert.Contains(t, other.String(), "request cancelled")
}
