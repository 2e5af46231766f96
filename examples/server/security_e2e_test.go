package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/examples/server/internal/flows"
	"github.com/keyflow-dev/keyflow/examples/server/internal/webui"
	"github.com/keyflow-dev/keyflow/keyflowtest/dbtest"
)

// The attacks of issue 13 ("Security, round two"), against the real binary,
// each of which succeeded before its fix: DNS rebinding onto the superuser
// (1), a Credential's plaintext in a response (2), scopes not enforced (3),
// the key echoed in redirects (5), unchecked names and unbounded flows (8),
// and the smaller ones (11: file modes, directory listing, nosniff, the
// session cookie). The input attacks run on PostgreSQL too when
// KEYFLOW_TEST_POSTGRES_DSN is set.
func TestSecurityE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server binary")
	}
	bin := buildServer(t)

	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		// A config dir that does not exist yet: the server creates it.
		dir := filepath.Join(t.TempDir(), "config")
		e := &e2e{t: t, bin: bin, dir: dir}
		e.openDB = func() (*sql.DB, error) { return dbtest.OpenSQLite(filepath.Join(dir, "keyflow.db")) }
		key := e.secSetup()
		s := e.start()
		defer s.stop()
		t.Run("file modes", func(t *testing.T) { secFileModes(t, dir) })
		t.Run("DNS rebinding", func(t *testing.T) { secRebinding(t, s) })
		t.Run("key in redirects", func(t *testing.T) { secRedirects(t, s, key) })
		t.Run("static listing and nosniff", func(t *testing.T) { secStaticAndHeaders(t, s, key) })
		t.Run("session cookie", func(t *testing.T) { secSessionCookie(t, s) })
		e.secInput(s, key)
	})
	t.Run("skip-auth and allowed hosts", func(t *testing.T) {
		t.Parallel()
		e := &e2e{t: t, bin: bin, dir: t.TempDir()}
		e.secSetup()
		secSkipAuth(t, e)
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		e := newPostgresE2E(t, bin)
		key := e.secSetup()
		s := e.start()
		defer s.stop()
		e.secInput(s, key)
		assert.NotContains(t, s.log(), "level=ERROR", "bad input is not a database error")
	})
}

// secSetup creates the superuser's key with the CLI (which creates the
// config dir and the database), then an empty .env.
func (e *e2e) secSetup() string {
	e.t.Helper()
	out, errOut, code := e.cli("", nil, "api-key")
	require.Equal(e.t, 0, code, errOut)
	key := keyRe.FindString(out)
	require.NotEmpty(e.t, key, out)
	require.NoError(e.t, os.WriteFile(filepath.Join(e.dir, ".env"), nil, 0o600))
	return key
}

// secInput: the attacks on input and authorization, on either database.
func (e *e2e) secInput(s *server, key string) {
	e.t.Run("Credential to Generic", func(t *testing.T) {
		sub := *e
		sub.t = t
		sub.secCredentialToGeneric(t, s, key)
	})
	e.t.Run("scopes", func(t *testing.T) { secScopes(t, s, key) })
	e.t.Run("names and flow limits", func(t *testing.T) { secNames(t, s, key) })
}

// hostReq sends one request with the given Host header (the connection goes
// to the server's loopback address, as after a DNS rebinding).
func hostReq(t *testing.T, s *server, method, path, host, body string, headers ...string) *http.Response {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.url+path, r)
	require.NoError(t, err)
	req.Host = host
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { _ = res.Body.Close() })
	return res
}

func readBody(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return string(b)
}

func sessionFrom(res *http.Response) *http.Cookie {
	for _, c := range res.Cookies() {
		if c.Name == webui.SessionCookie {
			return c
		}
	}
	return nil
}

