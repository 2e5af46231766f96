// Package scopes is the reference server's API-key scopes and the
// middleware that enforces them per route. A key created with scopes
// reaches only the routes of those scopes (403 `API key lacks the required
// scope "…"` elsewhere); a key without scopes reaches every route, as every
// Langflow key does. Login tokens, the UI session (auto-login) and
// LANGFLOW_API_KEY are unrestricted. The table is in README.md ("Scopes").
package scopes

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"

	"github.com/keyflow-dev/keyflow/httpjson"
	"github.com/keyflow-dev/keyflow/middleware"
)

// The server's scopes.
const (
	Run            = "run"             // POST /api/v1/run/{flow}
	Flows          = "flows"           // GET, POST /api/v1/flows/
	VariablesRead  = "variables:read"  // GET /api/v1/variables/
	VariablesWrite = "variables:write" // POST, PATCH, DELETE /api/v1/variables/…
	Keys           = "keys"            // everything under /api/v1/api_key/
)

// serverScopes are the scopes a key can be created with.
var serverScopes = []string{Run, Flows, VariablesRead, VariablesWrite, Keys}

// msgUnknownScope answers a new key with a scope this server does not have.
const msgUnknownScope = "Unknown scope: this server's scopes are run, flows, variables:read, variables:write and keys"

// Require is the middleware that lets through a principal that may use name.
// Every authenticated route of the server is registered with one (or with
// Variables), so that a key with scopes reaches no route by default.
func Require(name string) func(http.Handler) http.Handler {
	return middleware.RequireScope(name)
}

// msgInvalidOrMissingKey is Langflow's answer to a request without a valid
// key, as the middleware gives it.
const msgInvalidOrMissingKey = "Invalid or missing API key"

// msgScopedKeyRefused answers a key with scopes on a route no scope names.
const msgScopedKeyRefused = "This route needs an API key without scopes"

// Unscoped stands for a scope on routes that no scope names (such as user
// administration): only a principal without scopes passes (a key created
// without scopes, the UI session, LANGFLOW_API_KEY); a key with scopes gets
// 403 msgScopedKeyRefused. Like middleware.RequireScope, it lets OPTIONS
// through without a principal and refuses a request without one.
func Unscoped(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := middleware.FromContext(r.Context())
		switch {
		case !ok && r.Method == http.MethodOptions:
			h.ServeHTTP(w, r)
		case !ok:
			httpjson.Detail(w, http.StatusForbidden, msgInvalidOrMissingKey)
		case len(p.Scopes) > 0:
			httpjson.Detail(w, http.StatusForbidden, msgScopedKeyRefused)
		default:
			h.ServeHTTP(w, r)
		}
	})
}

// Variables requires variables:read for GET and HEAD and
// variables:write for every other method.
func Variables(h http.Handler) http.Handler {
	read, write := Require(VariablesRead)(h), Require(VariablesWrite)(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			read.ServeHTTP(w, r)
			return
		}
		write.ServeHTTP(w, r)
	})
}

// CheckKeyCreate guards POST /api/v1/api_key/ (mounted at that path, behind
// authentication): the new key's scopes must be scopes of this server (else
// 400 msgUnknownScope, nothing created), so that nobody makes a key that
// reaches nothing by mistyping a scope. apikeyhttp checks the rest: the
// name (package names), and that a caller whose key has scopes gives the
// new key only scopes it has itself (403). Bodies it cannot read as a JSON
// object pass on unchanged, for the handler to answer as usual.
func CheckKeyCreate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/api/v1/api_key/" || r.Body == nil {
			next.ServeHTTP(w, r)
			return
		}
		data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, httpjson.MaxBody))
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			httpjson.Detail(w, http.StatusRequestEntityTooLarge, "Request body too large")
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(data))
		var body struct {
			Scopes []string `json:"scopes"`
		}
		if err != nil || json.Unmarshal(data, &body) != nil {
			next.ServeHTTP(w, r) // the handler's own answer (422)
			return
		}
		for _, s := range body.Scopes {
			if !slices.Contains(serverScopes, s) {
				httpjson.Detail(w, http.StatusBadRequest, msgUnknownScope)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}
