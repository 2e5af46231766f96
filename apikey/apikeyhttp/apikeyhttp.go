// Package apikeyhttp serves Langflow's API-key management endpoints
// (/api/v1/api_key/, see docs/langflow-compatibility.md#api-key-endpoints) over an *apikey.Manager, as an
// http.Handler a host mounts behind its own authentication:
//
//	auth, _ := middleware.New(middleware.Config{Verifier: keys})
//	h, err := apikeyhttp.New(apikeyhttp.Config{Manager: keys, User: middleware.FromRequest})
//	mux.Handle("/api/v1/api_key/", auth(http.StripPrefix("/api/v1/api_key", h)))
//
// Relative to where it is mounted it serves:
//
//	GET    /      200 {"total_count": n, "user_id": "…", "api_keys": [ApiKeyRead…]} (masked keys)
//	POST   /      {"name": "…"} → 200 UnmaskedApiKeyRead, the only time the key is shown
//	DELETE /{id}  200 {"detail": "API Key deleted"}; 400 {"detail": "API Key not found"} for a
//	              missing or another user's key; 422 for an id that is not a UUID
//	PATCH  /{id}  {"rate_limits": […], "quota": n, "refill": "…"} → 200 ApiKeyRead with the new
//	              limits (keyflow's); 404 {"detail": "API Key not found"}; 422 as DELETE
//
// Usage limits (keyflow's, extra fields that Langflow's clients never send
// or read): POST and PATCH take "rate_limits" (a list of "N/WINDOW" such as
// "100/1m" or "10000/24h", see apikey.ParseRateLimit), "quota" (uses
// granted) and "refill" ("N/PERIOD", PERIOD hour, day, week or month, see
// apikey.ParseRefill). In a PATCH an absent field is kept and null (or an
// empty list) removes it; "quota" is a new grant (the remaining uses are set
// to it), while a PATCH without it keeps the uses left. A limited key lists
// with "rate_limits", "quota", "quota_remaining" and "refill"; an unlimited
// one without them. A caller authenticated by a key that has limits may not
// create keys or change limits (403 {"detail": MsgLimitedCaller}): either
// would let it escape its own.
//
// Field names and codes are Langflow's. Beyond the baseline, POST also takes
// newer Langflow's "expires_at" (ISO 8601; naive means UTC) and keyflow's
// "scopes" (a list of strings; none means unrestricted), and both responses
// carry "expires_at" (null: never) and, for a scoped key, "scopes".
// Timestamps are UTC with second precision ("2026-01-02T15:04:05+00:00"), as
// newer Langflow writes them. A key created without a name lists with name
// null. Arguments the Manager refuses (an expiry in the past, a malformed
// scope, a name with control, invisible or bidi characters: see package
// names) answer 400 with its message, as Langflow answers 400 str(e).
//
// A caller whose Principal has scopes (a scoped API key) may only create keys
// whose scopes are a non-empty subset of its own: anything else answers 403
// {"detail": MsgScopeNotAllowed} (apikey.ErrScopeNotAllowed), so a key limited
// to "keys" cannot mint an unrestricted key. A caller without scopes is
// unrestricted, as Langflow's keys are.
//
// Every answer is JSON. No current user → 401 {"detail": "Not authenticated"};
// a body over 1 MiB → 413; malformed JSON (or a JSON string with an unpaired
// surrogate escape) → 422; a store failure → 503 with no internals (the cause
// is logged to Config.Logger under the key "err"); a wrong method → 405 with
// an Allow header; any other path → 404. Keys never reach a log.
package apikeyhttp

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/faillog"
	"github.com/keyflow-dev/keyflow/httpjson"
	"github.com/keyflow-dev/keyflow/internal/ids"
	"github.com/keyflow-dev/keyflow/middleware"
)

// Messages answered by the handler; the first three are Langflow's.
const (
	MsgDeleted          = "API Key deleted"
	MsgNotFound         = "API Key not found"
	MsgNotAuthenticated = "Not authenticated"
	MsgInvalidID        = "API key id must be a UUID"
	MsgUnavailable      = "API key store unavailable"
	// MsgScopeNotAllowed answers (403) a scoped caller asking for a key
	// with scopes it does not have, or with none (unrestricted).
	MsgScopeNotAllowed = "An API key with scopes can only create keys with a subset of its scopes"
	// MsgLimitedCaller answers (403) a caller authenticated by a key with
	// usage limits that asks to create a key or to change limits: either
	// would let it escape its own limits.
	MsgLimitedCaller = "An API key with usage limits cannot create keys or change limits"
)