// Issue 13, item 1: the auto-login cookie is only issued to allowed hosts,
// and a rebound page cannot use it (or anything else) to act as the
// superuser.
func secRebinding(t *testing.T, s *server) {
	port := s.url[strings.LastIndexByte(s.url, ':')+1:]
	attacker := "attacker.example:" + port

	// The exact attack: the page is served to attacker.example...
	res := hostReq(t, s, "GET", "/", attacker, "")
	body := readBody(t, res)
	assert.Equal(t, http.StatusMisdirectedRequest, res.StatusCode, body)
	assert.Nil(t, sessionFrom(res), "no session cookie for a host that is not allowed")
	assert.Empty(t, res.Header.Values("Set-Cookie"))
	assert.Contains(t, body, "KEYFLOW_ALLOWED_HOSTS", "the answer says how to allow a host")

	// ...and mints a key with a cookie obtained under a good name.
	res = hostReq(t, s, "GET", "/", "127.0.0.1:"+port, "")
	require.Equal(t, 200, res.StatusCode)
	session := sessionFrom(res)
	require.NotNil(t, session)
	res = hostReq(t, s, "POST", "/api/v1/api_key/", attacker, `{"name":"rebound"}`,
		"Cookie", webui.SessionCookie+"="+session.Value,
		"Origin", "http://"+attacker, "Sec-Fetch-Site", "same-origin")
	body = readBody(t, res)
	assert.Equal(t, http.StatusMisdirectedRequest, res.StatusCode, body)
	assert.NotRegexp(t, keyRe, body)

	for _, host := range []string{
		"attacker.example", attacker, "ATTACKER.example.:" + port, "localhost.attacker.example:" + port,
		"127.0.0.1.nip.io:" + port, "app.localhost:" + port, "[::2]:" + port, "0.0.0.0:" + port, "10.0.0.1:" + port,
	} {
		res := hostReq(t, s, "GET", "/api/v1/api_key/", host, "", "Cookie", webui.SessionCookie+"="+session.Value)
		assert.Equal(t, http.StatusMisdirectedRequest, res.StatusCode, host)
		res = hostReq(t, s, "GET", "/", host, "")
		assert.Equal(t, http.StatusMisdirectedRequest, res.StatusCode, host)
		assert.Nil(t, sessionFrom(res), host)
	}
	for _, host := range []string{"127.0.0.1:" + port, "localhost:" + port, "LOCALHOST.:" + port, "[::1]:" + port, "127.1.2.3:" + port, "127.0.0.1"} {
		res := hostReq(t, s, "GET", "/api/v1/api_key/", host, "", "Cookie", webui.SessionCookie+"="+session.Value)
		assert.Equal(t, http.StatusOK, res.StatusCode, host)
	}
	res = hostReq(t, s, "GET", "/health", attacker, "")
	assert.Equal(t, http.StatusOK, res.StatusCode, "/health acts as nobody and stays open")
}

// Item 1 with LANGFLOW_SKIP_AUTH_AUTO_LOGIN, where no cookie is needed, and
// the allowed-hosts settings.
func secSkipAuth(t *testing.T, e *e2e) {
	s := e.startArgs([]string{"--allowed-hosts", "flag.example, .corp.example"},
		"LANGFLOW_SKIP_AUTH_AUTO_LOGIN=true")
	port := s.url[strings.LastIndexByte(s.url, ':')+1:]
	res := hostReq(t, s, "POST", "/api/v1/api_key/", "attacker.example:"+port, `{"name":"rebound"}`,
		"Origin", "http://attacker.example:"+port, "Sec-Fetch-Site", "same-origin")
	body := readBody(t, res)
	assert.Equal(t, http.StatusMisdirectedRequest, res.StatusCode, body)
	assert.NotRegexp(t, keyRe, body)
	res = hostReq(t, s, "GET", "/api/v1/api_key/", "attacker.example:"+port, "")
	assert.Equal(t, http.StatusMisdirectedRequest, res.StatusCode)
	for _, host := range []string{"localhost:" + port, "flag.example:" + port, "corp.example", "ui.corp.example:" + port} {
		res := hostReq(t, s, "GET", "/api/v1/api_key/", host, "")
		assert.Equal(t, http.StatusOK, res.StatusCode, host)
	}
	res = hostReq(t, s, "GET", "/api/v1/api_key/", "evilcorp.example:"+port, "")
	assert.Equal(t, http.StatusMisdirectedRequest, res.StatusCode, "a suffix entry matches whole labels only")
	s.stop()

	// The environment variable.
	s = e.start("KEYFLOW_ALLOWED_HOSTS=env.example")
	res = hostReq(t, s, "GET", "/", "env.example", "")
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.NotNil(t, sessionFrom(res))
	res = hostReq(t, s, "GET", "/", "flag.example", "")
	assert.Equal(t, http.StatusMisdirectedRequest, res.StatusCode)
	assert.Nil(t, sessionFrom(res))
	s.stop()
}

