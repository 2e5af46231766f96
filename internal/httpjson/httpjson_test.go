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
		})
	}
}

func TestDetail(t *testing.T) {
	w := httptest.NewRecorder()
	Detail(w, http.StatusForbidden, "Invalid or missing API key")
	assert.Equal(t, 403, w.Code)
	assert.JSONEq(t, `{"detail":"Invalid or missing API key"}`, w.Body.String())
}