// Config configures New. Manager and User are required.
type Config struct {
	// Manager creates, lists and deletes the keys (required).
	Manager *apikey.Manager
	// User tells the handler who the caller is (required):
	// middleware.FromRequest behind keyflow's middleware. No principal (or
	// an empty UserID) answers 401. The principal's Scopes limit the scopes
	// of the keys it creates.
	User middleware.UserFunc
	// Logger receives store failures (answered 503), errors under the key
	// "err"; never a key. nil: slog.Default() at the time of logging.
	// A run of failures (a database outage) is logged as one Error line at
	// once, then one summary every 10 s, not one line per request.
	Logger *slog.Logger
}

// New returns the management handler for cfg.Manager's keys, acting for the
// caller cfg.User reports. It returns an error when Manager (or User) is
// nil. The handler is safe for concurrent use.
func New(cfg Config) (http.Handler, error) {
	if cfg.Manager == nil {
		return nil, errors.New("apikeyhttp: Config.Manager is required")
	}
	if cfg.User == nil {
		return nil, errors.New("apikeyhttp: Config.User is required")
	}
	return &handler{m: cfg.Manager, user: cfg.User, logger: cfg.Logger,
		failures: faillog.New("apikeyhttp: key store unavailable; answering 503", 0)}, nil
}

type handler struct {
	m        *apikey.Manager
	user     middleware.UserFunc
	logger   *slog.Logger
	failures *faillog.Log // the 503s' Error lines, a few per outage
}

func (h *handler) log() *slog.Logger {
	if h.logger != nil {
		return h.logger
	}
	return slog.Default()
}

// unmaskedAPIKeyRead is Langflow's UnmaskedApiKeyRead (POST), with the newer
// expires_at and keyflow's scopes (omitted when unrestricted): no
// created_at, and the plaintext key.
type unmaskedAPIKeyRead struct {
	Name       *string  `json:"name"`
	LastUsedAt *isoTime `json:"last_used_at"`
	TotalUses  int64    `json:"total_uses"`
	IsActive   bool     `json:"is_active"`
	ExpiresAt  *isoTime `json:"expires_at"`
	ID         string   `json:"id"`
	APIKey     string   `json:"api_key"`
	UserID     string   `json:"user_id"`
	Scopes     []string `json:"scopes,omitempty"`
	limitsRead
}

// apiKeyRead is Langflow's ApiKeyRead (GET list): the same fields, with the
// key masked, and created_at.
type apiKeyRead struct {
	unmaskedAPIKeyRead
	CreatedAt isoTime `json:"created_at"`
}

// keyRead renders rec with key as its api_key: the plaintext (POST) or the
// mask (GET).
func keyRead(rec apikey.Record, key string) unmaskedAPIKeyRead {
	return unmaskedAPIKeyRead{
		Name:       namePtr(rec.Name),
		LastUsedAt: timePtr(rec.LastUsedAt),
		TotalUses:  rec.TotalUses,
		IsActive:   rec.Active,
		ExpiresAt:  timePtr(rec.ExpiresAt),
		ID:         rec.ID,
		APIKey:     key,
		UserID:     rec.UserID,
		Scopes:     rec.Scopes, // omitempty: none for an unrestricted key
		limitsRead: readLimits(rec.Limits),
	}
}

type listResponse struct {
	TotalCount int          `json:"total_count"`
	UserID     string       `json:"user_id"`
	APIKeys    []apiKeyRead `json:"api_keys"`
}

// createRequest is the part of Langflow's ApiKeyCreate that is used; other
// fields (api_key, user_id, created_at, …) are ignored, as in Langflow.
type createRequest struct {
	Name      *string  `json:"name"`
	ExpiresAt *isoTime `json:"expires_at"`
	Scopes    []string `json:"scopes"`
	limitsRequest
}

// isoTime is a UTC timestamp in newer Langflow's form, second precision with
// a +00:00 offset. On input it also accepts RFC 3339 with fractions and
// Python's naive ISO form (taken as UTC).
type isoTime time.Time

const isoLayout = "2006-01-02T15:04:05+00:00"

func (t isoTime) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Time(t).UTC().Format(isoLayout) + `"`), nil
}

func (t *isoTime) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New("expires_at must be an ISO 8601 date-time string")
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999"} {
		if v, err := time.Parse(layout, s); err == nil {
			*t = isoTime(v.UTC())
			return nil
		}
	}
	return errors.New("expires_at must be an ISO 8601 date-time string")
}

func timePtr(t *time.Time) *isoTime {
	if t == nil {
		return nil
	}
	v := isoTime(*t)
	return &v
}

