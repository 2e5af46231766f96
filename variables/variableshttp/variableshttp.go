// Package variableshttp serves Langflow's global-variable management API
// (/api/v1/variables/, see docs/langflow-compatibility.md#variable-endpoints) over a
// variables.Service, for a host server to mount behind its own
// authentication:
//
//	h, err := variableshttp.New(variableshttp.Config{Service: svc, User: middleware.FromRequest})
//	mux.Handle("/api/v1/variables/", auth(http.StripPrefix("/api/v1/variables", h)))
//
// Relative to the mount point it serves POST "/" (create, 201), GET "/"
// (list), PATCH "/{id}" (update) and DELETE "/{id}" (204), with Langflow's
// JSON shapes: a variable is {"id", "name", "type", "value",
// "default_fields"}, and "value" is null for Credential variables. Errors are
// {"detail": "..."}: 400 with Langflow's validation messages (and keyflow's:
// names and default_fields entries with control, invisible or bidirectional
// characters, over 255 bytes, or more than 64 default_fields; see package
// names), 401 "Not authenticated" when the UserFunc finds no user, 404
// "Variable not found", 405, 409 for a PATCH that lost to concurrent writes
// five times running, 413 for bodies over 1 MiB, 422 for malformed JSON (an
// unpaired surrogate escape such as "\ud800" included) or ids, 503 when the
// store is unavailable (fail closed), 500 for a stored value that does not
// decrypt (the cause is logged to Config.Logger under the key "err", never
// sent). Unlike Langflow, DELETE of a missing variable answers 404, not 500.
package variableshttp

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/keyflow-dev/keyflow/faillog"
	"github.com/keyflow-dev/keyflow/httpjson"
	"github.com/keyflow-dev/keyflow/internal/ids"
	"github.com/keyflow-dev/keyflow/middleware"
	"github.com/keyflow-dev/keyflow/variables"
)

// Config configures New. Service and User are required.
type Config struct {
	// Service applies Langflow's rules and stores the variables (required).
	Service *variables.Service
	// User tells the handler who the caller is (required):
	// middleware.FromRequest behind keyflow's middleware. No principal, or
	// an empty UserID, answers 401.
	User middleware.UserFunc
	// Logger receives the failures answered 500 or 503, errors under the key
	// "err", naming variables, never values. nil: slog.Default() at the
	// time of logging.
	// A run of 503s (a database outage) is logged as one Error line at
	// once, then one summary every 10 s, not one line per request.
	Logger *slog.Logger
}

type handler struct {
	svc      *variables.Service
	user     middleware.UserFunc
	logger   *slog.Logger
	failures *faillog.Log // the 503s' Error lines, a few per outage
}

// New returns the handler for cfg. It returns an error when Service or User
// is nil. The handler is safe for concurrent use.
func New(cfg Config) (http.Handler, error) {
	if cfg.Service == nil {
		return nil, errors.New("variableshttp: Config.Service is required")
	}
	if cfg.User == nil {
		return nil, errors.New("variableshttp: Config.User is required")
	}
	return &handler{svc: cfg.Service, user: cfg.User, logger: cfg.Logger,
		failures: faillog.New("variableshttp: store unavailable; answering 503", 0)}, nil
}

func (h *handler) log() *slog.Logger {
	if h.logger != nil {
		return h.logger
	}
	return slog.Default()
}

// variableRead is Langflow's VariableRead.
type variableRead struct {
	ID            string   `json:"id"`
	Name          string   `json:"name"`
	Type          string   `json:"type"`
	Value         *string  `json:"value"`
	DefaultFields []string `json:"default_fields"`
}

// readModel renders v for the API; Credential values are always null, and a
// Generic value is v.Value (plaintext, as the Service returns it).
func readModel(v variables.Variable) variableRead {
	out := variableRead{ID: v.ID, Name: v.Name, Type: string(v.Type), DefaultFields: v.DefaultFields}
	if out.DefaultFields == nil {
		out.DefaultFields = []string{}
	}
	if v.Type != variables.Credential {
		val := v.Value
		out.Value = &val
	}
	return out
}

// variableCreate is Langflow's VariableCreate; unknown fields (category,
// created_at) are ignored.
type variableCreate struct {
	Name          string   `json:"name"`
	Value         string   `json:"value"`
	Type          *string  `json:"type"`
	DefaultFields []string `json:"default_fields"`
}

// optionalFields tells an absent default_fields (nil) from null or a list.
type optionalFields struct {
	set    bool
	fields []string
}

func (o *optionalFields) UnmarshalJSON(b []byte) error {
	o.set = true
	return json.Unmarshal(b, &o.fields)
}

