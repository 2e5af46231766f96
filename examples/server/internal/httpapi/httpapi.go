// Package httpapi holds the answers every API handler of the reference
// server shares: 503 for a failed database (fail closed, the cause only
// logged), 500 without its cause, and FastAPI's 422 validation shape.
package httpapi

import (
	"log/slog"
	"net/http"

	"github.com/keyflow-dev/keyflow/httpjson"
)

// MsgStoreUnavailable answers a request whose own database work failed.
// It is fixed: the cause (which may name hosts, tables, SQL) is only logged.
const MsgStoreUnavailable = "Database unavailable, try again later"

// StoreUnavailable answers a store failure with 503 and
// MsgStoreUnavailable (fail closed), and logs op and the cause. Store
// errors name tables, IDs and SQL states, never a key, a secret or a
// variable's value; the path is logged without its query string (where a
// key may be). A run of failures is logged a few lines at a time
// (storefailures.go); a request whose client went away is logged at Debug,
// as no failure of the database.
func StoreUnavailable(log *slog.Logger, w http.ResponseWriter, r *http.Request, op string, err error) {
	if r.Context().Err() != nil { // the client went away: no outage to report
		log.DebugContext(r.Context(), "request cancelled", "op", op, "method", r.Method, "path", r.URL.Path, "err", err)
	} else {
		logStoreFailure(r.Context(), log, op, "method", r.Method, "path", r.URL.Path, "err", err)
	}
	httpjson.Detail(w, http.StatusServiceUnavailable, MsgStoreUnavailable)
}

// InternalError logs the cause and answers 500 without it: for errors that
// are not store failures, such as a stored Credential that does not decrypt
// under the configured secrets.
func InternalError(log *slog.Logger, w http.ResponseWriter, r *http.Request, err error) {
	log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	httpjson.Detail(w, http.StatusInternalServerError, "Internal server error")
}

// ValidationError answers 422 in FastAPI's request-validation shape:
// {"detail": [{"type", "loc", "msg", "input": null}]}. The input is never
// echoed.
func ValidationError(w http.ResponseWriter, typ string, loc []string, msg string) {
	httpjson.Write(w, http.StatusUnprocessableEntity, map[string]any{
		"detail": []map[string]any{{"type": typ, "loc": loc, "msg": msg, "input": nil}},
	})
}