// Issue 13, item 2: a decrypted Credential never appears in a response.
func (e *e2e) secCredentialToGeneric(t *testing.T, s *server, key string) {
	const plain = "credential-to-generic-plaintext"
	code, body := s.do("POST", "/api/v1/variables/", `{"name":"SEC_CRED","value":"`+plain+`","type":"Credential"}`, "x-api-key", key)
	require.Equal(t, 201, code, body)
	id := decode[struct {
		ID string `json:"id"`
	}](t, body).ID
	for _, patch := range []string{`{"type":"Generic"}`, `{"type":"Generic","name":"SEC_CRED2"}`, `{"type":"Generic","default_fields":[]}`} {
		code, body = s.do("PATCH", "/api/v1/variables/"+id, patch, "x-api-key", key)
		assert.Equal(t, 400, code, body)
		assert.Contains(t, body, "only with a new value")
		assert.NotContains(t, body, plain)
	}
	code, body = s.do("GET", "/api/v1/variables/", "", "x-api-key", key)
	require.Equal(t, 200, code)
	assert.NotContains(t, body, plain)

	// The stored token, copied into a Generic value, is not decrypted back.
	token := e.storedValue("SEC_CRED")
	code, body = s.do("POST", "/api/v1/variables/", `{"name":"SEC_COPY","value":"`+token+`","type":"Generic"}`, "x-api-key", key)
	assert.Equal(t, 400, code, body)
	assert.NotContains(t, body, plain)
	code, body = s.do("GET", "/api/v1/variables/", "", "x-api-key", key)
	require.Equal(t, 200, code)
	assert.NotContains(t, body, plain)

	// With a new value, the change is allowed and shows the new value only.
	code, body = s.do("PATCH", "/api/v1/variables/"+id, `{"type":"Generic","value":"public now"}`, "x-api-key", key)
	assert.Equal(t, 200, code, body)
	assert.Contains(t, body, `"value":"public now"`)
	assert.NotContains(t, body, plain)
}

// Issue 13, item 3: a key with scopes reaches only its routes, and creates
// only keys with a subset of its scopes.
func secScopes(t *testing.T, s *server, key string) {
	mint := func(creator, body string) string {
		t.Helper()
		code, raw := s.do("POST", "/api/v1/api_key/", body, "x-api-key", creator)
		require.Equal(t, 200, code, raw)
		k := keyRe.FindString(raw)
		require.NotEmpty(t, k)
		return k
	}
	runKey := mint(key, `{"name":"run only","scopes":["run"]}`)
	readKey := mint(key, `{"name":"read vars","scopes":["variables:read"]}`)
	keysKey := mint(key, `{"name":"keys","scopes":["keys","run"]}`)

	code, body := s.do("GET", "/api/v1/flows/", "", "x-api-key", key)
	require.Equal(t, 200, code, body)
	var flowID string
	for _, f := range decode[[]flows.FlowRead](t, body) {
		if f.Name == "Echo" {
			flowID = f.ID
		}
	}
	require.NotEmpty(t, flowID)
	code, body = s.do("POST", "/api/v1/variables/", `{"name":"SEC_SCOPED","value":"v","type":"Generic"}`, "x-api-key", key)
	require.Equal(t, 201, code, body)
	varID := decode[struct {
		ID string `json:"id"`
	}](t, body).ID
	before := counts(t, s, key)

	for _, tc := range []struct {
		name, key, method, path, body string
		want                          int
	}{
		{"run key runs", runKey, "POST", "/api/v1/run/" + flowID, seedBody, 200},
		{"run key lists variables", runKey, "GET", "/api/v1/variables/", "", 403},
		{"run key changes a variable", runKey, "PATCH", "/api/v1/variables/" + varID, `{"value":"x"}`, 403},
		{"run key creates a variable", runKey, "POST", "/api/v1/variables/", `{"name":"N","value":"v"}`, 403},
		{"run key deletes a variable", runKey, "DELETE", "/api/v1/variables/" + varID, "", 403},
		{"run key lists flows", runKey, "GET", "/api/v1/flows/", "", 403},
		{"run key creates a flow", runKey, "POST", "/api/v1/flows/", `{"name":"f"}`, 403},
		{"run key lists keys", runKey, "GET", "/api/v1/api_key/", "", 403},
		{"run key mints an unrestricted key", runKey, "POST", "/api/v1/api_key/", `{"name":"escalate"}`, 403},
		{"run key mints a run key", runKey, "POST", "/api/v1/api_key/", `{"name":"escalate","scopes":["run"]}`, 403},
		{"read key lists variables", readKey, "GET", "/api/v1/variables/", "", 200},
		{"read key changes a variable", readKey, "PATCH", "/api/v1/variables/" + varID, `{"value":"x"}`, 403},
		{"read key runs", readKey, "POST", "/api/v1/run/" + flowID, seedBody, 403},
		{"keys key lists keys", keysKey, "GET", "/api/v1/api_key/", "", 200},
		{"keys key mints an unrestricted key", keysKey, "POST", "/api/v1/api_key/", `{"name":"escalate"}`, 403},
		{"keys key mints with empty scopes", keysKey, "POST", "/api/v1/api_key/", `{"name":"escalate","scopes":[]}`, 403},
		{"keys key mints a wider key", keysKey, "POST", "/api/v1/api_key/", `{"name":"escalate","scopes":["keys","variables:read"]}`, 403},
		{"keys key lists users", keysKey, "GET", "/api/v1/users/", "", 403},
		{"keys key creates a user", keysKey, "POST", "/api/v1/users/", `{"username":"mallory","password":"a long password 123"}`, 403},
		{"run key asks whoami", runKey, "GET", "/api/v1/users/whoami", "", 403},
		{"unrestricted key asks whoami", key, "GET", "/api/v1/users/whoami", "", 200},
		{"unknown scope", key, "POST", "/api/v1/api_key/", `{"name":"x","scopes":["admin"]}`, 400},
		{"unrestricted key lists variables", key, "GET", "/api/v1/variables/", "", 200},
		{"unrestricted key runs", key, "POST", "/api/v1/run/" + flowID, seedBody, 200},
	} {
		code, body := s.do(tc.method, tc.path+"?stream=false", tc.body, "x-api-key", tc.key)
		assert.Equal(t, tc.want, code, "%s: %s", tc.name, body)
		if tc.want != 200 {
			assert.NotRegexp(t, keyRe, body, tc.name)
		}
	}
	assert.Equal(t, before, counts(t, s, key), "nothing was created, changed or deleted")
	sub := mint(keysKey, `{"name":"subset","scopes":["run"]}`)
	code, body = s.do("GET", "/api/v1/api_key/", "", "x-api-key", sub)
	assert.Equal(t, 403, code, "the subset key has only run: %s", body)
	assert.Contains(t, body, `lacks the required scope \"keys\"`)
}

