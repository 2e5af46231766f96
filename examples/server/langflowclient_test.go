package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/examples/server/internal/flows"
	"github.com/keyflow-dev/keyflow/keyflowtest/dbtest"
)

// langflowClientVersion is the pinned @datastax/langflow-client (0.4.x).
const langflowClientVersion = "0.4.1"

// TestLangflowClient runs Langflow's official TypeScript client against the
// built server (auto-login off): run → chatOutputText() is the echo and
// sessionId is set; tweak(...).run(); stream() ends with an end event; a
// wrong key → LangflowError with status 403; and all of it again with a key
// created after a login with username and password.
//
// It needs node (≥ 20.18, for the client's undici 7) and npm, and installs
// the client once with npm into KEYFLOW_NPM_DIR (default: the user cache
// dir + /keyflow/npm); it skips, saying why, when any of that is missing.
func TestLangflowClient(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the server and runs node")
	}
	nodeDir := installLangflowClient(t)

	bin := buildServer(t)

	const password = "node-client-password"
	e := &e2e{t: t, bin: bin, dir: t.TempDir()}
	require.NoError(t, os.WriteFile(filepath.Join(e.dir, ".env"), nil, 0o600))
	env := []string{"LANGFLOW_AUTO_LOGIN=false", "LANGFLOW_SUPERUSER=admin", "LANGFLOW_SUPERUSER_PASSWORD=" + password}
	out, errOut, code := e.cli("", env, "api-key")
	require.Equal(t, 0, code, errOut)
	cliKey := keyRe.FindString(out)
	require.NotEmpty(t, cliKey, out)
	s := e.start(env...)

	code, body := s.do("GET", "/api/v1/flows/", "", "x-api-key", cliKey)
	require.Equal(t, 200, code, body)
	flows := decode[[]flows.FlowRead](t, body)
	require.Len(t, flows, 1)
	flowID := flows[0].ID

	script, err := os.ReadFile(filepath.Join("testdata", "langflow-client", "client.mjs"))
	require.NoError(t, err)
	// ESM resolves packages from the script's directory: run a copy there.
	f, err := os.CreateTemp(nodeDir, "client-*.mjs")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.Remove(f.Name()) })
	_, err = f.Write(script)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", f.Name(), s.url, flowID, cliKey, "admin", password)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "node: %s\n%s", stderr.String(), stdout.String())

	type scenario struct {
		TokenType           string   `json:"tokenType"`
		Text                string   `json:"text"`
		SessionID           string   `json:"sessionId"`
		TweakText           string   `json:"tweakText"`
		TweakSessionID      string   `json:"tweakSessionId"`
		TweakSource         string   `json:"tweakSource"`
		TweakBodyHasLiteral bool     `json:"tweakBodyHasLiteral"`
		ByNameText          string   `json:"byNameText"`
		StreamEvents        []string `json:"streamEvents"`
		StreamEndText       string   `json:"streamEndText"`
	}
	var got struct {
		CLI      scenario `json:"cli"`
		Login    scenario `json:"login"`
		WrongKey struct {
			Resolved        bool `json:"resolved"`
			IsLangflowError bool `json:"isLangflowError"`
			Status          int  `json:"status"`
		} `json:"wrongKey"`
	}
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &got), stdout.String())

	assert.False(t, got.WrongKey.Resolved, "a wrong key is refused")
	assert.True(t, got.WrongKey.IsLangflowError, "the client throws LangflowError")
	assert.Equal(t, 403, got.WrongKey.Status)
	assert.Equal(t, "bearer", got.Login.TokenType)
	for name, sc := range map[string]scenario{"CLI key": got.CLI, "key made after a login": got.Login} {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, "hello from node", sc.Text, "chatOutputText() is the echo")
			assert.Equal(t, flowID, sc.SessionID, "sessionId: Langflow's fallback, the flow's id")
			assert.Equal(t, "tweaked", sc.TweakText)
			assert.Equal(t, "node-session", sc.TweakSessionID)
			assert.Equal(t, "flow", sc.TweakSource, "the tweak keyed by the component's display name applied")
			assert.False(t, sc.TweakBodyHasLiteral, "a tweaked literal never comes back")
			assert.Equal(t, "by endpoint name", sc.ByNameText)
			require.NotEmpty(t, sc.StreamEvents)
			assert.Equal(t, "end", sc.StreamEvents[len(sc.StreamEvents)-1], "stream() ends with an end event")
			assert.Equal(t, "streamed", sc.StreamEndText)
		})
	}
	s.stop()
	assert.NotContains(t, s.log(), password)
	assert.NotContains(t, s.log(), cliKey)
}

// installLangflowClient makes sure the pinned client is installed and
// returns the directory whose node_modules holds it, or skips the test.
func installLangflowClient(t *testing.T) string {
	t.Helper()
	skipf := func(format string, args ...any) { // fails instead where CI is set
		t.Helper()
		dbtest.SkipSuite(t, "Langflow client tests", fmt.Sprintf(format, args...))
	}
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			skipf("%s is not installed (Debian: apt-get install nodejs npm): cannot run Langflow's TypeScript client", tool)
		}
	}
	v, err := exec.Command("node", "--version").Output()
	if err != nil {
		skipf("node --version: %v", err)
	}
	if !nodeAtLeast(strings.TrimSpace(string(v)), 20, 18) {
		skipf("node %s is too old: @datastax/langflow-client %s needs node ≥ 20.18 (its undici 7)", strings.TrimSpace(string(v)), langflowClientVersion)
	}
	base := os.Getenv("KEYFLOW_NPM_DIR")
	if base == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			skipf("no cache dir for npm (set KEYFLOW_NPM_DIR): %v", err)
		}
		base = filepath.Join(cache, "keyflow", "npm")
	}
	dir := filepath.Join(base, "langflow-client-"+langflowClientVersion)
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@datastax", "langflow-client", "package.json")); err == nil {
		return dir
	}
	// Install into a fresh directory, then move it into place, so that
	// concurrent runs never see a half-installed package.
	require.NoError(t, os.MkdirAll(base, 0o755))
	tmp, err := os.MkdirTemp(base, ".install-*")
	require.NoError(t, err)
	defer os.RemoveAll(tmp)
	require.NoError(t, os.WriteFile(filepath.Join(tmp, "package.json"),
		[]byte(`{"name":"keyflow-langflow-client-test","private":true,"type":"module"}`), 0o644))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	install := exec.CommandContext(ctx, "npm", "install", "--no-audit", "--no-fund", "--prefer-offline",
		"@datastax/langflow-client@"+langflowClientVersion)
	install.Dir = tmp
	if out, err := install.CombinedOutput(); err != nil {
		skipf("npm could not install @datastax/langflow-client@%s (no registry access?): %v\n%s", langflowClientVersion, err, out)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, statErr := os.Stat(dir); statErr != nil {
			require.NoError(t, err)
		}
		// Another run installed it meanwhile: use that one.
	}
	return dir
}

// nodeAtLeast reports whether a "vMAJOR.MINOR.PATCH" version is at least
// major.minor.
func nodeAtLeast(v string, major, minor int) bool {
	parts := strings.SplitN(strings.TrimPrefix(v, "v"), ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}

func TestNodeAtLeast(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]bool{"v20.20.2": true, "v20.18.0": true, "v20.17.9": false, "v18.20.4": false, "v22.1.0": true, "junk": false} {
		assert.Equal(t, want, nodeAtLeast(v, 20, 18), fmt.Sprint(v))
	}
}
