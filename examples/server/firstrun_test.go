package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/examples/server/internal/cli"
	"github.com/keyflow-dev/keyflow/examples/server/internal/config"
	"github.com/keyflow-dev/keyflow/examples/server/internal/httpserver"
	"github.com/keyflow-dev/keyflow/middleware"
)

// What a new user sees: the start-up log, -h and help, the api-key output,
// and the README's answer to a request without a key.

// readyWriter is a log destination that the server's goroutines may write
// while the test reads it, and that closes ready at the "listening" line.
type readyWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	ready chan struct{}
	once  sync.Once
}

func (w *readyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if bytes.Contains(p, []byte("keyflow listening on ")) {
		w.once.Do(func() { close(w.ready) })
	}
	return w.buf.Write(p)
}

func (w *readyWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// startOnce opens the app on cfg, serves until the ready line, stops it, and
// returns its log (info level).
func startOnce(t *testing.T, cfg config.Config) string {
	t.Helper()
	w := &readyWriter{ready: make(chan struct{})}
	a, err := openApp(context.Background(), cfg, newLogger(w, cfg.LogLevel))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- httpserver.Run(ctx, a) }()
	select {
	case <-w.ready:
	case err := <-done:
		t.Fatalf("serve returned before it was ready: %v\n%s", err, w.String())
	}
	cancel()
	require.NoError(t, <-done)
	require.NoError(t, a.Close())
	return w.String()
}

// The start-up log says where the data is, the demo flow, how to make a key
// (a command that reaches the same database) and where the UI is; a second
// start claims to create nothing.
func TestFirstRunGuide(t *testing.T) {
	t.Setenv("LANGFLOW_CONFIG_DIR", "")
	dir := t.TempDir()
	cfg := config.Config{
		ConfigDir: dir, Host: "127.0.0.1", Port: 0, Auth: middleware.Config{AutoLogin: true},
		Getenv: func(string) string { return "" },
	}

	first := startOnce(t, cfg)
	lines := strings.Split(strings.TrimSpace(first), "\n")
	require.GreaterOrEqual(t, len(lines), 2)
	assert.Contains(t, lines[len(lines)-2], `msg="keyflow listening on http://127.0.0.1:`, "the ready line comes after the guide")
	assert.Contains(t, lines[len(lines)-1], `msg="shutting down"`)
	assert.Contains(t, first, `msg="created user" username=langflow`)
	assert.Contains(t, first, `msg="config directory" path=`+dir+"\n")
	assert.Contains(t, first, `msg=database url=sqlite:///`+dir+"/keyflow.db\n")
	id := regexp.MustCompile(`msg="created demo flow" name=Echo id=(\S+)`).FindStringSubmatch(first)
	require.NotNil(t, id, first)
	port := regexp.MustCompile(`listening on http://127\.0\.0\.1:(\d+)`).FindStringSubmatch(first)
	require.NotNil(t, port, first)
	assert.Contains(t, first, `msg="web UI" url=http://127.0.0.1:`+port[1]+"/\n", "the UI is at /")
	command := regexp.MustCompile(`msg="make an API key" command="([^"]+)"`).FindStringSubmatch(first)
	require.NotNil(t, command, first)
	assert.Equal(t, "go run ./examples/server api-key --config-dir "+dir, command[1])

	second := startOnce(t, cfg)
	assert.NotContains(t, second, "created", "nothing is new on the second start")
	assert.Contains(t, second, `msg="demo flow" name=Echo id=`+id[1]+"\n", "the same flow, not claimed as created")
	assert.Contains(t, second, `msg="make an API key" command="`+command[1]+`"`)

	// The suggested command makes a key in this server's database.
	args := strings.Fields(strings.TrimPrefix(command[1], "go run ./examples/server "))
	var stdout, stderr bytes.Buffer
	require.Equal(t, 0, cli.Main(args, nil, &stdout, &stderr), stderr.String())
	key := strings.TrimSpace(stdout.String())
	require.Regexp(t, "^"+keyRe.String()+"$", key)
	a, err := openApp(context.Background(), cfg, newLogger(&stderr, cfg.LogLevel))
	require.NoError(t, err)
	defer a.Close()
	_, err = a.Keys.Verify(context.Background(), key)
	assert.NoError(t, err, "the key works against the server's database")
}

// The READMEs give the answer the default configuration gives a request
// without a key.
func TestREADMENoKeyAnswer(t *testing.T) {
	for _, k := range []string{"LANGFLOW_AUTO_LOGIN", "LANGFLOW_SKIP_AUTH_AUTO_LOGIN", "LANGFLOW_API_KEY_SOURCE"} {
		t.Setenv(k, "") // restored after the test; unset meanwhile (an empty boolean is an error)
		require.NoError(t, os.Unsetenv(k))
	}
	cfg, err := config.Load(config.Flags{ConfigDir: t.TempDir(), DefaultLevel: "warn"}, nil, nil)
	require.NoError(t, err)
	a, err := openApp(context.Background(), cfg, newLogger(t.Output(), cfg.LogLevel))
	require.NoError(t, err)
	t.Cleanup(func() { _ = a.Close() })
	echo, err := ensureEcho(context.Background(), a)
	require.NoError(t, err)
	h, err := httpserver.Handler(a, nil)
	require.NoError(t, err)

	res := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/api/v1/run/"+echo.ID+"?stream=false", strings.NewReader(seedBody))
	req.Host = "localhost:7860" // as the READMEs' curl sends it (auto-login answers only local names)
	h.ServeHTTP(res, req)
	require.Equal(t, http.StatusForbidden, res.Code)
	var body struct{ Detail string }
	require.NoError(t, json.Unmarshal(res.Body.Bytes(), &body))
	require.NotEmpty(t, body.Detail)

	for _, path := range []string{"README.md", "../../README.md"} {
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		assert.True(t, strings.Contains(strings.Join(strings.Fields(string(b)), " "), body.Detail),
			"%s must give the default answer to a request without a key: %s", path, body.Detail)
	}
}
