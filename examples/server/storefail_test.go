package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/examples/server/internal/config"
	"github.com/keyflow-dev/keyflow/examples/server/internal/flows"
	"github.com/keyflow-dev/keyflow/examples/server/internal/httpapi"
	"github.com/keyflow-dev/keyflow/examples/server/internal/httpserver"
	"github.com/keyflow-dev/keyflow/examples/server/internal/sqldb"
	"github.com/keyflow-dev/keyflow/examples/server/internal/startup"
	"github.com/keyflow-dev/keyflow/keyflowtest"
	"github.com/keyflow-dev/keyflow/keyflowtest/dbtest"
	"github.com/keyflow-dev/keyflow/middleware"
	"github.com/keyflow-dev/keyflow/secrets"
	"github.com/keyflow-dev/keyflow/variables"
)

// storeFailBackend starts the server in this process on a fresh database,
// logging at debug level to log, and returns it with a function that takes
// its database down (for this instance only).
type storeFailBackend struct {
	name  string
	start func(t *testing.T, log *slog.Logger) (a *startup.App, down func())
}

var storeFailBackends = []storeFailBackend{
	{"SQLite", func(t *testing.T, log *slog.Logger) (*startup.App, func()) {
		cfg := config.Config{
			ConfigDir: t.TempDir(),
			Host:      "127.0.0.1",
			Auth:      middleware.Config{AutoLogin: false},
			Getenv:    func(string) string { return "" },
		}
		a, err := openApp(context.Background(), cfg, log)
		require.NoError(t, err)
		t.Cleanup(func() { _ = a.Close() })
		// Every query on a closed pool fails ("sql: database is closed").
		return a, func() { require.NoError(t, a.DB.Close()) }
	}},
	{"Postgres", func(t *testing.T, log *slog.Logger) (*startup.App, func()) {
		proxy, viaProxy := dbtest.ProxyURL(t, sharedDatabase(t))
		cfg := instanceConfig(t, viaProxy)
		// No change feed: a cached key stays trusted for the cache's TTL
		// (5 s), rather than ChangeMaxLag, whatever the machine's speed.
		cfg.ChangeMaxLag = 0
		a, err := openApp(context.Background(), cfg, log)
		require.NoError(t, err)
		t.Cleanup(func() { _ = a.Close() })
		return a, proxy.Cut
	}},
}

