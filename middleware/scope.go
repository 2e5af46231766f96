package middleware

import (
	"net/http"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/httpjson"
)

// msgMissingScope prefixes the detail of RequireScope's 403; the scope's name
// follows in quotes.
const msgMissingScope = "API key lacks the required scope"

// RequireScope returns middleware that lets a request through only if its
// principal may use scope (Principal.HasScope: a key with no scopes is
// unrestricted, and so are the env key and auto-login). Put it behind New.
//
// A principal without the scope gets 403 {"detail": "API key lacks the
// required scope \"<scope>\""}: the caller is authenticated but not allowed,
// which is 403 in Langflow too (InsufficientPermissionsError), and the scope's
// name helps the key's owner without revealing anything secret. A request
// with no principal at all (a Skip'd route, or Optional mode without a valid
// key) gets 403 msgInvalidKey, as if the route were not optional; CORS
// preflights (OPTIONS with Access-Control-Request-Method) without a principal
// pass, matching New's default OptionsPreflight.
func RequireScope(scope string) func(http.Handler) http.Handler {
	detail := msgMissingScope + " \"" + scope + "\""
	return func(next http.Handler) http.Handler {
		if next == nil {
			next = http.NotFoundHandler()
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, ok := r.Context().Value(principalKey).(*apikey.Principal)
			switch {
			case !ok && isPreflight(r):
				next.ServeHTTP(w, r)
			case !ok:
				httpjson.Detail(w, http.StatusForbidden, msgInvalidKey)
			case !p.HasScope(scope):
				httpjson.Detail(w, http.StatusForbidden, detail)
			default:
				next.ServeHTTP(w, r)
			}
		})
	}
}
