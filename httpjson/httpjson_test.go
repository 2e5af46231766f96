package httpjson

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestDecode(t *testing.T) {
	type body struct {
		Name string `json:"name"`
	}
	tests := []struct {
		name   string
		in     string
		ok     bool
		status int
		detail string
	}{
		{"valid", `{"name":"x"}`, true, 0, ""},
		{"empty", ``, false, 422, "unexpected end of input"},
		{"truncated", `{"name":`, false, 422, "unexpected end of input"},
		{"syntax", `{name}`, false, 422, "Malformed JSON body"},
		{"type", `{"name": 3}`, false, 422, "Invalid type for field 'name'"},
		{"trailing", `{"name":"x"} {}`, false, 422, "unexpected data"},
		{"trailing bracket", `{"name":"x"}]`, false, 422, "Malformed JSON body"},
		{"trailing brace", `{"name":"x"}}`, false, 422, "Malformed JSON body"},
		{"trailing space", "{\"name\":\"x\"} \n", true, 0, ""},
		{"invalid utf-8", "{\"name\":\"a\xff\"}", false, 422, "not valid UTF-8"},
		{"too big", `{"name":"` + strings.Repeat("a", MaxBody) + `"}`, false, 413, "Request body too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tt.in))
			var b body
			assert.Equal(t, tt.ok, Decode(w, r, &b))
			if !tt.ok {
				assert.Equal(t, tt.status, w.Code)
				assert.Contains(t, w.Body.String(), tt.detail)
				assert.Equal(t, "application/json", w.Header().Get("Content-Type"))
			}
			if tt.status == http.StatusRequestEntityTooLarge {
				return // DecodeBytes' caller bounds the body
			}
			// DecodeBytes: the same outcome for the same bytes.
			w2 := httptest.NewRecorder()
			var b2 body
			assert.Equal(t, tt.ok, DecodeBytes(w2, []byte(tt.in), &b2), "DecodeBytes")
			assert.Equal(t, b, b2)
			assert.Equal(t, w.Code, w2.Code)
			assert.Equal(t, w.Body.String(), w2.Body.String())
		})
	}
}

func TestDetail(t *testing.T) {
	w := httptest.NewRecorder()
	Detail(w, http.StatusForbidden, "Invalid or missing API key")
	assert.Equal(t, 403, w.Code)
	assert.JSONEq(t, `{"detail":"Invalid or missing API key"}`, w.Body.String())
}

// TestDecodeRefusesLoneSurrogates: issue 13 item 8. encoding/json decodes an
// unpaired surrogate escape to U+FFFD, so the stored text would differ from
// what the client sent: 422 instead. Pairs and escaped backslashes pass.
func TestDecodeRefusesLoneSurrogates(t *testing.T) {
	t.Parallel()
	for body, ok := range map[string]bool{
		`{"n":"a\ud800"}`:        false,
		`{"n":"a\uD800b"}`:       false,
		`{"n":"\udc00"}`:         false,
		`{"n":"\ud800\u0041"}`:   false,
		`{"n":"\ud800\ud800"}`:   false,
		`{"n":"x\ud83d"}`:        false,
		`{"n":"\ud83d\udd11"}`:   true,
		`{"n":"\\ud800"}`:        true,
		`{"n":"\\\ud83d\udd11"}`: true,
		`{"n":"\u00e9\n\"\\"}`:   true,
		`{"n":"\\\\\ud800"}`:     false,
		`{"n":"plain"}`:          true,
	} {
		r := httptest.NewRequest("POST", "/", strings.NewReader(body))
		w := httptest.NewRecorder()
		var v map[string]string
		got := Decode(w, r, &v)
		assert.Equal(t, ok, got, body)
		if !ok {
			assert.Equal(t, 422, w.Code, body)
			assert.Contains(t, w.Body.String(), "unpaired UTF-16 surrogate", body)
		}
	}
}
