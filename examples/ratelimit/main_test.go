package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/keyflowtest"
)

func TestFailedGuessesAreLimited(t *testing.T) {
	keys := keyflowtest.NewManager(t)
	key := keyflowtest.NewKey(t, keys, "alice")
	h, err := newHandler(keys, 2, time.Hour)
	require.NoError(t, err)

	call := func(ip, key string) (int, string) {
		r := keyflowtest.WithKey(httptest.NewRequest(http.MethodGet, "/", nil), key)
		r.RemoteAddr = ip + ":1234"
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
