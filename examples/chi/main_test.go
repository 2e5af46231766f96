package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/keyflowtest"
)

func TestRouterScopes(t *testing.T) {
	keys := keyflowtest.NewManager(t)
	create := func(scopes ...string) string { return keyflowtest.NewKey(t, keys, "alice", scopes...) }
	reader, writer, unrestricted := create("items:read"), create("items:write"), create()
	admin := create("keys")

	r, err := newRouter(keys)
	require.NoError(t, err)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)

	tests := []struct {
		name, method, path, key, body string
		wantCode                      int
		wantBody                      string
	}{
		{"health is public", "GET", "/health", "", "", 200, "ok\n"},
		{"no key", "GET", "/items", "", "", 403, `{"detail":"An API key must be passed as query or header"}` + "\n"},
		{"reader lists", "GET", "/items", reader, "", 200, "[]\n"},
		{"reader cannot add", "POST", "/items", reader, `{"name":"x"}`, 403, `{"detail":"API key lacks the required scope \"items:write\""}` + "\n"},
		{"writer adds", "POST", "/items", writer, `{"name":"pen"}`, 201, `{"name":"pen"}` + "\n"},
		{"writer cannot list", "GET", "/items", writer, "", 403, `{"detail":"API key lacks the required scope \"items:read\""}` + "\n"},
		{"unrestricted key lists", "GET", "/items", unrestricted, "", 200, `["pen"]` + "\n"},
		{"unrestricted key adds", "POST", "/items", unrestricted, `{"name":"cup"}`, 201, `{"name":"cup"}` + "\n"},
		{"bad body", "POST", "/items", writer, `{}`, 422, `{"detail":"body must be {\"name\": \"...\"}"}` + "\n"},
		{"keys API needs the keys scope", "GET", "/api/v1/api_key/", reader, "", 403, `{"detail":"API key lacks the required scope \"keys\""}` + "\n"},
		{"keys API by id, bad id", "DELETE", "/api/v1/api_key/not-a-uuid", admin, "", 422, `{"detail":"API key id must be a UUID"}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader(tt.body))
			require.NoError(t, err)
			if tt.key != "" {
				req.Header.Set("x-api-key", tt.key)
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

	t.Run("keys API lists the user's keys", func(t *testing.T) {
		req, err := http.NewRequest("GET", srv.URL+"/api/v1/api_key/", nil)
		require.NoError(t, err)
		req.Header.Set("x-api-key", admin)
		res, err := srv.Client().Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		assert.Equal(t, 200, res.StatusCode)
		assert.Contains(t, string(body), `"total_count":4`)
	})
}
