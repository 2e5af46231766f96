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
// the last occurrence counts, as in Langflow (Starlette keeps the last value of
// a repeated query parameter); an empty last value means no key in the query.
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

// queryParam returns the last value of name in the raw query, cut at a raw
// '?' and percent-decoded; ok is false when there is none or it is empty. A
// value whose escapes are invalid is returned as it is (it then fails the
// key's format check), as Python's unquote leaves such escapes alone.
func queryParam(raw, name string) (string, bool) {
	var last string
	found := false
	for raw != "" {
		var seg string
		seg, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(seg, "=")
		if !unescapedEqual(k, name) {
			continue
		}
		last, _, _ = strings.Cut(v, "?")
		found = true
	}
	if !found || last == "" {
		return "", false
	}
	if strings.ContainsAny(last, "%+") {
		if d, err := url.QueryUnescape(last); err == nil {
			last = d
		}
	}
	return last, last != ""
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

// isKeyParam reports whether the query parameter p (name=value, with no raw
// '&' or '?') must be hidden: its name is x-api-key, or its value is key.
func isKeyParam(p, key string) bool {
	k, v, _ := strings.Cut(p, "=")
	return unescapedEqual(k, APIKeyName) || key != "" && unescapedEqual(v, key)
}

// mayHoldKey is the cheap test before stripping: without escapes a name or a
// value decodes to itself, so the key and x-api-key can only be there
// verbatim.
func mayHoldKey(raw, key string) bool {
	return strings.Contains(raw, APIKeyName) || key != "" && strings.Contains(raw, key) ||
		strings.IndexByte(raw, '%') >= 0 || key != "" && strings.IndexByte(raw, '+') >= 0
}

// stripKey removes from the raw query every x-api-key parameter and every
// parameter whose value is key, including those written after a raw '?'
// (the '?' typed for '&' in Langflow's documented curl command, e.g. "x-api-key=K?stream=false" or
// "stream=false?x-api-key=K"). The other parts of a segment that held one are
// kept as parameters of their own. It allocates only when it removes
// something.
func stripKey(raw, key string) (string, bool) {
	full, start, ok := stripKeyAfter("", raw, key)
	if !ok {
		return raw, false
	}
	return full[start:], true
}

// segmentHoldsKey reports whether one of seg's '?'-separated parts is a key
// parameter.
func segmentHoldsKey(seg, key string) bool {
	for seg != "" {
		var p string
		p, seg, _ = strings.Cut(seg, "?")
		if p != "" && isKeyParam(p, key) {
			return true
		}
	}
	return false
}

// stripKeyAfter is stripKey building prefix + "?" + the new query in one
// string (so a request's RequestURI and RawQuery share one allocation); the
// new query is full[start:]. When the new query is empty, full is prefix.
// prefix is cut at its first '?' (pass the request's RequestURI).
func stripKeyAfter(prefix, raw, key string) (full string, start int, changed bool) {
	if raw == "" || !mayHoldKey(raw, key) {
		return "", 0, false
	}
	found := false
	for s := raw; s != "" && !found; {
		var seg string
		seg, s, _ = strings.Cut(s, "&")
		found = segmentHoldsKey(seg, key)
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
	add := func(p string) {
		if p == "" {
			return
		}
		if b.Len() > start {
			b.WriteByte('&')
		}
		b.WriteString(p)
	}
	for s := raw; s != ""; {
		var seg string
		seg, s, _ = strings.Cut(s, "&")
		if !segmentHoldsKey(seg, key) {
			add(seg)
			continue
		}
		for seg != "" {
			var p string
			p, seg, _ = strings.Cut(seg, "?")
			if !isKeyParam(p, key) {
				add(p)
			}
		}
	}
	if b.Len() == start {
		return prefix, len(prefix), true
	}
	return b.String(), start, true
}
