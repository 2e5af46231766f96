package middleware

import (
	"errors"
	"net/http"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/observe"
)

// reportFailure tells Config.Hooks that the request r failed to
// authenticate with err.
func (a *auth) reportFailure(r *http.Request, err error) {
	if a.hooks != nil {
		a.hooks.Authenticated(r.Context(), observe.Authentication{Outcome: OutcomeOf(err)})
	}
}

// OutcomeOf maps an error of the middleware (what Config.ErrorHandler and
// Config.OnFailure are given; nil included) to its observe.Outcome:
// ErrNoKey (and ErrAutoLoginNoKey) is Missing, the Verifier's errors as
// apikey.OutcomeOf maps them.
func OutcomeOf(err error) observe.Outcome {
	if err != nil && errors.Is(err, ErrNoKey) {
		return observe.Missing
	}
	return apikey.OutcomeOf(err)
}