// variableUpdate is Langflow's VariableUpdate. Langflow requires "id" in the
// body and applies it to the row; here it is optional and must match the path.
type variableUpdate struct {
	ID            *string        `json:"id"`
	Name          *string        `json:"name"`
	Value         *string        `json:"value"`
	Type          *string        `json:"type"`
	DefaultFields optionalFields `json:"default_fields"`
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p, ok := h.user(r)
	userID := p.UserID
	if !ok || userID == "" { // fail closed: "" is nobody, not a shared account
		httpjson.Detail(w, http.StatusUnauthorized, "Not authenticated")
		return
	}
	path := strings.TrimPrefix(r.URL.Path, "/")
	if path == "" {
		switch r.Method {
		case http.MethodGet:
			h.list(w, r, userID)
		case http.MethodPost:
			h.create(w, r, userID)
		default:
			methodNotAllowed(w, "GET, POST")
		}
		return
	}
	id := strings.TrimSuffix(path, "/")
	if strings.Contains(id, "/") {
		httpjson.Detail(w, http.StatusNotFound, "Not Found")
		return
	}
	switch r.Method {
	case http.MethodPatch, http.MethodDelete:
	default:
		methodNotAllowed(w, "PATCH, DELETE")
		return
	}
	if !ids.Valid(id) {
		invalidID(w, id)
		return
	}
	if r.Method == http.MethodPatch {
		h.update(w, r, userID, strings.ToLower(id))
	} else {
		h.delete(w, r, userID, strings.ToLower(id))
	}
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	httpjson.Detail(w, http.StatusMethodNotAllowed, "Method Not Allowed")
}

// invalidID answers 422 in FastAPI's validation-error shape.
func invalidID(w http.ResponseWriter, id string) {
	if len(id) > 64 {
		id = id[:64]
	}
	httpjson.Write(w, http.StatusUnprocessableEntity, map[string]any{
		"detail": []map[string]any{{
			"type":  "uuid_parsing",
			"loc":   []string{"path", "variable_id"},
			"msg":   "Input should be a valid UUID",
			"input": id,
		}},
	})
}

func (h *handler) list(w http.ResponseWriter, r *http.Request, userID string) {
	vars, err := h.svc.List(r.Context(), userID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := make([]variableRead, len(vars))
	for i, v := range vars {
		out[i] = readModel(v)
	}
	httpjson.Write(w, http.StatusOK, out)
}

func (h *handler) create(w http.ResponseWriter, r *http.Request, userID string) {
	var body variableCreate
	if !httpjson.Decode(w, r, &body) {
		return
	}
	in := variables.CreateInput{Name: body.Name, Value: body.Value, DefaultFields: body.DefaultFields}
	if body.Type != nil {
		in.Type = variables.Type(*body.Type)
	}
	v, err := h.svc.Create(r.Context(), userID, in)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	v.Value = body.Value // the plaintext, shown only for Generic
	httpjson.Write(w, http.StatusCreated, readModel(v))
}

func (h *handler) update(w http.ResponseWriter, r *http.Request, userID, id string) {
	var body variableUpdate
	if !httpjson.Decode(w, r, &body) {
		return
	}
	if body.ID != nil && !strings.EqualFold(*body.ID, id) {
		httpjson.Detail(w, http.StatusUnprocessableEntity, "The id in the body does not match the path")
		return
	}
	p := variables.Patch{Name: body.Name, Value: body.Value}
	if body.Type != nil {
		t := variables.Type(*body.Type)
		p.Type = &t
	}
	if body.DefaultFields.set {
		p.DefaultFields = &body.DefaultFields.fields
	}
	v, err := h.svc.Update(r.Context(), userID, id, p)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if v.Type != variables.Credential {
		if v.Value, err = h.svc.Reveal(v); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	httpjson.Write(w, http.StatusOK, readModel(v))
}

func (h *handler) delete(w http.ResponseWriter, r *http.Request, userID, id string) {
	if err := h.svc.Delete(r.Context(), userID, id); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// fail answers err: validation errors 400 with their message, not-found 404,
// an update that kept losing to concurrent writes 409 (Langflow, which writes
// without a compare-and-swap, has no such answer), store unavailable 503
// (fail closed), anything else (a value that does not decrypt) 500; the last
// two with a fixed message, the cause (which names no value) logged.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ve *variables.ValidationError
	switch {
	case errors.As(err, &ve):
		httpjson.Detail(w, http.StatusBadRequest, ve.Message)
	case errors.Is(err, variables.ErrNotFound):
		httpjson.Detail(w, http.StatusNotFound, "Variable not found")
	case errors.Is(err, variables.ErrConflict):
		httpjson.Detail(w, http.StatusConflict, "Variable changed by another request; try again")
	case errors.Is(err, variables.ErrUnavailable), errors.Is(err, variables.ErrUninitialized):
		h.failures.Failure(r.Context(), h.log(), "method", r.Method, "err", err) // a few lines per outage
		httpjson.Detail(w, http.StatusServiceUnavailable, "Variable store unavailable")
	default:
		h.log().ErrorContext(r.Context(), "variableshttp: request failed", "method", r.Method, "err", err)
		httpjson.Detail(w, http.StatusInternalServerError, "Internal server error")
	}
}
