package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/examples/server/internal/flows"
	"github.com/keyflow-dev/keyflow/examples/server/internal/webui"
	"github.com/keyflow-dev/keyflow/secrets"
)

// leakCheck collects every output of every process and response, and the
// secrets none of them may contain, except where a secret is the point of
// the output (the api-key box, the create response, decrypt's stdout).
type leakCheck struct {
	t       *testing.T
	secrets map[string]string // value → what it is
	outputs []leakOutput
}

type leakOutput struct {
	where, text string
	allowed     map[string]bool // secrets allowed in this output
}

func (l *leakCheck) secret(what, value string) {
	require.NotEmpty(l.t, value, what)
	l.secrets[value] = what
}

func (l *leakCheck) add(where, text string, allowed ...string) {
	al := map[string]bool{}
	for _, a := range allowed {
		al[a] = true
	}
	l.outputs = append(l.outputs, leakOutput{where, text, al})
}

func (l *leakCheck) verify() {
	l.t.Helper()
	for _, o := range l.outputs {
		for value, what := range l.secrets {
			if !o.allowed[value] {
				assert.NotContains(l.t, o.text, value, "%s leaks %s", o.where, what)
			}
		}
		assert.NotContains(l.t, o.text, "panic", o.where)
		assert.NotContains(l.t, o.text, "goroutine ", o.where)
	}
}