// Issue 13, item 8: names of keys, flows and fields are checked; flows are
// bounded; nothing is stored (and on PostgreSQL a NUL is a 4xx, not a 503).
// maxFlowFields is the server's bound on a flow's fields.
const maxFlowFields = 256

func secNames(t *testing.T, s *server, key string) {
	before := counts(t, s, key)
	bad := []string{`a\u0000b`, `a\u001bb`, `OPENAI_API_KEY\u200b`, `\u202eYEK`, `\ud800`, `a\u2028b`, `KEY\ufe0f`}
	for _, name := range bad {
		code, body := s.do("POST", "/api/v1/api_key/", `{"name":"`+name+`"}`, "x-api-key", key)
		assert.True(t, code >= 400 && code < 500, "key name %s: %d %s", name, code, body)
		assert.NotRegexp(t, keyRe, body)
		code, body = s.do("POST", "/api/v1/flows/", `{"name":"`+name+`"}`, "x-api-key", key)
		assert.True(t, code >= 400 && code < 500, "flow name %s: %d %s", name, code, body)
		code, body = s.do("POST", "/api/v1/flows/", `{"name":"f","fields":{"`+name+`":{}}}`, "x-api-key", key)
		assert.True(t, code >= 400 && code < 500, "field name %s: %d %s", name, code, body)
	}
	many := func(n int) string {
		var b strings.Builder
		b.WriteString(`{"name":"many","fields":{`)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `"f%d":{}`, i)
		}
		b.WriteString(`}}`)
		return b.String()
	}
	code, body := s.do("POST", "/api/v1/flows/", many(20000), "x-api-key", key)
	assert.Equal(t, 400, code, body)
	code, body = s.do("POST", "/api/v1/flows/", many(maxFlowFields+1), "x-api-key", key)
	assert.Equal(t, 400, code, body)
	big, err := json.Marshal(strings.Repeat("v", 100<<10))
	require.NoError(t, err)
	code, body = s.do("POST", "/api/v1/flows/", `{"name":"big","fields":{"f":{"value":`+string(big)+`}}}`, "x-api-key", key)
	assert.Equal(t, 400, code, body)
	assert.Less(t, len(body), 200, "the value is not echoed")
	assert.Equal(t, before, counts(t, s, key), "nothing stored")

	code, body = s.do("POST", "/api/v1/flows/", many(maxFlowFields), "x-api-key", key)
	assert.Equal(t, 201, code, "the limit itself is allowed: %.200s", body)
}

