package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyflow-dev/keyflow/examples/server/internal/flows"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// serverBinary is the reference server, built once per test binary by
// buildServer and removed by TestMain.
var serverBinary struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// buildServer returns the reference server binary, building it on first use
// (every end-to-end test of the package shares the one build).
func buildServer(t *testing.T) string {
	t.Helper()
	b := &serverBinary
	b.once.Do(func() {
		if b.dir, b.err = os.MkdirTemp("", "keyflow-server-"); b.err != nil {
			return
		}
		b.path = filepath.Join(b.dir, "keyflow-server")
		if out, err := exec.Command("go", "build", "-o", b.path, ".").CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build: %w: %s", err, out)
		}
	})
	require.NoError(t, b.err)
	return b.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if serverBinary.dir != "" {
		_ = os.RemoveAll(serverBinary.dir)
	}
	os.Exit(code)
}

// rawRequest sends one HTTP/1.1 request exactly as given (method, target and
// headers unvalidated, so that it can carry what net/http's client refuses:
// NUL bytes, invalid UTF-8, repeated headers) and returns the answer.
func rawRequest(t *testing.T, base, method, target string, headers [][2]string, body string) (int, http.Header, string) {
	t.Helper()
	u, err := url.Parse(base)
	require.NoError(t, err)
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(30*time.Second)))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, target, u.Host)
	if body != "" {
		fmt.Fprintf(&b, "Content-Type: application/json\r\nContent-Length: %d\r\n", len(body))
	}
	for _, h := range headers {
		b.WriteString(h[0] + ": " + h[1] + "\r\n")
	}
	b.WriteString("\r\n")
	b.WriteString(body)
	// The server may answer (413, 431) and close before reading everything:
	// write in the background and read the answer regardless.
	go func() { _, _ = io.WriteString(conn, b.String()) }()
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err, "%s %.80q", method, target)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, res.Header, string(raw)
}

// counts returns how many API keys, variables and flows the key's user has.
func counts(t *testing.T, s *server, key string) [3]int {
	t.Helper()
	var out [3]int
	code, body := s.do("GET", "/api/v1/api_key/", "", "x-api-key", key)
	require.Equal(t, 200, code, body)
	out[0] = decode[struct {
		Total int `json:"total_count"`
	}](t, body).Total
	code, body = s.do("GET", "/api/v1/variables/", "", "x-api-key", key)
	require.Equal(t, 200, code, body)
	out[1] = len(decode[[]json.RawMessage](t, body))
	code, body = s.do("GET", "/api/v1/flows/", "", "x-api-key", key)
	require.Equal(t, 200, code, body)
	out[2] = len(decode[[]json.RawMessage](t, body))
	return out
}

