package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"

	"github.com/keyflow-dev/keyflow/internal/httpjson"
	"github.com/keyflow-dev/keyflow/internal/names"
	"github.com/keyflow-dev/keyflow/middleware"
)

// The server's API-key scopes. A key created with scopes reaches only the
// routes of those scopes (403 `API key lacks the required scope "…"`
// elsewhere); a key without scopes reaches every route, as every Langflow key
// does. The UI session (auto-login) and LANGFLOW_API_KEY are unrestricted.
// The table is in README.md ("Scopes").
const (
	scopeRun            = "run"             // POST /api/v1/run/{flow}
	scopeFlows          = "flows"           // GET, POST /api/v1/flows/
	scopeVariablesRead  = "variables:read"  // GET /api/v1/variables/
	scopeVariablesWrite = "variables:write" // POST, PATCH, DELETE /api/v1/variables/…
	scopeKeys           = "keys"            // everything under /api/v1/api_key/
)

// serverScopes are the scopes a key can be created with.
var serverScopes = []string{scopeRun, scopeFlows, scopeVariablesRead, scopeVariablesWrite, scopeKeys}

// Answers of the key-creation checks.
const (
	msgUnknownScope   = "Unknown scope: this server's scopes are run, flows, variables:read, variables:write and keys"
	msgScopesNotOwned = "A key with scopes can create only keys whose scopes are among its own (and not a key without scopes)"
	msgInvalidKeyName = "API key name must be valid UTF-8 of at most 255 bytes without control or invisible characters"
)

// scope is the middleware that lets through a principal that may use name.
// Every authenticated route of the server is registered with one (or with
// variablesScope), so that a key with scopes reaches no route by default.
func scope(name string) func(http.Handler) http.Handler {
	return middleware.RequireScope(name)
}

// msgScopedKeyRefused answers a key with scopes on a route no scope names.
const msgScopedKeyRefused = "This route needs an API key without scopes"

// unscoped stands for a scope on routes that no scope names (such as user
// administration): only a principal without scopes passes (a key created
// without scopes, the UI session, LANGFLOW_API_KEY); a key with scopes gets
// 403 msgScopedKeyRefused. Like middleware.RequireScope, it lets OPTIONS
// through without a principal and refuses a request without one.
func unscoped(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := middleware.FromContext(r.Context())
		switch {
		case !ok && r.Method == http.MethodOptions:
			h.ServeHTTP(w, r)
		case !ok:
			httpjson.Detail(w, http.StatusForbidden, middleware.MsgInvalidKey)
		case len(p.Scopes) > 0:
			httpjson.Detail(w, http.StatusForbidden, msgScopedKeyRefused)
		default:
			h.ServeHTTP(w, r)
		}
	})
}

// variablesScope requires variables:read for GET and HEAD and
// variables:write for every other method.
func variablesScope(h http.Handler) http.Handler {
	read, write := scope(scopeVariablesRead)(h), scope(scopeVariablesWrite)(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			read.ServeHTTP(w, r)
			return
		}
		write.ServeHTTP(w, r)
	})
}

// checkKeyCreate guards POST /api/v1/api_key/ (mounted at that path, behind
// authentication): the new key's name must pass names.Check (no NUL, which
// PostgreSQL refuses, no invisible or bidirectional characters), its scopes
// must be scopes of this server, and a caller whose key has scopes may give
// the new key only scopes it has itself (a key without scopes is
// unrestricted, so a scoped caller cannot create one). Refusals are 400 and
// 403 with a fixed message; nothing is created. Bodies it cannot read as a
// JSON object pass on unchanged, for the handler to answer as usual.
//
// apikeyhttp and apikey.Manager are to check the subset rule themselves
// (issue 13, item 3); this check keeps the reference server safe until then
// and is harmless after.
func checkKeyCreate(next http.Handler) http.Handler {
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
			Name   *string  `json:"name"`
			Scopes []string `json:"scopes"`
		}
		if err != nil || json.Unmarshal(data, &body) != nil {
			next.ServeHTTP(w, r) // the handler's own answer (422)
			return
		}
		if body.Name != nil && names.Check(*body.Name) != nil {
			httpjson.Detail(w, http.StatusBadRequest, msgInvalidKeyName)
			return
		}
		for _, s := range body.Scopes {
			if !slices.Contains(serverScopes, s) {
				httpjson.Detail(w, http.StatusBadRequest, msgUnknownScope)
				return
			}
		}
		if p, ok := middleware.FromContext(r.Context()); ok && len(p.Scopes) > 0 {
			if len(body.Scopes) == 0 || !isSubset(body.Scopes, p.Scopes) {
				httpjson.Detail(w, http.StatusForbidden, msgScopesNotOwned)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func isSubset(sub, of []string) bool {
	for _, s := range sub {
		if !slices.Contains(of, s) {
			return false
		}
	}
	return true
}
