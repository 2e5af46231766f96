package middleware

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestUnescapedEqual(t *testing.T) {
	tests := []struct {
		raw, s string
		want   bool
	}{
		{"x-api-key", "x-api-key", true},
		{"x%2Dapi%2dkey", "x-api-key", true},
		{"a+b", "a b", true},
		{"a%20b", "a b", true},
		{"a%2", "a", false},
		{"a%zz", "a", false},
		{"%", "", false},
		{"", "", true},
		{"abc", "ab", false},
		{"ab", "abc", false},
		{"%41", "A", true},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, unescapedEqual(tt.raw, tt.s), "%q vs %q", tt.raw, tt.s)
	}
}

// TestQueryParam: Langflow's query source (the last value of a repeated
// parameter; docs/langflow-compatibility.md#key-sources) plus the '?' typo of
// Langflow's documented curl command.
func TestQueryParam(t *testing.T) {
	tests := []struct {
		raw, key string
		ok       bool
	}{
		{"", "", false},
		{"x-api-key=k", "k", true},
		{"x-api-key=k?stream=false", "k", true},
		{"stream=false&x-api-key=k", "k", true},
		{"x-api-key=&x-api-key=k2", "k2", true},
		{"x-api-key=k1&x-api-key=k2", "k2", true}, // Starlette: the last value
		{"x-api-key=k1&x-api-key=", "", false},    // an empty last value: no query key
		{"x-api-key=k1&x-api-key=?a=1", "", false},
		{"x-api-key=?stream=false", "", false},
		{"x-api-key", "", false},
		{"x-api-key=a%2Bb+c", "a+b c", true},
		{"x-api-key=%zz&x-api-key=ok", "ok", true},
		{"x-api-key=ok&x-api-key=%zz", "%zz", true}, // left as is, like Python's unquote
		{"X-API-KEY=k", "", false},
		{"x-api-key=a%3Fb", "a?b", true},
	}
	for _, tt := range tests {
		k, ok := queryParam(tt.raw, APIKeyName)
		assert.Equal(t, tt.ok, ok, tt.raw)
		assert.Equal(t, tt.key, k, tt.raw)
	}
}

func TestStripKey(t *testing.T) {
	tests := []struct {
		raw, key, want string
		changed        bool
	}{
		{"", "k", "", false},
		{"a=1", "k", "a=1", false},
		{"a=1", "", "a=1", false},
		{"x-api-key=k", "k", "", true},
		{"x-api-key=k&a=1", "k", "a=1", true},
		{"a=1&x-api-key=k", "k", "a=1", true},
		{"x-api-key=k?stream=false", "k", "stream=false", true},
		{"x-api-key=k?stream=false&a=1", "k", "stream=false&a=1", true},
		{"x-api-key=k?", "k", "", true},
		{"a=1&&x-api-key=k", "k", "a=1", true},
		{"x-api-key=kk&a=k", "k", "", true}, // every x-api-key goes, whatever its value
		{"a=%6B", "k", "", true},
		{"a=%6", "k", "a=%6", false},
		// Issue 13 item 6: keys after a raw '?', and every repeated key.
		{"x-api-key=k&stream=false?x-api-key=k", "k", "stream=false", true},
		{"x-api-key=k&x-api-key=k2", "k", "", true},
		{"x-api-key=k2&x-api-key=k", "k", "", true},
		{"q=what?x-api-key=k2&b=1", "k", "q=what&b=1", true},
		{"a=1?b=2&x-api-key=k", "k", "a=1?b=2", true},
		{"a=1?b=2", "k", "a=1?b=2", false},
		{"x%2Dapi-key=zz&a=1", "k", "a=1", true},
		{"x-api-key=", "", "", true},
		{"x-api-key-other=1", "", "x-api-key-other=1", false},
	}
	for _, tt := range tests {
		got, changed := stripKey(tt.raw, tt.key)
		assert.Equal(t, tt.changed, changed, tt.raw)
		assert.Equal(t, tt.want, got, tt.raw)
	}
}

func TestStripKeyAfter(t *testing.T) {
	tests := []struct {
		prefix, raw, full, query string
		changed                  bool
	}{
		{"/p", "x-api-key=k", "/p", "", true},
		{"/p", "x-api-key=k&a=1", "/p?a=1", "a=1", true},
		{"http://h/p", "a=1&x-api-key=k?b=2", "http://h/p?a=1&b=2", "a=1&b=2", true},
		{"", "x-api-key=k&a=1", "?a=1", "a=1", true},
		{"", "x-api-key=k", "", "", true},
		{"/p", "a=1", "", "", false},
		{"/p?x-api-key=k&a=1", "x-api-key=k&a=1", "/p?a=1", "a=1", true},
		{"/p", "a=%6B", "/p", "", true},
		{"/p", "a=k+", "", "", false},
	}
	for _, tt := range tests {
		full, start, changed := stripKeyAfter(tt.prefix, tt.raw, "k")
		assert.Equal(t, tt.changed, changed, tt.raw)
		assert.Equal(t, tt.full, full, tt.raw)
		if changed {
			assert.Equal(t, tt.query, full[start:], tt.raw)
		}
	}
}

func TestFromHeaderAndBearer(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	_, ok := FromHeader("x-api-key")(r)
	assert.False(t, ok)
	r.Header["X-Api-Key"] = []string{"", "second"}
	_, ok = FromHeader("x-api-key")(r)
	assert.False(t, ok, "only the first value counts, as in Starlette")
	r.Header.Set("X-API-KEY", "k")
	k, ok := FromHeader("X-Api-Key")(r)
	assert.True(t, ok)
	assert.Equal(t, "k", k)

	for h, want := range map[string]string{"Bearer k": "k", "BEARER   k ": "k", "Bearer ": "", "Bearer": "", "Basic k": "", "Bearerk": ""} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", h)
		k, ok := FromBearer()(r)
		assert.Equal(t, want != "", ok, h)
		assert.Equal(t, want, k, h)
	}
	_, ok = FromQuery("x")(&http.Request{})
	assert.False(t, ok, "nil URL")
}
