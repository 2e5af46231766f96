package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/examples/server/internal/config"
	"github.com/keyflow-dev/keyflow/examples/server/internal/flows"
	"github.com/keyflow-dev/keyflow/examples/server/internal/httpserver"
	"github.com/keyflow-dev/keyflow/variables"
)

// benchWriter is a ResponseWriter that keeps only the header.
type benchWriter struct{ h http.Header }

func (d *benchWriter) Header() http.Header         { return d.h }
func (d *benchWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *benchWriter) WriteHeader(int)             {}

// BenchmarkHotRoutes serves the two routes scripts/floorbench.sh loads, in
// process (no network), through the whole handler: GET /api/v1/flows/ and
// POST /api/v1/run/{id} of a flow with three fields (a stored Credential, a
// stored Generic variable, a literal), with an API key in the header, on
// SQLite with the change feed on (as `run` has it). The harness itself
// allocates the run's body reader (2 allocations). Profile it with
// -cpuprofile and -memprofile; BENCHMARKS.md has the top items.
func BenchmarkHotRoutes(b *testing.B) {
	cfg := config.Config{ConfigDir: b.TempDir(), Host: "127.0.0.1", Getenv: func(string) string { return "" }, ChangeMaxLag: time.Second}
	ctx := context.Background()
	a, err := openApp(ctx, cfg, quietLog())
	require.NoError(b, err)
	defer a.Close()
	h, err := httpserver.Handler(a, nil)
	require.NoError(b, err)
	uid := a.Superuser.ID
	key, _, err := a.Keys.Create(ctx, uid, "bench", apikey.CreateOptions{})
	require.NoError(b, err)
	_, err = a.Vars.Create(ctx, uid, variables.CreateInput{Name: "OPENAI_API_KEY", Value: "sk-bench-credential", Type: variables.Credential})
	require.NoError(b, err)
	_, err = a.Vars.Create(ctx, uid, variables.CreateInput{Name: "BASE_URL", Value: "https://api.example.com", Type: variables.Generic})
	require.NoError(b, err)
	f, err := a.Flows.Create(ctx, uid, "Bench", "", map[string]flows.Field{
		"api_key": {Variable: "OPENAI_API_KEY"}, "base_url": {Variable: "BASE_URL"}, "model": {Value: "gpt-4o"}})
	require.NoError(b, err)
	for _, tc := range []struct{ name, method, path, body string }{
		{"flows", http.MethodGet, "/api/v1/flows/", ""},
		{"run", http.MethodPost, "/api/v1/run/" + f.ID, `{"input_value": "Hello, floor"}`},
	} {
		b.Run(tc.name, func(b *testing.B) {
			r, err := http.NewRequest(tc.method, "http://127.0.0.1:7860"+tc.path, nil)
			require.NoError(b, err)
			r.Header.Set("x-api-key", key)
			if tc.body != "" {
				r.Header.Set("Content-Type", "application/json")
				r.ContentLength = int64(len(tc.body))
			}
			w := &benchWriter{h: http.Header{}}
			serve := func() {
				clear(w.h)
				if tc.body != "" {
					r.Body = io.NopCloser(strings.NewReader(tc.body))
				}
				h.ServeHTTP(w, r)
			}
			// Warm for a second: the key and the user cached, the feeds read.
			for warm := time.Now().Add(time.Second); time.Now().Before(warm); time.Sleep(time.Millisecond) {
				serve()
			}
			b.ReportAllocs()
			for b.Loop() {
				serve()
			}
		})
	}
}
