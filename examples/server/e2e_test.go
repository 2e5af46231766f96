package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/examples/server/internal/flows"
	"github.com/keyflow-dev/keyflow/examples/server/internal/secretfile"
	"github.com/keyflow-dev/keyflow/keyflowtest/dbtest"
)

// The end-to-end test builds the real binary and drives it as a user would:
// the CLI on a fresh config dir, the server over HTTP (Langflow's documented two curl
// forms verbatim), revocation, the precedence matrix through /run, graceful
// shutdown, and master-secret rotation — on SQLite, and on PostgreSQL when
// KEYFLOW_TEST_POSTGRES_DSN is set.

var (
	keyRe   = regexp.MustCompile(`sk-[A-Za-z0-9_-]{43}`)
	readyRe = regexp.MustCompile(`keyflow listening on (http://\S+?)"?$`)
)

const (
	// The request body of Langflow's documentation, verbatim.
	seedBody = `{"inputs": {"text":""}, "tweaks": {}}`
	// Langflow's answers (docs/langflow-compatibility.md#authentication-errors).
	msgAutoLoginNoKey = "Since v1.5, LANGFLOW_AUTO_LOGIN requires a valid API key. Set LANGFLOW_SKIP_AUTH_AUTO_LOGIN=true to skip this check. Please update your authentication method."
	msgInvalidKey     = "Invalid or missing API key"
)

func TestE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server binary")
	}
	bin := buildServer(t)

	t.Run("sqlite", func(t *testing.T) {
		dir := t.TempDir()
		e := &e2e{t: t, bin: bin, dir: dir}
		e.openDB = func() (*sql.DB, error) { return dbtest.OpenSQLite(filepath.Join(dir, "keyflow.db")) }
		e.workflows()
	})
	t.Run("postgres", func(t *testing.T) {
		e := newPostgresE2E(t, bin)
		e.workflows()
	})
}

// newPostgresE2E is an e2e on a fresh PostgreSQL schema, dropped when the
// test ends; it skips without KEYFLOW_TEST_POSTGRES_DSN.
func newPostgresE2E(t *testing.T, bin string) *e2e {
	t.Helper()
	dsn := dbtest.PostgresDSN(t)
	_, schema := dbtest.PostgresSchema(t)
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	e := &e2e{t: t, bin: bin, dir: t.TempDir(), dbURL: dsn + sep + "search_path=" + schema, postgres: true}
	e.openDB = func() (*sql.DB, error) { return dbtest.OpenPostgresSchema(dsn, schema) }
	return e
}

// e2e runs the binary against one config dir and database.
type e2e struct {
	t        *testing.T
	bin      string
	dir      string // config dir
	dbURL    string // "" for the default SQLite file
	postgres bool
	openDB   func() (*sql.DB, error)
}

// env is the child's whole environment: nothing inherited (no LANGFLOW_*, no
// DISPLAY, so no clipboard), plus extra.
func (e *e2e) env(extra ...string) []string {
	return append([]string{"HOME=" + e.dir, "PATH=/usr/bin:/bin"}, extra...)
}

func (e *e2e) common() []string {
	args := []string{"--config-dir", e.dir}
	if e.dbURL != "" {
		args = append(args, "--database-url", e.dbURL)
	}
	return args
}

// cli runs a subcommand to completion.
func (e *e2e) cli(stdin string, env []string, args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	cmd := exec.Command(e.bin, append(args, e.common()...)...)
	cmd.Env = e.env(env...)
	cmd.Stdin = strings.NewReader(stdin)
	var o, er bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &er
	if err := cmd.Run(); cmd.ProcessState == nil || cmd.ProcessState.ExitCode() < 0 {
		require.NoError(e.t, err, "run %v", args) // did not start, or killed by a signal
	}
	return o.String(), er.String(), cmd.ProcessState.ExitCode()
}

// server is one running `server run`.
type server struct {
	t    *testing.T
	cmd  *exec.Cmd
	url  string
	mu   sync.Mutex
	logs bytes.Buffer
	done chan struct{}
}

func (e *e2e) start(env ...string) *server {
	e.t.Helper()
	return e.startArgs(nil, env...)
}

