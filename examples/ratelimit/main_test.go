package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey"
)

func TestFailedGuessesAreLimited(t *testing.T) {
	keys, err := apikey.NewManager(apikey.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = keys.Close() })
	key, _, err := keys.Create(context.Background(), "alice", "k", apikey.CreateOptions{})
	require.NoError(t, err)
	h, err := newHandler(keys, 2, time.Hour)
	require.NoError(t, err)

	call := func(ip, key string) (int, string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = ip + ":1234"
		if key != "" {
			r.Header.Set("x-api-key", key)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code, strings.TrimSpace(w.Body.String())
	}
	code, body := call("10.0.0.1", key)
	assert.Equal(t, 200, code)
	assert.Equal(t, "hello alice", body)
	for range 2 {
		code, _ = call("10.0.0.1", "sk-guess")
		assert.Equal(t, 403, code)
	}
	code, body = call("10.0.0.1", "sk-guess")
	assert.Equal(t, 429, code)
	assert.Equal(t, `{"detail":"Too many failed authentication attempts"}`, body)
	code, _ = call("10.0.0.1", key) // the budget is spent for this IP, even for a good key
	assert.Equal(t, 429, code)
	code, body = call("10.0.0.2", key) // other clients are not affected
	assert.Equal(t, 200, code)
	assert.Equal(t, "hello alice", body)
}
