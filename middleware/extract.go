package middleware

import (
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
)

// Extractor finds the API key in a request. It reports ok false when the
// request carries no (non-empty) key in the place it looks. Extractors must
// not modify the request and must be safe for concurrent use.
type Extractor func(r *http.Request) (key string, ok bool)

// APIKeyName is the name of Langflow's API key header and query parameter
// (API_KEY_NAME in Langflow's auth utils).
const APIKeyName = "x-api-key"

// FromQuery returns an Extractor that reads the query parameter name (matched
// exactly, after percent-decoding). When the parameter occurs more than once,
// the first non-empty value wins.
//
// A raw '?' inside the value ends the key: Langflow's documented example
// "/api/v1/run/FLOW_ID?x-api-key=API_KEY?stream=false" (a '?' typed for '&')
// yields the key "API_KEY", and the middleware keeps "stream=false" as a query
// parameter when it removes the key from the URL.
//
// It reads r.URL.RawQuery with a single-key scanner (no url.Values map, no
// body parsing) and allocates only when the value is percent-encoded.
func FromQuery(name string) Extractor {
	return func(r *http.Request) (string, bool) {
		if r.URL == nil {
			return "", false
		}
		return queryParam(r.URL.RawQuery, name)
	}
}

// FromHeader returns an Extractor that reads the first value of the header
// name (case-insensitive, as HTTP header names are). The name is canonicalised
// once here, so a lookup allocates nothing.
func FromHeader(name string) Extractor {
	canon := textproto.CanonicalMIMEHeaderKey(name)
	return func(r *http.Request) (string, bool) {
		v := r.Header[canon]
		if len(v) == 0 || v[0] == "" {
			return "", false
		}
		return v[0], true
	}
}

// FromBearer returns an Extractor that reads "Authorization: Bearer <key>"
// (scheme case-insensitive, surrounding spaces trimmed). It is opt-in: put it
// in Config.Extractors next to the defaults. Langflow itself reads a bearer
// token as a JWT, not as an API key.
func FromBearer() Extractor {
	return func(r *http.Request) (string, bool) {
		v := r.Header["Authorization"]
		if len(v) == 0 {
			return "", false
		}
		const scheme = "bearer "
		h := v[0]
		if len(h) <= len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
			return "", false
		}
		key := strings.Trim(h[len(scheme):], " \t")
		return key, key != ""
	}
}

// defaultExtractors is Langflow's order: query x-api-key, then header x-api-key
// (api_key_security: `query_param or header_param`).
func defaultExtractors() []Extractor {
	return []Extractor{FromQuery(APIKeyName), FromHeader(APIKeyName)}
}

// queryParam returns the first non-empty value of name in the raw query,
// cut at a raw '?' and percent-decoded.
func queryParam(raw, name string) (string, bool) {
	for raw != "" {
		var seg string
		seg, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(seg, "=")
		if !unescapedEqual(k, name) {
			continue
		}
		v, _, _ = strings.Cut(v, "?")
		if v == "" {
			continue
		}
		if strings.ContainsAny(v, "%+") {
			d, err := url.QueryUnescape(v)
			if err != nil || d == "" {
				continue
			}
			return d, true
		}
		return v, true
	}
	return "", false
}

// unescapedEqual reports whether the query-encoded raw decodes to s, without
// allocating. An invalid escape never matches.
func unescapedEqual(raw, s string) bool {
	switch {
	case len(raw) < len(s): // decoding never lengthens
		return false
	case len(raw) == len(s):
		// Only a '+' keeps the length (a %XX escape shortens it), so
		// without one this is a plain comparison.
		if raw == s {
			return true
		}
		if strings.IndexByte(raw, '+') < 0 {
			return false
		}
	}
	j := 0
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch c {
		case '%':
			if i+2 >= len(raw) {
				return false
			}
			hi, ok1 := unhex(raw[i+1])
			lo, ok2 := unhex(raw[i+2])
			if !ok1 || !ok2 {
				return false
			}
			c = hi<<4 | lo
			i += 2
		case '+':
			c = ' '
		}
		if j >= len(s) || s[j] != c {
			return false
		}
		j++
	}
	return j == len(s)
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// keyParam reports whether the query segment seg carries key as its value
// (cut at a raw '?'), and returns what follows that '?' (the parameters of
// the typo in Langflow's documented curl command), which the caller keeps.
func keyParam(seg, key string) (rest string, ok bool) {
	_, v, _ := strings.Cut(seg, "=")
	v, rest, _ = strings.Cut(v, "?")
	if !unescapedEqual(v, key) {
		return "", false
	}
	return rest, true
}

// stripKey removes from the raw query every parameter whose value is key,
// keeping what followed a typo'd '?' in that value as parameters. It
// allocates only when it removes something.
func stripKey(raw, key string) (string, bool) {
	full, start, ok := stripKeyAfter("", raw, key)
	if !ok {
		return raw, false
	}
	return full[start:], true
}

// stripKeyAfter is stripKey building prefix + "?" + the new query in one
// string (so a request's RequestURI and RawQuery share one allocation); the
// new query is full[start:]. When the new query is empty, full is prefix.
// prefix is cut at its first '?' (pass the request's RequestURI).
func stripKeyAfter(prefix, raw, key string) (full string, start int, changed bool) {
	if key == "" || raw == "" {
		return "", 0, false
	}
	// Without escapes a value decodes to itself, so the key can only be
	// there verbatim: one fast substring search settles the common case.
	if !strings.Contains(raw, key) && strings.IndexByte(raw, '%') < 0 && strings.IndexByte(raw, '+') < 0 {
		return "", 0, false
	}
	found := false
	for s := raw; s != "" && !found; {
		var seg string
		seg, s, _ = strings.Cut(s, "&")
		_, found = keyParam(seg, key)
	}
	if !found {
		return "", 0, false
	}
	prefix, _, _ = strings.Cut(prefix, "?")
	var b strings.Builder
	b.Grow(len(prefix) + 1 + len(raw))
	b.WriteString(prefix)
	b.WriteByte('?')
	start = b.Len()
	add := func(seg string) {
		if seg == "" {
			return
		}
		if b.Len() > start {
			b.WriteByte('&')
		}
		b.WriteString(seg)
	}
	for s := raw; s != ""; {
		var seg string
		seg, s, _ = strings.Cut(s, "&")
		if rest, ok := keyParam(seg, key); ok {
			add(rest)
			continue
		}
		add(seg)
	}
	if b.Len() == start {
		return prefix, len(prefix), true
	}
	return b.String(), start, true
}