// startArgs starts `server run` with extra flags.
func (e *e2e) startArgs(flags []string, env ...string) *server {
	e.t.Helper()
	args := append([]string{"run", "--port", "0", "--env-file", filepath.Join(e.dir, ".env")}, e.common()...)
	args = append(args, flags...)
	cmd := exec.Command(e.bin, args...)
	cmd.Env = e.env(env...)
	stderr, err := cmd.StderrPipe()
	require.NoError(e.t, err)
	require.NoError(e.t, cmd.Start())
	s := &server{t: e.t, cmd: cmd, done: make(chan struct{})}
	ready := make(chan string, 1)
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.logs.WriteString(line + "\n")
			s.mu.Unlock()
			if m := readyRe.FindStringSubmatch(line); m != nil {
				ready <- m[1]
			}
		}
	}()
	e.t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	select {
	case s.url = <-ready:
	case <-s.done:
		_ = cmd.Wait()
		e.t.Fatalf("server exited before it was ready:\n%s", s.log())
	case <-time.After(20 * time.Second):
		e.t.Fatalf("server not ready after 20s:\n%s", s.log())
	}
	return s
}

func (s *server) log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.String()
}

// stop sends SIGTERM and expects a clean exit.
func (s *server) stop() {
	s.t.Helper()
	require.NoError(s.t, s.cmd.Process.Signal(syscall.SIGTERM))
	<-s.done
	err := s.cmd.Wait()
	require.NoError(s.t, err, "server exit:\n%s", s.log())
	assert.Contains(s.t, s.log(), "shutting down")
}

// do sends one request; headers alternate name, value.
func (s *server) do(method, path, body string, headers ...string) (int, string) {
	s.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.url+path, r)
	require.NoError(s.t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(s.t, err)
	return res.StatusCode, string(b)
}

// runResult is the body of a successful /run: Langflow's RunResponse (the
// parts a client reads) and keyflow's fields.
type runResult struct {
	SessionID string `json:"session_id"`
	Outputs   []struct {
		Inputs  map[string]string `json:"inputs"`
		Outputs []struct {
			Outputs struct {
				Message struct {
					Message string `json:"message"`
					Type    string `json:"type"`
				} `json:"message"`
			} `json:"outputs"`
		} `json:"outputs"`
	} `json:"outputs"`
	Fields map[string]struct {
		Variable string `json:"variable"`
		Source   string `json:"source"`
	} `json:"fields"`
}

// text is the flow's chat output, as the Langflow client's
// chatOutputText() reads it.
func (rr runResult) text() string {
	if len(rr.Outputs) == 0 || len(rr.Outputs[0].Outputs) == 0 {
		return "(no output)"
	}
	return rr.Outputs[0].Outputs[0].Outputs.Message.Message
}

// run calls /run with a key in the header and decodes a 200.
func (s *server) run(flowID, key, body string, headers ...string) (runResult, string) {
	s.t.Helper()
	code, raw := s.do("POST", "/api/v1/run/"+flowID+"?stream=false", body, append([]string{"x-api-key", key}, headers...)...)
	require.Equal(s.t, http.StatusOK, code, raw)
	var rr runResult
	require.NoError(s.t, json.Unmarshal([]byte(raw), &rr))
	return rr, raw
}

func (s *server) sources(rr runResult) map[string]string {
	out := map[string]string{}
	for name, f := range rr.Fields {
		out[name] = f.Variable + ":" + f.Source
	}
	return out
}

func decode[T any](t *testing.T, raw string) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal([]byte(raw), &v), raw)
	return v
}

func detail(msg string) string { return `{"detail":"` + msg + `"}` + "\n" }

// Values that must never appear in a response or a log.
const (
	envOpenAI   = "sk-env-openai-0123456789"
	envService  = "env-service-token-value"
	storedValue = "stored-credential-value"
	flowLiteral = "flow-literal-value"
	headerValue = "header-override-value"
	tweakValue  = "tweak-literal-value"
)

var secretValues = []string{envOpenAI, envService, storedValue, flowLiteral, headerValue, tweakValue}

func assertNoSecrets(t *testing.T, where, s string) {
	t.Helper()
	for _, v := range secretValues {
		assert.NotContains(t, s, v, "%s leaks a value", where)
	}
}

