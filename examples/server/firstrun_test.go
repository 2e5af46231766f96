package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
func startOnce(t *testing.T, cfg config) string {
	t.Helper()
	w := &readyWriter{ready: make(chan struct{})}
	a, err := openApp(context.Background(), cfg, newLogger(w, cfg.LogLevel))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.serve(ctx) }()
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
	cfg := config{
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
	require.Equal(t, 0, realMain(args, nil, &stdout, &stderr), stderr.String())
	key := strings.TrimSpace(stdout.String())
	require.Regexp(t, "^"+keyRe.String()+"$", key)
	a, err := openApp(context.Background(), cfg, newLogger(&stderr, cfg.LogLevel))
	require.NoError(t, err)
	defer a.Close()
	_, err = a.keys.Verify(context.Background(), key)
	assert.NoError(t, err, "the key works against the server's database")
}

func TestAPIKeyCommand(t *testing.T) {
	t.Setenv("LANGFLOW_CONFIG_DIR", "")
	def, err := defaultConfigDir()
	require.NoError(t, err)
	tests := []struct {
		name       string
		cfg        config
		dbDisplay  string
		want       string
		notContain string
	}{
		{"defaults", config{ConfigDir: def}, "", "go run ./examples/server api-key", ""},
		{"a config dir with a space", config{ConfigDir: "/tmp/my dir"}, "",
			"go run ./examples/server api-key --config-dir '/tmp/my dir'", ""},
		{"PostgreSQL, password hidden", config{ConfigDir: def, DatabaseURL: "postgres://u:pw@db/lf"}, redactURL("postgres://u:pw@db/lf"),
			"go run ./examples/server api-key --database-url postgres://u:xxxxx@db/lf", ":pw@"},
		{"PostgreSQL, password parameter hidden", config{ConfigDir: def, DatabaseURL: "postgres://db/lf?password=pw&sslmode=disable"},
			redactURL("postgres://db/lf?password=pw&sslmode=disable"),
			"go run ./examples/server api-key --database-url 'postgres://db/lf?password=xxxxx&sslmode=disable'", "=pw"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &app{cfg: tt.cfg, dbDisplay: tt.dbDisplay}
			got := a.apiKeyCommand()
			assert.Equal(t, tt.want, got)
			if tt.notContain != "" {
				assert.NotContains(t, got, tt.notContain)
			}
		})
	}
	assert.Equal(t, `'it'\''s'`, shellQuote("it's"))
	assert.Equal(t, `''`, shellQuote(""))
}

// defaultConfigDir is the config dir when neither --config-dir nor
// LANGFLOW_CONFIG_DIR is set.
func defaultConfigDir() (string, error) {
	cfg, err := loadConfig(&commonFlags{defaultLevel: "info"}, nil, nil)
	return cfg.ConfigDir, err
}

func TestProgName(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "go run ./examples/server", progName("/tmp/go-build1234/b001/exe/server"))
	assert.Equal(t, "./keyflow-server", progName("./keyflow-server"))
}

