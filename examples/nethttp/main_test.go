package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey"
)

func TestHandler(t *testing.T) {
	keys, err := apikey.NewManager(apikey.Config{Store: apikey.NewMemoryStore()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = keys.Close() })
	key, _, err := keys.Create(context.Background(), "alice", "laptop", apikey.CreateOptions{})
	require.NoError(t, err)
	revoked, rec, err := keys.Create(context.Background(), "alice", "old", apikey.CreateOptions{})
	require.NoError(t, err)
	require.NoError(t, keys.Delete(context.Background(), "alice", rec.ID))

	h, err := newHandler(keys)
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	tests := []struct {
		name     string
		path     string
		header   string
		wantCode int
		wantBody string
	}{
		{"health needs no key", "/health", "", http.StatusOK, "ok\n"},
		{"no key", "/hello", "", http.StatusForbidden, `{"detail":"An API key must be passed as query or header"}` + "\n"},
		{"key in header", "/hello", key, http.StatusOK, "hello, alice (key \"laptop\")\n"},
		{"key in query", "/hello?x-api-key=" + key, "", http.StatusOK, "hello, alice (key \"laptop\")\n"},
		{"unknown key", "/hello", "sk-" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", http.StatusForbidden, `{"detail":"Invalid or missing API key"}` + "\n"},
		{"revoked key", "/hello", revoked, http.StatusForbidden, `{"detail":"Invalid or missing API key"}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, srv.URL+tt.path, nil)
			require.NoError(t, err)
			if tt.header != "" {
				req.Header.Set("x-api-key", tt.header)
			}
			res, err := srv.Client().Do(req)
			require.NoError(t, err)
			defer res.Body.Close()
			body, err := io.ReadAll(res.Body)
			require.NoError(t, err)
			assert.Equal(t, tt.wantCode, res.StatusCode)
			assert.Equal(t, tt.wantBody, string(body))
		})
	}
}