// Bad input for every HTTP endpoint of the reference server: each request is
// refused with a clear 4xx — JSON {"detail": ...} from keyflow's handlers,
// or net/http's own answer for requests it refuses before any handler runs
// (431, 400 for malformed headers) — nothing is stored, and nothing panics.
func TestBadInput(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server binary")
	}
	dir := t.TempDir()
	e := &e2e{t: t, bin: buildServer(t), dir: dir}
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".env"), nil, 0o600))
	out, errOut, code := e.cli("", nil, "api-key")
	require.Equal(t, 0, code, errOut)
	key := keyRe.FindString(out)
	require.NotEmpty(t, key)
	s := e.start()
	defer s.stop()

	code, body := s.do("GET", "/api/v1/flows/", "", "x-api-key", key)
	require.Equal(t, 200, code, body)
	flowID := decode[[]flows.FlowRead](t, body)[0].ID
	code, body = s.do("POST", "/api/v1/variables/", `{"name":"EXISTING","value":"v","type":"Generic"}`, "x-api-key", key)
	require.Equal(t, 201, code, body)
	varID := decode[struct {
		ID string `json:"id"`
	}](t, body).ID
	code, body = s.do("GET", "/api/v1/api_key/", "", "x-api-key", key)
	require.Equal(t, 200, code, body)
	keyID := decode[struct {
		APIKeys []struct {
			ID string `json:"id"`
		} `json:"api_keys"`
	}](t, body).APIKeys[0].ID
	before := counts(t, s, key)

	auth := [][2]string{{"x-api-key", key}}
	big := strings.Repeat("a", 2<<20)
	bigJSON := `{"name":"` + big + `","value":"v"}`
	long := strings.Repeat("n", 10000)
	wrongKey := "sk-" + strings.Repeat("A", 43)
	run := "/api/v1/run/" + flowID
	const (
		jsonDetail = iota // a JSON object with a string "detail"
		jsonAny           // JSON (FastAPI's validation list for variable ids)
		stdlib            // net/http's own refusal, before any handler
	)
	cases := []struct {
		name           string
		method, target string
		headers        [][2]string
		body           string
		want           []int
		shape          int
	}{
		// Oversized headers and bodies.
		{"huge x-api-key header", "GET", "/api/v1/api_key/", [][2]string{{"x-api-key", big}}, "", []int{431}, stdlib},
		{"huge override header", "POST", run, append([][2]string{{"X-LANGFLOW-GLOBAL-VAR-A", big}}, auth...), "{}", []int{431}, stdlib},
		{"huge body: create key", "POST", "/api/v1/api_key/", auth, bigJSON, []int{413}, jsonDetail},
		{"huge body: create variable", "POST", "/api/v1/variables/", auth, bigJSON, []int{413}, jsonDetail},
		{"huge body: update variable", "PATCH", "/api/v1/variables/" + varID, auth, bigJSON, []int{413}, jsonDetail},
		{"huge body: create flow", "POST", "/api/v1/flows/", auth, bigJSON, []int{413}, jsonDetail},
		{"huge body: run", "POST", run, auth, `{"inputs":{"text":"` + big + `"}}`, []int{413}, jsonDetail},
		// Invalid UTF-8.
		{"non-UTF-8 key", "GET", "/api/v1/api_key/", [][2]string{{"x-api-key", "sk-\xff\xfe" + strings.Repeat("A", 41)}}, "", []int{403}, jsonDetail},
		{"non-UTF-8 variable name", "POST", "/api/v1/variables/", auth, "{\"name\":\"A\xff\",\"value\":\"v\"}", []int{400, 422}, jsonDetail},
		{"non-UTF-8 key name", "POST", "/api/v1/api_key/", auth, "{\"name\":\"\xc3\x28\"}", []int{400, 422}, jsonDetail},
		{"non-UTF-8 flow name", "POST", "/api/v1/flows/", auth, "{\"name\":\"\xed\xa0\x80\"}", []int{400, 422}, jsonDetail},
		{"non-UTF-8 variable id", "DELETE", "/api/v1/variables/\xff", auth, "", []int{404, 422}, jsonAny},
		// NUL bytes.
		{"NUL in a header value", "GET", "/api/v1/api_key/", [][2]string{{"x-api-key", "sk-\x00"}}, "", []int{400}, stdlib},
		{"NUL in a variable name", "POST", "/api/v1/variables/", auth, `{"name":"A\u0000B","value":"v"}`, []int{400}, jsonDetail},
		{"NUL in a Generic value", "POST", "/api/v1/variables/", auth, `{"name":"NUL_VALUE","value":"a\u0000b","type":"Generic"}`, []int{400}, jsonDetail},
		{"raw NUL in JSON", "POST", "/api/v1/api_key/", auth, "{\"name\":\"a\x00b\"}", []int{422}, jsonDetail},
		{"NUL in a flow name", "POST", "/api/v1/flows/", auth, `{"name":"a\u0000b"}`, []int{400}, jsonDetail},
		{"NUL in the run id", "POST", "/api/v1/run/%00", auth, "{}", []int{404}, jsonDetail},
		// Repeated and conflicting keys.
		{"duplicate x-api-key, the first wrong", "POST", "/api/v1/api_key/", [][2]string{{"x-api-key", wrongKey}, {"x-api-key", key}}, `{"name":"dup"}`, []int{403}, jsonDetail},
		{"wrong key in the query wins over the header", "POST", "/api/v1/variables/?x-api-key=" + wrongKey, auth, `{"name":"Q","value":"v"}`, []int{403}, jsonDetail},
		// 10 000-character names.
		{"long variable name", "POST", "/api/v1/variables/", auth, `{"name":"` + long + `","value":"v"}`, []int{400}, jsonDetail},
		{"long variable rename", "PATCH", "/api/v1/variables/" + varID, auth, `{"name":"` + long + `"}`, []int{400}, jsonDetail},
		{"long key name", "POST", "/api/v1/api_key/", auth, `{"name":"` + long + `"}`, []int{400}, jsonDetail},
		{"long flow name", "POST", "/api/v1/flows/", auth, `{"name":"` + long + `"}`, []int{400}, jsonDetail},
		{"long flow field name", "POST", "/api/v1/flows/", auth, `{"name":"f","fields":{"` + long + `":{}}}`, []int{400}, jsonDetail},
		{"long key scope", "POST", "/api/v1/api_key/", auth, `{"name":"s","scopes":["` + long + `"]}`, []int{400}, jsonDetail},
		// Malformed UUIDs.
		{"key id not a UUID", "DELETE", "/api/v1/api_key/not-a-uuid", auth, "", []int{422}, jsonDetail},
		{"key id with braces", "DELETE", "/api/v1/api_key/{" + keyID + "}", auth, "", []int{422}, jsonDetail},
		{"key id too long", "DELETE", "/api/v1/api_key/" + keyID + "0", auth, "", []int{422}, jsonDetail},
		{"variable id not a UUID", "PATCH", "/api/v1/variables/xyz", auth, `{"value":"x"}`, []int{422}, jsonAny},
		{"variable id of 10 000 characters", "DELETE", "/api/v1/variables/" + long, auth, "", []int{422}, jsonAny},
		// Not a UUID: an endpoint name, unknown → 404, as in Langflow.
		{"flow id not a UUID", "POST", "/api/v1/run/not-a-uuid", auth, "{}", []int{404}, jsonDetail},
		{"flow id with a bad hex digit", "POST", "/api/v1/run/" + flowID[:35] + "g", auth, "{}", []int{404}, jsonDetail},
		{"body id differs from the path", "PATCH", "/api/v1/variables/" + varID, auth, `{"id":"` + keyID + `","value":"x"}`, []int{422}, jsonDetail},
		// Wrong types.
		{"name of the wrong type", "POST", "/api/v1/variables/", auth, `{"name":1,"value":"v"}`, []int{422}, jsonDetail},
		{"expires_at not a date", "POST", "/api/v1/api_key/", auth, `{"name":"x","expires_at":"tomorrow"}`, []int{422}, jsonDetail},
		{"expires_at in the past", "POST", "/api/v1/api_key/", auth, `{"name":"x","expires_at":"2000-01-01T00:00:00Z"}`, []int{400}, jsonDetail},
		{"trailing data", "POST", "/api/v1/flows/", auth, `{"name":"f"} {"name":"g"}`, []int{422}, jsonDetail},
		{"a JSON array", "POST", "/api/v1/api_key/", auth, `[]`, []int{422}, jsonDetail},
		{"JSON null", "POST", "/api/v1/api_key/", auth, `null`, []int{422}, jsonDetail},
		// Wrong methods.
		{"PUT keys", "PUT", "/api/v1/api_key/", auth, `{"name":"x"}`, []int{405}, jsonDetail},
		{"GET one key", "GET", "/api/v1/api_key/" + keyID, auth, "", []int{405}, jsonDetail},
		{"PUT variables", "PUT", "/api/v1/variables/", auth, `{"name":"P","value":"v"}`, []int{405}, jsonDetail},
		{"GET one variable", "GET", "/api/v1/variables/" + varID, auth, "", []int{405}, jsonDetail},
		{"DELETE flows", "DELETE", "/api/v1/flows/", auth, "", []int{404, 405}, jsonDetail},
		{"GET run", "GET", run, auth, "", []int{404, 405}, jsonDetail},
		{"DELETE health", "DELETE", "/health", nil, "", []int{405}, stdlib},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, hdr, body := rawRequest(t, s.url, tc.method, tc.target, tc.headers, tc.body)
			assert.Contains(t, tc.want, code, "body: %.300s", body)
			switch tc.shape {
			case jsonDetail:
				assert.Equal(t, "application/json", hdr.Get("Content-Type"), "%.300s", body)
				var d struct {
					Detail *string `json:"detail"`
				}
				if assert.NoError(t, json.Unmarshal([]byte(body), &d), "%.300s", body) && assert.NotNil(t, d.Detail, "%.300s", body) {
					assert.NotEmpty(t, *d.Detail)
					assert.Less(t, len(*d.Detail), 1000, "a clear, short message")
				}
			case jsonAny:
				assert.True(t, json.Valid([]byte(body)), "%.300s", body)
			}
			assert.NotContains(t, body, key, "the key is never echoed")
		})
	}

	// A duplicate header with the valid key first acts as that key, as
	// Langflow does (Starlette's headers.get returns the first value).
	code, _, _ = rawRequest(t, s.url, "GET", "/api/v1/api_key/", [][2]string{{"x-api-key", key}, {"x-api-key", wrongKey}}, "")
	assert.Equal(t, 200, code)

	assert.Equal(t, before, counts(t, s, key), "nothing stored")
	code, body = s.do("GET", "/api/v1/variables/", "", "x-api-key", key)
	require.Equal(t, 200, code)
	assert.Contains(t, body, `"value":"v"`, "EXISTING unchanged")
	logs := s.log()
	assert.NotContains(t, logs, "panic")
	assert.NotContains(t, logs, "goroutine ")
	assert.NotContains(t, logs, key)
	assert.NotContains(t, logs, strconv.Quote(long)[:100])
}
