// Package httpguard holds the reference server's outermost HTTP layer: the
// Host check against DNS rebinding, X-Content-Type-Options: nosniff on every
// answer, and no redirect that would repeat an API key sent in the URL.
package httpguard

import (
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/keyflow-dev/keyflow/httpjson"
)

// Settings say which Host names the server answers.
type Settings struct {
	CheckHost    bool     // the Host check applies (auto-login on, or allowed hosts set)
	ListenHost   string   // the --host value
	AllowedHosts []string // from ParseAllowedHosts
	AutoLogin    bool     // for the warning about "*"
}

// Harden wraps the whole server (outermost first):
//
//   - every response carries X-Content-Type-Options: nosniff, so that no
//     browser reads a JSON answer (which may repeat what a client sent) as
//     HTML or script;
//   - the Host check (hosts.go) while it is enabled;
//   - no redirect for a URL that carries an API key (noKeyRedirects).
func Harden(h http.Handler, s Settings, log *slog.Logger) http.Handler {
	h = noKeyRedirects(h)
	if s.CheckHost {
		p := newHostPolicy(s.ListenHost, s.AllowedHosts)
		if p.any && s.AutoLogin {
			log.Warn("KEYFLOW_ALLOWED_HOSTS=* turns the host check off while LANGFLOW_AUTO_LOGIN is on: " +
				"a web page that rebinds its DNS name to this server can act as the superuser, unless a proxy in front checks the Host header")
		}
		h = hostCheck(p, h, log)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["X-Content-Type-Options"] = nosniff // Set would allocate the slice each time
		h.ServeHTTP(w, r)
	})
}

// nosniff is shared by every response's header map; net/http only reads it
// (a handler that Adds to this header gets a new slice, as cap is 1).
var nosniff = []string{"nosniff"}

// msgNoRedirectWithKey answers a request that would be redirected while its
// URL carries an API key.
const msgNoRedirectWithKey = "Not Found: this URL is not canonical (check its trailing slash and any //, /./ or /../); " +
	"no redirect is sent for a URL that carries an API key, so that the key is not repeated in the answer"

// noKeyRedirects keeps a key sent in the URL out of every answer: net/http
// redirects a path that is not canonical (/api/v1/api_key → …/api_key/,
// "//", "/./", "/../", a directory of /static/ without its slash) to the same
// URL with its query, in the Location header and in an HTML body. For a
// request whose query mentions x-api-key (in any case or escaping, or after
// a stray "?"), such a redirect is replaced by 404 {"detail":
// msgNoRedirectWithKey}, before anything is written. Other requests pass
// untouched, and so does every non-redirect answer (streaming included: the
// wrapper forwards Flush through http.ResponseController).
func noKeyRedirects(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !queryMentionsKey(r.URL.RawQuery) {
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(&redirectGuard{ResponseWriter: w}, r)
	})
}

// queryMentionsKey reports whether a raw query may hold an API key: it
// contains "x-api-key" once unescaped, in any case.
func queryMentionsKey(rawQuery string) bool {
	if rawQuery == "" {
		return false
	}
	q := rawQuery
	if u, err := url.QueryUnescape(rawQuery); err == nil {
		q = u
	}
	return strings.Contains(strings.ToLower(q), "x-api-key") || strings.Contains(strings.ToLower(rawQuery), "x-api-key")
}

// redirectGuard turns a redirect (a 3xx answer other than 304 Not Modified)
// into msgNoRedirectWithKey and drops the body written after it (net/http's
// redirect page repeats the URL).
type redirectGuard struct {
	http.ResponseWriter
	state int // 0: nothing written; 1: passing through; 2: redirect replaced
}

func (g *redirectGuard) WriteHeader(code int) {
	if g.state != 0 {
		if g.state == 1 {
			g.ResponseWriter.WriteHeader(code)
		}
		return
	}
	if code >= 300 && code < 400 && code != http.StatusNotModified {
		g.state = 2
		h := g.Header()
		h.Del("Location")
		h.Del("Content-Length")
		httpjson.Detail(g.ResponseWriter, http.StatusNotFound, msgNoRedirectWithKey)
		return
	}
	g.state = 1
	g.ResponseWriter.WriteHeader(code)
}

func (g *redirectGuard) Write(p []byte) (int, error) {
	if g.state == 0 {
		g.WriteHeader(http.StatusOK)
	}
	if g.state == 2 {
		return len(p), nil
	}
	return g.ResponseWriter.Write(p)
}

// Flush lets streamed answers through (http.Flusher).
func (g *redirectGuard) Flush() {
	if g.state == 0 {
		g.WriteHeader(http.StatusOK)
	}
	if g.state == 1 {
		_ = http.NewResponseController(g.ResponseWriter).Flush()
	}
}

// Unwrap gives http.ResponseController the underlying writer.
func (g *redirectGuard) Unwrap() http.ResponseWriter { return g.ResponseWriter }