func (e *e2e) workflows() {
	t := e.t
	require.NoError(t, os.WriteFile(filepath.Join(e.dir, ".env"),
		[]byte("OPENAI_API_KEY="+envOpenAI+"\nMY_SERVICE_TOKEN="+envService+"\n"), 0o600))

	// CLI before the server has ever run: database, schema, superuser, key.
	out, errOut, code := e.cli("", nil, "api-key")
	require.Equal(t, 0, code, errOut)
	cliKey := keyRe.FindString(out)
	require.NotEmpty(t, cliKey, out)
	assert.Equal(t, cliKey+"\n", out, "into a pipe: the key alone on one line")
	assert.NotContains(t, errOut, cliKey, "the key must not be logged")
	assert.FileExists(t, filepath.Join(e.dir, "secret_key"))
	if !e.postgres {
		assert.FileExists(t, filepath.Join(e.dir, "keyflow.db"))
	}

	s := e.start()
	code, body := s.do("GET", "/health", "")
	assert.Equal(t, 200, code)
	assert.JSONEq(t, `{"status":"ok"}`, body)

	// The demo flow, found with the CLI's key.
	code, body = s.do("GET", "/api/v1/flows/", "", "x-api-key", cliKey)
	require.Equal(t, 200, code, body)
	list := decode[[]flows.FlowRead](t, body)
	require.Len(t, list, 1)
	echo := list[0]
	assert.Equal(t, "Echo", echo.Name)
	assert.Equal(t, map[string]flows.Field{"api_key": {Variable: "OPENAI_API_KEY"}}, echo.Fields)
	assert.Contains(t, s.log(), echo.ID, "the demo flow's id is logged")

	t.Run("seed curl forms", func(t *testing.T) {
		// curl -X POST "http://localhost:7860/api/v1/run/FLOW_ID?stream=false" -H 'x-api-key: API_KEY'
		code, body := s.do("POST", "/api/v1/run/"+echo.ID+"?stream=false", seedBody,
			"Content-Type", "application/json", "x-api-key", cliKey)
		require.Equal(t, 200, code, body)
		rr := decode[runResult](t, body)
		assert.Equal(t, echo.ID, rr.SessionID, "Langflow's fallback session: the flow's id")
		assert.Equal(t, "", rr.text())
		assert.Equal(t, map[string]string{"api_key": "OPENAI_API_KEY:stored"}, s.sources(rr), "imported from .env at start")
		assertNoSecrets(t, "/run", body)

		// curl -X POST "http://localhost:7860/api/v1/run/FLOW_ID?x-api-key=API_KEY?stream=false"
		code, body = s.do("POST", "/api/v1/run/"+echo.ID+"?x-api-key="+cliKey+"?stream=false", seedBody,
			"Content-Type", "application/json")
		require.Equal(t, 200, code, body)
		assert.Equal(t, rr, decode[runResult](t, body))

		code, body = s.do("POST", "/api/v1/run/"+echo.ID+"?stream=false", seedBody)
		assert.Equal(t, 403, code)
		assert.Equal(t, detail(msgAutoLoginNoKey), body)
		code, body = s.do("POST", "/api/v1/run/"+echo.ID+"?stream=false", seedBody, "x-api-key", "sk-"+strings.Repeat("A", 43))
		assert.Equal(t, 403, code)
		assert.Equal(t, detail(msgInvalidKey), body)
	})

	t.Run("generate, use and revoke a key", func(t *testing.T) {
		code, body := s.do("POST", "/api/v1/api_key/", `{"name":"temporary"}`, "x-api-key", cliKey)
		require.Equal(t, 200, code, body)
		key := decode[struct {
			APIKey string `json:"api_key"`
			ID     string `json:"id"`
		}](t, body)
		require.Regexp(t, keyRe, key.APIKey)
		s.run(echo.ID, key.APIKey, seedBody)

		code, body = s.do("GET", "/api/v1/api_key/", "", "x-api-key", cliKey)
		require.Equal(t, 200, code, body)
		assert.NotContains(t, body, key.APIKey)
		assert.NotContains(t, body, cliKey)
		assert.Contains(t, body, key.APIKey[:8]+strings.Repeat("*", len(key.APIKey)-8), "listed masked")

		code, body = s.do("DELETE", "/api/v1/api_key/"+key.ID, "", "x-api-key", cliKey)
		require.Equal(t, 200, code, body)
		assert.JSONEq(t, `{"detail":"API Key deleted"}`, body)
		code, body = s.do("POST", "/api/v1/run/"+echo.ID+"?stream=false", seedBody, "x-api-key", key.APIKey)
		assert.Equal(t, 403, code, "revoked at once")
		assert.Equal(t, detail(msgInvalidKey), body)
	})

	var matrix flows.FlowRead
	t.Run("precedence through /run", func(t *testing.T) {
		code, body := s.do("POST", "/api/v1/variables/",
			`{"name":"MY_STORED","value":"`+storedValue+`","type":"Credential","default_fields":[]}`, "x-api-key", cliKey)
		require.Equal(t, 201, code, body)
		assert.Contains(t, body, `"value":null`)
		code, body = s.do("POST", "/api/v1/variables/",
			`{"name":"APPLIED","value":"`+storedValue+`","type":"Credential","default_fields":["applied_field"]}`, "x-api-key", cliKey)
		require.Equal(t, 201, code, body)

		code, body = s.do("POST", "/api/v1/flows/", `{"name":"Matrix","fields":{
			"literal": {"value":"`+flowLiteral+`"},
			"openai": {"variable":"OPENAI_API_KEY"},
			"stored": {"variable":"MY_STORED"},
			"env": {"variable":"MY_SERVICE_TOKEN"},
			"none": {"variable":"NOT_SET_ANYWHERE"},
			"applied_field": {}}}`, "x-api-key", cliKey)
		require.Equal(t, 201, code, body)
		assertNoSecrets(t, "POST /flows", body)
		matrix = decode[flows.FlowRead](t, body)
		assert.Equal(t, "********", matrix.Fields["literal"].Value)

		rr, raw := s.run(matrix.ID, cliKey, `{"inputs":{"text":"hello"},"tweaks":{}}`)
		assert.Equal(t, "hello", rr.text())
		assert.Equal(t, map[string]string{
			"literal":       ":flow",
			"openai":        "OPENAI_API_KEY:stored", // .env imported at start
			"stored":        "MY_STORED:stored",
			"env":           "MY_SERVICE_TOKEN:environment", // .env, not in the import list
			"none":          "NOT_SET_ANYWHERE:none",
			"applied_field": "APPLIED:stored", // "Apply To Fields"
		}, s.sources(rr))
		assertNoSecrets(t, "/run", raw)

		rr, raw = s.run(matrix.ID, cliKey, seedBody,
			"X-LANGFLOW-GLOBAL-VAR-OPENAI_API_KEY", headerValue, "X-LANGFLOW-GLOBAL-VAR-MY_SERVICE_TOKEN", headerValue)
		assert.Equal(t, "OPENAI_API_KEY:request", s.sources(rr)["openai"])
		assert.Equal(t, "MY_SERVICE_TOKEN:request", s.sources(rr)["env"])
		assert.Equal(t, ":flow", s.sources(rr)["literal"])
		assertNoSecrets(t, "/run", raw)

		rr, raw = s.run(matrix.ID, cliKey, `{"inputs":{"text":""},"tweaks":{"openai":"`+tweakValue+`"}}`,
			"X-LANGFLOW-GLOBAL-VAR-OPENAI_API_KEY", headerValue)
		assert.Equal(t, ":flow", s.sources(rr)["openai"], "a tweak is a flow value and beats the header")
		assertNoSecrets(t, "/run", raw)

		// A variable set in the UI overrides the environment.
		code, body = s.do("POST", "/api/v1/variables/", `{"name":"MY_SERVICE_TOKEN","value":"ui-value","type":"Generic","default_fields":[]}`, "x-api-key", cliKey)
		require.Equal(t, 201, code, body)
		rr, _ = s.run(matrix.ID, cliKey, seedBody)
		assert.Equal(t, "MY_SERVICE_TOKEN:stored", s.sources(rr)["env"])

		code, body = s.do("GET", "/api/v1/variables/", "", "x-api-key", cliKey)
		require.Equal(t, 200, code, body)
		assertNoSecrets(t, "GET /variables", body)
		assert.Contains(t, body, `"ui-value"`, "Generic values are listed")
	})

	t.Run("ownership and errors", func(t *testing.T) {
		out, errOut, code := e.cli("", nil, "api-key", "--username", "alice")
		require.Equal(t, 0, code, errOut)
		alice := keyRe.FindString(out)
		require.NotEmpty(t, alice)

		code, body := s.do("POST", "/api/v1/run/"+echo.ID+"?stream=false", seedBody, "x-api-key", alice)
		assert.Equal(t, 403, code)
		assert.Equal(t, detail("You do not have permission to run this flow"), body)
		code, body = s.do("GET", "/api/v1/flows/", "", "x-api-key", alice)
		assert.Equal(t, 200, code)
		assert.JSONEq(t, `[]`, body)
		code, _ = s.do("POST", "/api/v1/run/00000000-0000-4000-8000-000000000000", seedBody, "x-api-key", alice)
		assert.Equal(t, 404, code)
		code, body = s.do("POST", "/api/v1/run/not-a-uuid", seedBody, "x-api-key", alice)
		assert.Equal(t, 404, code, "not a UUID: an unknown endpoint name, as in Langflow")
		assert.Equal(t, detail("Flow identifier not-a-uuid not found"), body)
		code, _ = s.do("POST", "/api/v1/run/"+echo.ID, `{"inputs":`, "x-api-key", cliKey)
		assert.Equal(t, 422, code)

		code, body = s.do("POST", "/api/v1/api_key/", `{"name":"x"}`, "x-api-key", cliKey, "Sec-Fetch-Site", "cross-site")
		assert.Equal(t, 403, code, body)
		code, body = s.do("DELETE", "/api/v1/variables/"+echo.ID, "", "x-api-key", cliKey, "Origin", "https://evil.example")
		assert.Equal(t, 403, code, body)
	})

	// Usage counters are flushed on shutdown (the flush interval is 10 s).
	s.stop()
	assertNoSecrets(t, "the server log", s.log())
	assert.NotContains(t, s.log(), cliKey)
	s = e.start()
	code, body = s.do("GET", "/api/v1/api_key/", "", "x-api-key", cliKey)
	require.Equal(t, 200, code, body)
	keys := decode[struct {
		APIKeys []struct {
			Name      string `json:"name"`
			TotalUses int64  `json:"total_uses"`
		} `json:"api_keys"`
	}](t, body)
	require.NotEmpty(t, keys.APIKeys)
	assert.Equal(t, "CLI", keys.APIKeys[0].Name)
	assert.GreaterOrEqual(t, keys.APIKeys[0].TotalUses, int64(10), "uses before the restart survived it")
	s.stop()

	t.Run("encrypt and decrypt", func(t *testing.T) {
		token, errOut, code := e.cli("hello world\n", nil, "encrypt")
		require.Equal(t, 0, code, errOut)
		require.True(t, strings.HasPrefix(token, "gAAAAA") && strings.HasSuffix(token, "\n") && strings.Count(token, "\n") == 1, token)
		out, errOut, code := e.cli(token, nil, "decrypt")
		require.Equal(t, 0, code, errOut)
		assert.Equal(t, "hello world\n", out)

		for _, bad := range []string{"gAAAAABnot-a-real-token\n", "plain text\n", ""} {
			out, errOut, code = e.cli(bad, nil, "decrypt")
			assert.Equal(t, 1, code, bad)
			assert.Empty(t, out)
			assert.Contains(t, errOut, "server decrypt: ")
		}
		_, errOut, _ = e.cli("gAAAAABnot-a-real-token", nil, "decrypt")
		assert.Contains(t, errOut, "does not open with the master secret")
	})

	t.Run("rotate-secret", func(t *testing.T) {
		oldSecret := secretfile.Read(filepath.Join(e.dir, "secret_key"))
		require.NotEmpty(t, oldSecret)
		oldToken, _, code := e.cli("before rotation", nil, "encrypt")
		require.Equal(t, 0, code)
		storedBefore := e.storedValue("MY_STORED")

		// The secret in the config-dir file: a new one is generated.
		out, errOut, code := e.cli("", nil, "rotate-secret")
		require.Equal(t, 0, code, errOut)
		assert.Regexp(t, `^rotate-secret: [1-9]\d* re-encrypted, 0 already current, 0 failed\n$`, out)
		assert.Contains(t, errOut, "values checked", "progress line")
		newSecret := secretfile.Read(filepath.Join(e.dir, "secret_key"))
		assert.NotEqual(t, oldSecret, newSecret)
		assert.Len(t, newSecret, 43)
		assert.NoFileExists(t, filepath.Join(e.dir, "secret_key.new"))
		assert.NotEqual(t, storedBefore, e.storedValue("MY_STORED"))

		plain, _, code := e.cli(e.storedValue("MY_STORED"), nil, "decrypt")
		assert.Equal(t, 0, code)
		assert.Equal(t, storedValue+"\n", plain)
		_, _, code = e.cli(oldToken, nil, "decrypt")
		assert.Equal(t, 1, code, "the old secret is gone")
		plain, _, code = e.cli(oldToken, []string{"KEYFLOW_PREVIOUS_SECRET_KEYS=" + oldSecret}, "decrypt")
		assert.Equal(t, 0, code)
		assert.Equal(t, "before rotation\n", plain)

		// The secret in the environment: LANGFLOW_SECRET_KEY=new,
		// KEYFLOW_PREVIOUS_SECRET_KEYS=old, rotate-secret.
		envSecret := "an-operator-supplied-secret-of-more-than-32-characters"
		rotEnv := []string{"LANGFLOW_SECRET_KEY=" + envSecret, "KEYFLOW_PREVIOUS_SECRET_KEYS=" + newSecret}
		out, errOut, code = e.cli("", rotEnv, "rotate-secret")
		require.Equal(t, 0, code, errOut)
		assert.Regexp(t, `^rotate-secret: [1-9]\d* re-encrypted, 0 already current, 0 failed\n$`, out)
		assert.Equal(t, newSecret, secretfile.Read(filepath.Join(e.dir, "secret_key")), "an env secret is never written to disk")
		out, errOut, code = e.cli("", rotEnv, "rotate-secret")
		require.Equal(t, 0, code, errOut)
		assert.Regexp(t, `^rotate-secret: 0 re-encrypted, [1-9]\d* already current, 0 failed\n$`, out, "a second run finds everything current")
		plain, _, code = e.cli(e.storedValue("MY_STORED"), []string{"LANGFLOW_SECRET_KEY=" + envSecret}, "decrypt")
		assert.Equal(t, 0, code)
		assert.Equal(t, storedValue+"\n", plain)

		// Without the old secret, values that do not open make it fail.
		out, errOut, code = e.cli("", []string{"LANGFLOW_SECRET_KEY=yet-another-secret-that-is-long-enough-to-use"}, "rotate-secret")
		assert.Equal(t, 1, code)
		assert.Regexp(t, `failed\n$`, out)
		assert.Contains(t, errOut, "KEYFLOW_PREVIOUS_SECRET_KEYS")

		// The server reads the rotated values. Also: with auto-login
		// skipping, no key acts as the superuser, and so does the env key.
		const envKey = "an-env-api-key"
		s := e.start("LANGFLOW_SECRET_KEY="+envSecret, "LANGFLOW_SKIP_AUTH_AUTO_LOGIN=true",
			"LANGFLOW_API_KEY_SOURCE=env", "LANGFLOW_API_KEY="+envKey)
		rr, _ := s.run(matrix.ID, cliKey, seedBody)
		assert.Equal(t, "MY_STORED:stored", s.sources(rr)["stored"])
		code, body := s.do("POST", "/api/v1/run/"+matrix.ID, seedBody)
		assert.Equal(t, 200, code, "auto-login skip acts as the superuser: %s", body)
		rr, _ = s.run(matrix.ID, envKey, seedBody)
		assert.Equal(t, matrix.ID, rr.SessionID, "LANGFLOW_API_KEY acts as the superuser")
		s.stop()
		assert.NotContains(t, s.log(), envKey)
	})
}

// storedValue reads a variable's stored (encrypted) value straight from the
// database, for the superuser.
func (e *e2e) storedValue(name string) string {
	e.t.Helper()
	db, err := e.openDB()
	require.NoError(e.t, err)
	defer db.Close()
	q := `SELECT v.value FROM variable v JOIN users u ON u.id = v.user_id WHERE u.username = 'langflow' AND v.name = ?`
	if e.postgres {
		q = strings.Replace(q, "?", "$1", 1)
	}
	var v string
	require.NoError(e.t, db.QueryRowContext(context.Background(), q, name).Scan(&v))
	return v
}
