package cli

import (
	"bytes"
	"io"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An invalid --allowed-hosts stops the server before it starts, naming the
// flag.
func TestAllowedHostsFlag(t *testing.T) {
	var stderr strings.Builder
	assert.Equal(t, 1, Main([]string{"run", "--config-dir", t.TempDir(), "--allowed-hosts", "a.example/x"}, nil, io.Discard, &stderr))
	assert.Contains(t, stderr.String(), `--allowed-hosts: "a.example/x" is not a host name`)
}

func TestAPIKeyBox(t *testing.T) {
	const key = "sk-O0elzoWID1izAH8RUKrnnvyyMwIzHi2Wk-uXWoNJ2Ro"
	tests := []struct {
		name   string
		copied bool
		goos   string
		want   string
	}{
		{"no clipboard", false, "linux", `╭──────────────────────────────────────────────────────╮
│ API Key Created Successfully:                        │
│                                                      │
│ sk-O0elzoWID1izAH8RUKrnnvyyMwIzHi2Wk-uXWoNJ2Ro       │
│                                                      │
│ This is the only time the API key will be displayed. │
│ Make sure to store it in a secure location.          │
╰──────────────────────────────────────────────────────╯
`},
		{"copied on macOS (Langflow's box)", true, "darwin", `╭─────────────────────────────────────────────────────────────────────╮
│ API Key Created Successfully:                                       │
│                                                                     │
│ sk-O0elzoWID1izAH8RUKrnnvyyMwIzHi2Wk-uXWoNJ2Ro                      │
│                                                                     │
│ This is the only time the API key will be displayed.                │
│ Make sure to store it in a secure location.                         │
│                                                                     │
│ The API key has been copied to your clipboard. Cmd + V to paste it. │
╰─────────────────────────────────────────────────────────────────────╯
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, apiKeyBox(key, tt.copied, tt.goos))
		})
	}
	assert.Contains(t, apiKeyBox(key, true, "linux"), "Ctrl + V to paste it.")
}

func TestSecretHelpers(t *testing.T) {
	assert.Equal(t, []string{"a", "b c"}, splitSecrets(" a ,, b c ,"))
	assert.Equal(t, []string{"old", "older"}, previousSecrets("new", []string{"", "old", "new", "old", "older"}))
}

// TestRotateSecretBadBatchSize: a bad flag is refused before anything is
// written, not after a new secret has been saved to secret_key.new.
func TestRotateSecretBadBatchSize(t *testing.T) {
	t.Setenv("LANGFLOW_SECRET_KEY", "")
	dir := filepath.Join(t.TempDir(), "cfg")
	var stdout, stderr bytes.Buffer
	assert.Equal(t, 2, Main([]string{"rotate-secret", "--config-dir", dir, "--batch-size", "-1"}, nil, &stdout, &stderr))
	assert.Contains(t, stderr.String(), "-batch-size")
	assert.NoDirExists(t, dir, "nothing created")
}

// -h, --help and help list every subcommand with one line each, on stdout;
// a subcommand's -h lists its flags as --name VALUE with their help.
func TestHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			require.Equal(t, 0, Main(args, nil, &stdout, &stderr))
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
			require.Equal(t, 0, Main(tt.args, nil, &stdout, &stderr))
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
	assert.Equal(t, 2, Main([]string{"serve"}, nil, &stdout, &stderr))
	assert.Contains(t, stderr.String(), `unknown subcommand "serve"`)
	stderr.Reset()
	assert.Equal(t, 2, Main([]string{"api-key", "--nope"}, nil, &stdout, &stderr))
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
			code := Main(append([]string{"api-key", "--config-dir", t.TempDir()}, tt.args...), nil, &stdout, &stderr)
			require.Equal(t, 0, code, stderr.String())
			assert.Empty(t, stderr.String(), "the CLI logs only warnings by default")
			key := regexp.MustCompile(`sk-[A-Za-z0-9_-]{43}`).FindString(stdout.String())
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