// namePtr renders an empty name as null, as Langflow shows a key created
// without one.
func namePtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if path == "" {
		path = "/"
	}
	switch {
	case path == "/":
		if r.Method != http.MethodGet && r.Method != http.MethodPost {
			methodNotAllowed(w, "GET, POST")
			return
		}
	case strings.Count(path, "/") == 1:
		if r.Method != http.MethodDelete && r.Method != http.MethodPatch {
			methodNotAllowed(w, "DELETE, PATCH")
			return
		}
	default:
		httpjson.Detail(w, http.StatusNotFound, "Not Found")
		return
	}
	p, ok := h.user(r)
	if !ok || p.UserID == "" {
		httpjson.Detail(w, http.StatusUnauthorized, MsgNotAuthenticated)
		return
	}
	switch {
	case path != "/" && r.Method == http.MethodPatch:
		h.patch(w, r, p, path[1:])
	case path != "/":
		h.delete(w, r, p.UserID, path[1:])
	case r.Method == http.MethodGet:
		h.list(w, r, p.UserID)
	default:
		h.create(w, r, p)
	}
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	httpjson.Detail(w, http.StatusMethodNotAllowed, "Method Not Allowed")
}

func (h *handler) list(w http.ResponseWriter, r *http.Request, userID string) {
	recs, err := h.m.List(r.Context(), userID)
	if err != nil {
		h.unavailable(w, r, "list", err)
		return
	}
	out := listResponse{TotalCount: len(recs), UserID: userID, APIKeys: make([]apiKeyRead, 0, len(recs))}
	for _, rec := range recs {
		out.APIKeys = append(out.APIKeys, apiKeyRead{keyRead(rec, rec.MaskedKey()), isoTime(rec.CreatedAt)})
	}
	httpjson.Write(w, http.StatusOK, out)
}

func (h *handler) create(w http.ResponseWriter, r *http.Request, p apikey.Principal) {
	var (
		req *createRequest
		err error
	)
	if !httpjson.Decode(w, r, &req) {
		return
	}
	if req == nil {
		httpjson.Detail(w, http.StatusUnprocessableEntity, "Request body must be a JSON object")
		return
	}
	name := ""
	if req.Name != nil {
		name = *req.Name
	}
	opts := apikey.CreateOptions{Scopes: req.Scopes, Creator: &p}
	if h.m.KeyLimited(p.KeyID) {
		httpjson.Detail(w, http.StatusForbidden, MsgLimitedCaller)
		return
	}
	if opts.Limits, err = req.limits(); err != nil {
		httpjson.Detail(w, http.StatusBadRequest, err.Error())
		return
	}
	if req.ExpiresAt != nil {
		t := time.Time(*req.ExpiresAt)
		opts.ExpiresAt = &t
	}
	key, rec, err := h.m.Create(r.Context(), p.UserID, name, opts)
	if err != nil {
		switch {
		case errors.Is(err, apikey.ErrScopeNotAllowed):
			httpjson.Detail(w, http.StatusForbidden, MsgScopeNotAllowed)
			return
		case errors.Is(err, apikey.ErrUnavailable), errors.Is(err, apikey.ErrUninitialized):
			h.unavailable(w, r, "create", err)
			return
		}
		// A refusal of the input (Langflow: 400 str(e)); the apikey
		// package's errors never contain a key.
		httpjson.Detail(w, http.StatusBadRequest, err.Error())
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpjson.Write(w, http.StatusOK, keyRead(rec, key))
}

func (h *handler) delete(w http.ResponseWriter, r *http.Request, userID, id string) {
	if !ids.Valid(id) {
		httpjson.Detail(w, http.StatusUnprocessableEntity, MsgInvalidID)
		return
	}
	err := h.m.Delete(r.Context(), userID, strings.ToLower(id))
	switch {
	case err == nil:
		httpjson.Detail(w, http.StatusOK, MsgDeleted)
	case errors.Is(err, apikey.ErrNotFound):
		httpjson.Detail(w, http.StatusBadRequest, MsgNotFound)
	default:
		h.unavailable(w, r, "delete", err)
	}
}

// unavailable answers 503 without internals and logs the cause (the apikey
// package's errors never contain a key): the first of a run of failures at
// once, the next ones counted and summarised every 10 s (package faillog).
func (h *handler) unavailable(w http.ResponseWriter, r *http.Request, op string, err error) {
	h.failures.Failure(r.Context(), h.log(), "op", op, "err", err)
	httpjson.Detail(w, http.StatusServiceUnavailable, MsgUnavailable)
}