// No secret in logs, errors or responses (SECURITY.md): the server binary
// at debug level and every CLI subcommand, driven with known API keys,
// master secrets (current, previous, new), LANGFLOW_API_KEY, a database
// password and Credential values sent every way the API takes them. The only
// places a secret may appear: the api-key command's box (its key), the POST
// create response (its key), decrypt's stdout (its plaintext).
func TestNoSecretInLogs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server binary")
	}
	const (
		masterSecret     = "kf-master-secret-7c1e9a0b5d3f2468ace0"
		previousSecret   = "kf-previous-secret-0d9b8a7c6e5f4321"
		envAPIKey        = "kf-env-api-key-4e8d2c6a0b1f3579"
		envCredential    = "sk-env-openai-credential-5a7c9e1b3d"
		apiCredential    = "api-credential-value-8f6e4d2c0a"
		patchCredential  = "patched-credential-value-1b3d5f7a9c"
		headerCredential = "header-override-value-2c4e6a8b0d"
		tweakCredential  = "tweak-value-3d5f7b9a1c"
		flowLiteral      = "flow-literal-value-4e6a8c0b2d"
		stdinPlain       = "stdin-plaintext-5f7b9d1c3e"
		previousPlain    = "previous-plaintext-6a8c0e2b4d"
		newSecret        = "kf-new-secret-by-flag-6a8c0e2b4d6f"
		dbPassword       = "db-password-7b9d1f3a5c"
	)
	wrongKey := "sk-WrongKeyWrongKeyWrongKeyWrongKeyWrongKey0A"
	l := &leakCheck{t: t, secrets: map[string]string{}}
	for what, v := range map[string]string{
		"LANGFLOW_SECRET_KEY": masterSecret, "a previous secret": previousSecret, "LANGFLOW_API_KEY": envAPIKey,
		"an imported Credential": envCredential, "a Credential value": apiCredential, "an updated Credential": patchCredential,
		"a header override": headerCredential, "a tweak": tweakCredential, "a flow literal": flowLiteral,
		"an encrypted plaintext": stdinPlain, "a plaintext under the previous secret": previousPlain,
		"the new master secret": newSecret, "a database password": dbPassword, "a wrong key": wrongKey,
	} {
		l.secret(what, v)
	}

	dir := t.TempDir()
	e := &e2e{t: t, bin: buildServer(t), dir: dir}
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".env"), []byte("OPENAI_API_KEY="+envCredential+"\n"), 0o600))
	env := []string{
		"LANGFLOW_SECRET_KEY=" + masterSecret, "KEYFLOW_PREVIOUS_SECRET_KEYS=" + previousSecret,
		"LANGFLOW_LOG_LEVEL=debug", "LANGFLOW_API_KEY_SOURCE=env", "LANGFLOW_API_KEY=" + envAPIKey,
	}
	cli := func(stdin string, extraEnv []string, args ...string) (string, string, int) {
		t.Helper()
		out, errOut, code := e.cli(stdin, append(append([]string(nil), env...), extraEnv...), append(args, "--log-level", "debug")...)
		l.add(strings.Join(args, " ")+" stderr", errOut)
		return out, errOut, code
	}

	out, errOut, code := cli("", nil, "api-key", "--env-file", filepath.Join(dir, ".env"))
	require.Equal(t, 0, code, errOut)
	cliKey := keyRe.FindString(out)
	l.secret("the CLI's API key", cliKey)
	l.add("api-key stdout", out, cliKey)

	s := e.start(env...)
	do := func(method, path, body string, headers ...string) (int, string) {
		t.Helper()
		code, res := s.do(method, path, body, headers...)
		l.add(method+" "+path, res)
		return code, res
	}
	res, err := http.Get(s.url + "/")
	require.NoError(t, err)
	_ = res.Body.Close()
	for _, c := range res.Cookies() {
		if c.Name == webui.SessionCookie {
			l.secret("the UI session token", c.Value)
		}
	}
	do("GET", "/health", "")
	do("GET", "/static/app.js", "")
	code, _ = do("GET", "/api/v1/api_key/", "", "x-api-key", cliKey)
	require.Equal(t, 200, code)
	code, _ = do("GET", "/api/v1/api_key/?x-api-key="+cliKey, "")
	require.Equal(t, 200, code, "key in the query")

	code, created := s.do("POST", "/api/v1/api_key/", `{"name":"leak-check"}`, "x-api-key", cliKey)
	require.Equal(t, 200, code, created)
	newKey := decode[struct {
		APIKey string `json:"api_key"`
		ID     string `json:"id"`
	}](t, created)
	l.secret("a created API key", newKey.APIKey)
	l.add("POST /api/v1/api_key/", created, newKey.APIKey)

	code, body := do("POST", "/api/v1/variables/", `{"name":"MY_CRED","value":"`+apiCredential+`","type":"Credential"}`, "x-api-key", newKey.APIKey)
	require.Equal(t, 201, code, body)
	varID := decode[struct {
		ID string `json:"id"`
	}](t, body).ID
	code, _ = do("POST", "/api/v1/variables/", `{"name":"MY_CRED","value":"`+apiCredential+`"}`, "x-api-key", cliKey)
	assert.Equal(t, 400, code, "duplicate")
	code, _ = do("POST", "/api/v1/variables/", `{"name":"X","value":"`+apiCredential+`"`, "x-api-key", cliKey)
	assert.Equal(t, 422, code, "truncated JSON")
	code, _ = do("POST", "/api/v1/variables/", `{"name":"X","value":"`+apiCredential+`","type":7}`, "x-api-key", cliKey)
	assert.Equal(t, 422, code, "wrong type")
	code, _ = do("PATCH", "/api/v1/variables/"+varID, `{"value":"`+patchCredential+`"}`, "x-api-key", cliKey)
	assert.Equal(t, 200, code)
	code, _ = do("PATCH", "/api/v1/variables/"+varID, `{"value":"`+apiCredential+`","type":"Secret"}`, "x-api-key", cliKey)
	assert.Equal(t, 400, code, "invalid type")
	code, _ = do("GET", "/api/v1/variables/", "", "x-api-key", cliKey)
	assert.Equal(t, 200, code)

	code, body = do("POST", "/api/v1/flows/", `{"name":"Leak","fields":{
		"literal":{"value":"`+flowLiteral+`"}, "cred":{"variable":"MY_CRED"}, "openai":{"variable":"OPENAI_API_KEY"},
		"master":{"variable":"LANGFLOW_SECRET_KEY"}, "envkey":{"variable":"LANGFLOW_API_KEY"},
		"previous":{"variable":"KEYFLOW_PREVIOUS_SECRET_KEYS"}}}`, "x-api-key", cliKey)
	require.Equal(t, 201, code, body)
	flowID := decode[flows.FlowRead](t, body).ID
	code, body = do("POST", "/api/v1/flows/", `{"name":"Session","fields":{"session_id":{"variable":"MY_CRED"}}}`, "x-api-key", cliKey)
	require.Equal(t, 201, code, body)
	sessionFlow := decode[flows.FlowRead](t, body).ID
	do("GET", "/api/v1/flows/", "", "x-api-key", cliKey)

	code, body = do("POST", "/api/v1/run/"+flowID+"?stream=false", `{"inputs":{"text":"hi"},"tweaks":{"literal":"`+tweakCredential+`"}}`,
		"x-api-key", cliKey, "X-LANGFLOW-GLOBAL-VAR-MY_CRED", headerCredential)
	require.Equal(t, 200, code, body)
	rr := decode[runResult](t, body)
	for _, f := range []string{"master", "envkey", "previous"} {
		assert.Equal(t, "none", rr.Fields[f].Source, "a server secret is never a variable's environment value: %s", f)
	}
	assert.Equal(t, "request", rr.Fields["cred"].Source)
	code, _ = do("POST", "/api/v1/run/"+flowID+"?x-api-key="+newKey.APIKey+"?stream=false", seedBody)
	assert.Equal(t, 200, code, "key in the query, Langflow's '?' typo")
	code, _ = do("POST", "/api/v1/run/"+flowID, seedBody, "x-api-key", envAPIKey)
	assert.Equal(t, 200, code, "LANGFLOW_API_KEY")
	code, _ = do("POST", "/api/v1/run/"+sessionFlow, seedBody, "x-api-key", cliKey)
	assert.Equal(t, 400, code, "a Credential in session_id")
	for _, k := range []string{wrongKey, newKey.APIKey[:45], "not-even-a-key"} {
		code, _ = do("POST", "/api/v1/run/"+flowID, seedBody, "x-api-key", k)
		assert.Equal(t, 403, code)
		code, _ = do("GET", "/api/v1/variables/?x-api-key="+k, "")
		assert.Equal(t, 403, code)
	}
	code, _ = do("DELETE", "/api/v1/api_key/"+newKey.ID, "", "x-api-key", cliKey)
	assert.Equal(t, 200, code)
	code, _ = do("POST", "/api/v1/run/"+flowID, seedBody, "x-api-key", newKey.APIKey)
	assert.Equal(t, 403, code, "revoked")
	code, _ = do("DELETE", "/api/v1/variables/"+varID, "", "x-api-key", cliKey)
	assert.Equal(t, 204, code)
	s.stop()
	l.add("server log", s.log())

	// The CLI.
	token, _, code := cli(stdinPlain, nil, "encrypt")
	require.Equal(t, 0, code)
	l.add("encrypt stdout", token)
	out, _, code = cli(token, nil, "decrypt")
	require.Equal(t, 0, code)
	assert.Equal(t, stdinPlain+"\n", out)
	l.add("decrypt stdout", out, stdinPlain)
	old, err := secrets.NewKeyring(previousSecret)
	require.NoError(t, err)
	oldToken, err := old.Encrypt(previousPlain)
	require.NoError(t, err)
	out, _, code = cli(oldToken, nil, "decrypt")
	require.Equal(t, 0, code, "a previous secret opens it")
	l.add("decrypt stdout", out, previousPlain)
	out, _, code = cli(stdinPlain, nil, "decrypt")
	assert.Equal(t, 1, code, "not a token")
	l.add("decrypt stdout", out)
	foreign, err := secrets.NewKeyring("some-other-secret-nobody-configured-here")
	require.NoError(t, err)
	foreignToken, err := foreign.Encrypt(stdinPlain)
	require.NoError(t, err)
	out, _, code = cli(foreignToken, nil, "decrypt")
	assert.Equal(t, 1, code, "does not open")
	l.add("decrypt stdout", out)

	out, _, code = cli("", nil, "rotate-secret", "--new-secret", newSecret)
	require.Equal(t, 0, code)
	l.add("rotate-secret stdout", out)
	fi, err := os.Stat(filepath.Join(dir, "secret_key"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "the rotated master secret is readable by its owner only")
	out, _, code = cli("", []string{"LANGFLOW_SECRET_KEY=" + newSecret, "KEYFLOW_PREVIOUS_SECRET_KEYS="}, "rotate-secret")
	require.Equal(t, 0, code, "a second run finds everything current")
	l.add("rotate-secret stdout", out)
	out, _, code = cli("", nil, "api-key", "--database-url", "postgres://keyflow:"+dbPassword+"@127.0.0.1:1/none?sslmode=disable&connect_timeout=2")
	assert.Equal(t, 1, code, "no database there")
	l.add("api-key stdout", out)

	// The server on the rotated secret reads the imported Credential.
	s = e.start("LANGFLOW_SECRET_KEY="+newSecret, "LANGFLOW_LOG_LEVEL=debug")
	rr, body = s.run(flowID, cliKey, seedBody)
	l.add("POST /api/v1/run after rotation", body)
	assert.Equal(t, "stored", rr.Fields["openai"].Source)
	s.stop()
	l.add("server log after rotation", s.log())

	l.verify()
}