// -h, --help and help list every subcommand with one line each, on stdout;
// a subcommand's -h lists its flags as --name VALUE with their help.
func TestHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			require.Equal(t, 0, realMain(args, nil, &stdout, &stderr))
			assert.Empty(t, stderr.String())
			out := stdout.String()
			assert.Contains(t, out, "usage: go run ./examples/server [subcommand] [flags]")
			for _, c := range subcommands() {
				assert.Regexp(t, `(?m)^  `+regexp.QuoteMeta(c.name)+` +`+regexp.QuoteMeta(c.summary)+`$`, out)
				assert.NotContains(t, c.summary, "\n", "one line each")
			}
			assert.Contains(t, out, "  help ")
		})
	}

	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"run", "-h"}, []string{
			"usage: go run ./examples/server run [flags]",
			"serve the API and the web UI",
			"  --port PORT\n      the PORT to listen on, 0 for any free port (env LANGFLOW_PORT; default\n      7860)\n",
			"  --env-file FILE\n      load the .env FILE first; its values override the process environment, as\n      with langflow run --env-file\n",
			"flags of every subcommand:",
		}},
		{[]string{"--port", "0", "--help"}, []string{"usage: go run ./examples/server run [flags]"}},
		{[]string{"help", "api-key"}, []string{
			"usage: go run ./examples/server api-key [flags]",
			"  --quiet\n      print only the key",
			"  --username NAME\n",
		}},
		{[]string{"rotate-secret", "--help"}, []string{"  --new-secret SECRET\n", "  --batch-size N\n      re-encrypt N values per batch (default 500)\n"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			require.Equal(t, 0, realMain(tt.args, nil, &stdout, &stderr))
			assert.Empty(t, stderr.String())
			out := stdout.String()
			for _, w := range tt.want {
				assert.Contains(t, out, w)
			}
			assert.NotRegexp(t, `(?m)^  -[a-z]`, out, "flags are listed as --name")
			assert.NotContains(t, out, "-env-file langflow", "no backquoted text taken for the value's name")
			for _, line := range strings.Split(out, "\n") {
				assert.LessOrEqual(t, len([]rune(line)), 80, "wrapped: %q", line)
			}
		})
	}

	var stdout, stderr bytes.Buffer
	assert.Equal(t, 2, realMain([]string{"serve"}, nil, &stdout, &stderr))
	assert.Contains(t, stderr.String(), `unknown subcommand "serve"`)
	stderr.Reset()
	assert.Equal(t, 2, realMain([]string{"api-key", "--nope"}, nil, &stdout, &stderr))
	assert.Empty(t, stdout.String())
	assert.Contains(t, stderr.String(), "flag provided but not defined: -nope\nusage: go run ./examples/server api-key [flags]")
}

// api-key prints a box (and copies the key) at a terminal, and only the key
// on one line into a pipe or with --quiet.
func TestCmdAPIKeyOutput(t *testing.T) {
	tests := []struct {
		name      string
		terminal  bool
		clipboard bool
		args      []string
		wantBox   bool
	}{
		{"terminal with a clipboard", true, true, nil, true},
		{"terminal without a clipboard", true, false, nil, true},
		{"pipe", false, true, nil, false},
		{"terminal, --quiet", true, true, []string{"--quiet"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var copied string
			origCopy, origTerm := copyToClipboard, isTerminal
			copyToClipboard = func(s string) bool { copied = s; return tt.clipboard }
			isTerminal = func(io.Writer) bool { return tt.terminal }
			t.Cleanup(func() { copyToClipboard, isTerminal = origCopy, origTerm })
			t.Setenv("LANGFLOW_LOG_LEVEL", "")

			var stdout, stderr bytes.Buffer
			code := realMain(append([]string{"api-key", "--config-dir", t.TempDir()}, tt.args...), nil, &stdout, &stderr)
			require.Equal(t, 0, code, stderr.String())
			assert.Empty(t, stderr.String(), "the CLI logs only warnings by default")
			key := keyRe.FindString(stdout.String())
			require.NotEmpty(t, key)
			if !tt.wantBox {
				assert.Equal(t, key+"\n", stdout.String(), "the key alone on one line")
				assert.Empty(t, copied, "no clipboard")
				return
			}
			assert.Equal(t, apiKeyBox(key, tt.clipboard, "linux"), stdout.String())
			assert.Equal(t, key, copied)
			assert.Equal(t, tt.clipboard, strings.Contains(stdout.String(), "copied to your clipboard"), "says so only when it did")
		})
	}
}

// The READMEs give the answer the default configuration gives a request
// without a key.
func TestREADMENoKeyAnswer(t *testing.T) {
	for _, k := range []string{"LANGFLOW_AUTO_LOGIN", "LANGFLOW_SKIP_AUTH_AUTO_LOGIN", "LANGFLOW_API_KEY_SOURCE"} {
		t.Setenv(k, "") // restored after the test; unset meanwhile (an empty boolean is an error)
		require.NoError(t, os.Unsetenv(k))
	}
	cfg, err := loadConfig(&commonFlags{configDir: t.TempDir(), defaultLevel: "warn"}, nil, nil)
	require.NoError(t, err)
	a, err := openApp(context.Background(), cfg, newLogger(t.Output(), cfg.LogLevel))
	require.NoError(t, err)
	t.Cleanup(func() { _ = a.Close() })
	echo, err := a.ensureEchoFlow(context.Background())
	require.NoError(t, err)
	h, err := a.handler()
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