// Issue 13, item 5: no answer carries a key sent in the URL, whatever
// redirect net/http's ServeMux or FileServer would make.
func secRedirects(t *testing.T, s *server, key string) {
	for _, target := range []string{
		"/api/v1/api_key?x-api-key=" + key,
		"//api/v1/api_key/?x-api-key=" + key,
		"/api/v1/./api_key/?x-api-key=" + key,
		"/api/v1/x/../api_key/?x-api-key=" + key,
		"/api/v1/flows?x-api-key=" + key,
		"/api/v1/variables?x-api-key=" + key,
		"/static?x-api-key=" + key,
		"/static/app.css/?x-api-key=" + key,
		"/static/index.html?x-api-key=" + key,
		"/api/v1/api_key?stream=false?x-api-key=" + key,
		"/api/v1/api_key?X-API-KEY=" + key,
		"/api/v1/api_key?x%2Dapi%2Dkey=" + key,
		"/api/v1/api_key?a=1&x-api-key=" + key + "&x-api-key=" + key,
	} {
		for _, method := range []string{"GET", "POST", "DELETE"} {
			code, header, body := rawRequest(t, s.url, method, target, nil, "")
			assert.False(t, code >= 300 && code < 400, "%s %s: %d", method, target, code)
			for name, values := range header {
				for _, v := range values {
					assert.NotContains(t, v, key, "%s %s: header %s", method, target, name)
				}
			}
			assert.NotContains(t, body, key, "%s %s: body", method, target)
		}
	}
	// The same paths without a key still redirect, as net/http does.
	code, header, _ := rawRequest(t, s.url, "GET", "/api/v1/api_key?stream=false", nil, "")
	assert.Equal(t, http.StatusTemporaryRedirect, code)
	assert.Equal(t, "/api/v1/api_key/?stream=false", header.Get("Location"))
	// A canonical URL with the key in it works as before.
	code, _, body := rawRequest(t, s.url, "GET", "/api/v1/api_key/?x-api-key="+key, nil, "")
	assert.Equal(t, 200, code, body)
	assert.NotContains(t, body, key)
}

// Issue 13, item 11: /static/ lists nothing; every answer says nosniff.
func secStaticAndHeaders(t *testing.T, s *server, key string) {
	for _, path := range []string{"/static/"} {
		code, _, body := rawRequest(t, s.url, "GET", path, nil, "")
		assert.Equal(t, 404, code, path)
		assert.NotContains(t, body, "app.css", path)
		assert.NotContains(t, body, "<a href", path)
	}
	code, _, _ := rawRequest(t, s.url, "GET", "/static/app.css", nil, "")
	assert.Equal(t, 200, code)
	for _, tc := range []struct{ method, path, key string }{
		{"GET", "/health", ""}, {"GET", "/api/v1/api_key/", key}, {"GET", "/api/v1/api_key/", ""},
		{"GET", "/api/v1/variables/", key}, {"GET", "/api/v1/flows/", key}, {"GET", "/api/v1/nope", ""},
		{"POST", "/api/v1/run/x", key}, {"GET", "/", ""}, {"GET", "/static/app.js", ""},
	} {
		var h [][2]string
		if tc.key != "" {
			h = [][2]string{{"x-api-key", tc.key}}
		}
		_, header, _ := rawRequest(t, s.url, tc.method, tc.path, h, "")
		assert.Equal(t, "nosniff", header.Get("X-Content-Type-Options"), "%s %s", tc.method, tc.path)
	}
}

// Issue 13, item 11: the session cookie has a lifetime and is not one value
// for the life of the process.
func secSessionCookie(t *testing.T, s *server) {
	var values []string
	for range 2 {
		code, header, _ := rawRequest(t, s.url, "GET", "/", nil, "")
		require.Equal(t, 200, code)
		res := http.Response{Header: header}
		c := sessionFrom(&res)
		require.NotNil(t, c)
		assert.Equal(t, int(time.Hour/time.Second), c.MaxAge, "the cookie expires")
		assert.True(t, c.HttpOnly)
		assert.Equal(t, http.SameSiteStrictMode, c.SameSite)
		values = append(values, c.Value)
	}
	assert.NotEqual(t, values[0], values[1], "each page load gets its own value")
	for _, v := range values {
		code, _, _ := rawRequest(t, s.url, "GET", "/api/v1/api_key/", [][2]string{{"Cookie", webui.SessionCookie + "=" + v}}, "")
		assert.Equal(t, 200, code)
	}
}

// Issue 13, item 11: the database files are the owner's only.
func secFileModes(t *testing.T, dir string) {
	st, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), st.Mode().Perm(), "config dir")
	for _, name := range []string{"keyflow.db", "keyflow.db-wal", "keyflow.db-shm", "secret_key"} {
		st, err := os.Stat(filepath.Join(dir, name))
		if assert.NoError(t, err, name) {
			assert.Equal(t, os.FileMode(0o600), st.Mode().Perm(), name)
		}
	}
}
