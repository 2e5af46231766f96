package main

import (
	"errors"
	"net/http"

	"github.com/keyflow-dev/keyflow/internal/httpjson"
	"github.com/keyflow-dev/keyflow/middleware"
)

// A deactivated user's API keys stop working at once, as login tokens do:
// every request authenticated by a key reads the key's user (on a Langflow
// database, from Langflow's own table: accountByIDFresh).

// msgKeyUserInactive answers an API key whose user is inactive or gone
// (the newest Langflow's message).
const msgKeyUserInactive = "User account is inactive"

// activeKeyUser lets through a request authenticated by an API key
// (apikey.SourceDB, or LANGFLOW_API_KEY) or by auto-login (the UI session,
// LANGFLOW_SKIP_AUTH_AUTO_LOGIN) only while its user exists and is active
// (403 msgKeyUserInactive otherwise), as the newest Langflow does; the keys
// themselves are left as they are, so they work again if the user is
// reactivated. Requests without a principal, and those of login tokens
// (which tokenAuth checks), pass unchanged. A database failure is 503 (fail
// closed).
func (a *app) activeKeyUser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := middleware.FromContext(r.Context())
		if !ok || p.Source == sourceLogin {
			next.ServeHTTP(w, r)
			return
		}
		acct, err := a.accountByIDFresh(r.Context(), p.UserID)
		switch {
		case errors.Is(err, errUserNotFound) || err == nil && !acct.IsActive:
			httpjson.Detail(w, http.StatusForbidden, msgKeyUserInactive)
		case err != nil:
			a.storeUnavailable(w, r, "check key user", err)
		default:
			next.ServeHTTP(w, r)
		}
	})
}
