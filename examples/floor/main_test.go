package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/keyflowtest"
)

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(handler([]byte(`[{"id":"f"}]`), []byte(`{"session_id":"s"}`)))
	defer srv.Close()
	for _, tc := range []struct {
		method, path, body string
		status             int
		want               string
	}{
		{http.MethodGet, "/api/v1/flows/", "", http.StatusOK, `[{"id":"f"}]`},
		{http.MethodPost, "/api/v1/run/any-flow", `{"input_value":"hi"}`, http.StatusOK, `{"session_id":"s"}`},
		{http.MethodPost, "/api/v1/run/other", "", http.StatusOK, `{"session_id":"s"}`},
		{http.MethodGet, "/api/v1/run/x", "", http.StatusMethodNotAllowed, ""},
		{http.MethodGet, "/health", "", http.StatusNotFound, ""},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			require.NoError(t, err)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			assert.Equal(t, tc.status, resp.StatusCode)
			if tc.want != "" {
				assert.Equal(t, tc.want, string(b))
				assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			}
		})
	}
}

// TestRun starts the command on a free port, serves a request, and stops
// it through its context.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	flows, runBody := filepath.Join(dir, "flows.json"), filepath.Join(dir, "run.json")
	require.NoError(t, os.WriteFile(flows, []byte(`[]`), 0o600))
	require.NoError(t, os.WriteFile(runBody, []byte(`{}`), 0o600))
	ctx, cancel := context.WithCancel(context.Background())
	var log keyflowtest.LogBuffer
	code := make(chan int, 1)
	go func() { code <- run(ctx, []string{"-flows", flows, "-run", runBody}, &log) }()
	ready := regexp.MustCompile(`floor listening on (http://[0-9.:]+)`)
	var url string
	require.Eventually(t, func() bool {
		m := ready.FindStringSubmatch(log.String())
		if m != nil {
			url = m[1]
		}
		return m != nil
	}, 10*time.Second, 10*time.Millisecond)
	resp, err := http.Get(url + "/api/v1/flows/")
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	assert.Equal(t, "[]", string(b))
	cancel()
	assert.Equal(t, 0, <-code)

	for _, args := range [][]string{{}, {"-flows", flows}, {"-flows", flows, "-run", runBody, "x"}} {
		assert.Equal(t, 2, run(context.Background(), args, io.Discard), "%q", args)
	}
	assert.Equal(t, 1, run(context.Background(), []string{"-flows", filepath.Join(dir, "none"), "-run", runBody}, io.Discard))
}
