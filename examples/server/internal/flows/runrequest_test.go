package flows

import (
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/httpjson"
)

// checkSimpleDecode asserts that whatever decodeSimpleRunRequest accepts,
// httpjson accepts and decodes alike; it reports whether it was accepted.
func checkSimpleDecode(t testing.TB, body string) bool {
	var fast runRequest
	if !decodeSimpleRunRequest([]byte(body), &fast) {
		assert.Equal(t, runRequest{}, fast, "a refused body leaves the request untouched")
		return false
	}
	var slow runRequest
	rec := httptest.NewRecorder()
	require.True(t, httpjson.DecodeBytes(rec, []byte(body), &slow), "httpjson refused %q: %s", body, rec.Body)
	assert.Equal(t, slow, fast, "body %q", body)
	return true
}

func TestDecodeSimpleRunRequest(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		body   string
		simple bool
	}{
		{`{"input_value": "Hello, floor"}`, true},
		{` {} `, true},
		{"{\n\t\"input_value\":\"é 日本\",\"input_type\":\"chat\",\"output_type\":\"text\",\r\n\"output_component\":\"\",\"session_id\":\"s1\"}\n", true},
		{`{"input_value":"a","input_value":"b"}`, true},
		{`{"INPUT_VALUE":"a"}`, false},               // encoding/json matches keys case-insensitively
		{`{"input_value":"a\nb"}`, false},            // an escape
		{`{"input_value":"a` + "\x01" + `"}`, false}, // a control character (refused by encoding/json)
		{`{"input_value":null}`, false},
		{`{"input_value":1}`, false},
		{`{"tweaks":{}}`, false},
		{`{"inputs":{"text":"x"}}`, false},
		{`{"input_value":"a",}`, false},
		{`{"input_value":"a"}x`, false},
		{`{"input_value":"a"} {}`, false},
		{`{} x`, false},
		{`{"input_value" "a"}`, false},
		{`{"input_value":"a"`, false},
		{`{"input_value":"` + "\xff" + `"}`, false},
		{`[]`, false},
		{``, false},
	} {
		assert.Equal(t, tc.simple, checkSimpleDecode(t, tc.body), "body %q", tc.body)
	}
}

func FuzzDecodeSimpleRunRequest(f *testing.F) {
	f.Add(`{"input_value": "Hello, floor"}`)
	f.Add(`{"session_id":"s","output_component":"c","input_type":"any"}`)
	f.Add(`{"input_value":"a\u00e9"}`)
	f.Fuzz(func(t *testing.T, body string) {
		checkSimpleDecode(t, body)
	})
}