// TestStoreFailure: when the server's own database work fails after the
// key middleware let a request in (its key cached), the flows and run
// handlers answer 503 with a fixed message and log the cause, never 500 and
// never a detail of the failure (DESIGN.md: fail closed). Only an error that
// is not a store failure (a Credential that does not decrypt) stays 500.
// No response or log line holds the API key or the Credential's value.
func TestStoreFailure(t *testing.T) {
	const (
		credential   = "sk-credential-value-storefail-0a1b2c3d"
		flowLiteral  = "flow-literal-value-storefail-4e5f6a7b"
		internalBody = `{"detail":"Internal server error"}`
	)
	unavailable := `{"detail":"` + httpapi.MsgStoreUnavailable + `"}`

	type request struct {
		method, path, body string
		wantCode           int
		wantBody           string
	}
	tests := []struct {
		name string
		// fail breaks the database; runPath is the run endpoint of a flow
		// whose api_key field is bound to the Credential variable.
		fail     func(t *testing.T, a *startup.App, down func())
		requests func(runPath string) []request
		wantLog  []string
	}{
		{
			name: "database down",
			fail: func(t *testing.T, a *startup.App, down func()) { down() },
			requests: func(runPath string) []request {
				return []request{
					{"GET", "/api/v1/flows/", "", http.StatusServiceUnavailable, unavailable},
					{"POST", "/api/v1/flows/", `{"name":"new flow","fields":{}}`, http.StatusServiceUnavailable, unavailable},
					{"POST", runPath, `{"inputs":{"text":"hi"}}`, http.StatusServiceUnavailable, unavailable},
				}
			},
			// The first read is whether the key's user is still active, or,
			// within 1 s of the healthy request (which found the user
			// active, trusted for 1 s), the handler's own.
			wantLog: []string{`msg="database unavailable" op=`},
		},
		{
			name: "flows table gone",
			fail: func(t *testing.T, a *startup.App, down func()) {
				_, err := a.DB.Exec("DROP TABLE flows")
				require.NoError(t, err)
			},
			requests: func(runPath string) []request {
				return []request{
					{"GET", "/api/v1/flows/", "", http.StatusServiceUnavailable, unavailable},
					{"POST", "/api/v1/flows/", `{"name":"new flow","fields":{}}`, http.StatusServiceUnavailable, unavailable},
					{"POST", runPath, `{"inputs":{"text":"hi"}}`, http.StatusServiceUnavailable, unavailable},
				}
			},
			wantLog: []string{`msg="database unavailable" op="list flows"`, `op="create flow"`, `op="read flow"`},
		},
		{
			name: "variable table gone",
			fail: func(t *testing.T, a *startup.App, down func()) {
				_, err := a.DB.Exec("DROP TABLE variable")
				require.NoError(t, err)
			},
			requests: func(runPath string) []request {
				return []request{
					{"POST", runPath, `{"inputs":{"text":"hi"}}`, http.StatusServiceUnavailable, unavailable},
					{"GET", "/api/v1/flows/", "", http.StatusOK, ""},
				}
			},
			wantLog: []string{`msg="database unavailable" op="resolve variables"`, variables.ErrUnavailable.Error()},
		},
		{
			name: "credential does not decrypt (not a store failure)",
			fail: func(t *testing.T, a *startup.App, down func()) {
				other, err := secrets.NewKeyring("another-secret-storefail-0123456789")
				require.NoError(t, err)
				token, err := other.Encrypt(credential)
				require.NoError(t, err)
				_, err = a.DB.Exec(sqldb.DB{Postgres: a.Address.Postgres}.Q("UPDATE variable SET value = ? WHERE name = ?"), token, "OPENAI_API_KEY")
				require.NoError(t, err)
			},
			requests: func(runPath string) []request {
				return []request{
					{"POST", runPath, `{"inputs":{"text":"hi"}}`, http.StatusInternalServerError, internalBody},
				}
			},
			wantLog: []string{`msg="request failed"`, secrets.ErrInvalidToken.Error()},
		},
	}
	for _, b := range storeFailBackends {
		for _, tt := range tests {
			t.Run(b.name+"/"+tt.name, func(t *testing.T) {
				ctx := context.Background()
				logs := &keyflowtest.LogBuffer{}
				a, down := b.start(t, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
				h, err := httpserver.Handler(a, nil)
				require.NoError(t, err)
				srv := httptest.NewServer(h)
				t.Cleanup(srv.Close)

				key, _, err := a.Keys.Create(ctx, a.Superuser.ID, "storefail", apikey.CreateOptions{})
				require.NoError(t, err)
				_, err = a.Vars.Create(ctx, a.Superuser.ID, variables.CreateInput{
					Name: "OPENAI_API_KEY", Value: credential, Type: variables.Credential})
				require.NoError(t, err)
				f, err := a.Flows.Create(ctx, a.Superuser.ID, "Echo", "", map[string]flows.Field{
					"api_key": {Variable: "OPENAI_API_KEY"}, "model": {Value: flowLiteral}})
				require.NoError(t, err)
				runPath := "/api/v1/run/" + f.ID

				do := func(method, path, body string) (int, string) {
					t.Helper()
					var rd io.Reader
					if body != "" {
						rd = strings.NewReader(body)
					}
					req, err := http.NewRequest(method, srv.URL+path, rd)
					require.NoError(t, err)
					req.Header.Set("x-api-key", key)
					req.Header.Set("Content-Type", "application/json")
					res, err := srv.Client().Do(req)
					require.NoError(t, err)
					defer func() { _ = res.Body.Close() }()
					out, err := io.ReadAll(res.Body)
					require.NoError(t, err)
					return res.StatusCode, string(out)
				}
				// Healthy: the key is verified (and now cached), the run
				// reads the flow and the stored Credential.
				code, body := do("POST", runPath, `{"inputs":{"text":"hi"}}`)
				require.Equal(t, http.StatusOK, code, body)
				require.Contains(t, body, `"source":"stored"`)

				tt.fail(t, a, down)
				var bodies []string
				for _, r := range tt.requests(runPath) {
					code, body := do(r.method, r.path, r.body)
					assert.Equal(t, r.wantCode, code, "%s %s: %s", r.method, r.path, body)
					if r.wantBody != "" {
						assert.JSONEq(t, r.wantBody, body, "%s %s", r.method, r.path)
					}
					bodies = append(bodies, body)
				}

				log := logs.String()
				for _, want := range tt.wantLog {
					assert.Contains(t, log, want, "the cause is logged")
				}
				for _, out := range append(bodies, log) {
					assert.NotContains(t, out, key)
					assert.NotContains(t, out, credential)
					assert.NotContains(t, out, flowLiteral)
				}
			})
		}
	}
}
