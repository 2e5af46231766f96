package main

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/keyflow-dev/keyflow/apikey/apikeyhttp"
	"github.com/keyflow-dev/keyflow/internal/httpjson"
	"github.com/keyflow-dev/keyflow/internal/ids"
	"github.com/keyflow-dev/keyflow/middleware"
	"github.com/keyflow-dev/keyflow/variables"
	"github.com/keyflow-dev/keyflow/variables/variableshttp"
)

// handler builds the whole HTTP API and the web UI:
//
//	GET  /health                       200 {"status":"ok"}, no auth
//	     /api/v1/api_key/…              keyflow's apikeyhttp handler
//	     /api/v1/variables/…            keyflow's variableshttp handler
//	GET  /api/v1/flows/                 the caller's flows
//	POST /api/v1/flows/                 create a flow
//	POST /api/v1/run/{flow_id}          run a flow: API key only, as in Langflow
//	GET  /                              the web UI (Settings)
//
// The management endpoints accept an API key or, in auto-login mode, the web
// UI's session cookie (see ui.go). Every POST/PATCH/DELETE that a browser
// marks as cross-origin is refused with 403 (http.CrossOriginProtection).
// When the database fails, the flows and run handlers answer 503
// {"detail": msgStoreUnavailable} and log the cause (fail closed), as the
// key middleware and variableshttp do for their own store failures.
func (a *app) handler() (http.Handler, error) {
	mwCfg := a.cfg.Auth
	mwCfg.Verifier = a.keys
	mwCfg.Superuser = middleware.Principal{UserID: a.superuser.ID, KeyName: superuserName}
	mwCfg.Logger = a.log
	requireKey, err := middleware.New(mwCfg)
	if err != nil {
		return nil, err
	}
	ui, err := a.newUI()
	if err != nil {
		return nil, err
	}
	// Management endpoints: the UI session (auto-login) or an API key.
	manage := func(h http.Handler) http.Handler { return ui.session(h, requireKey(h)) }

	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		httpjson.Write(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.Handle("/api/v1/api_key/", manage(http.StripPrefix("/api/v1/api_key",
		a.currentUsage(apikeyhttp.New(a.keys, middleware.UserID)))))
	mux.Handle("/api/v1/variables/", manage(http.StripPrefix("/api/v1/variables",
		variableshttp.New(a.vars, middleware.UserID))))
	mux.Handle("GET /api/v1/flows/{$}", manage(http.HandlerFunc(a.listFlows)))
	mux.Handle("POST /api/v1/flows/{$}", manage(http.HandlerFunc(a.createFlow)))
	mux.Handle("POST /api/v1/run/{flow_id}", requireKey(http.HandlerFunc(a.runFlow)))
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		httpjson.Detail(w, http.StatusNotFound, "Not Found")
	})
	ui.routes(mux)

	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpjson.Detail(w, http.StatusForbidden, "Cross-origin request refused")
	}))
	return cop.Handler(mux), nil
}

// currentUsage writes this instance's pending API-key usage counts before a
// GET (the key list), so that the list shows every use this instance has
// seen, not the counts as of the last periodic flush (up to 10 s old). Other
// instances' uses appear when they flush. A failed flush is logged by the
// Manager, which keeps the counts; the list is served anyway.
func (a *app) currentUsage(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			// Not cut short when the client goes away: a flush that was
			// cancelled half way would be resent as "in doubt".
			ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
			_ = a.keys.Flush(ctx)
			cancel()
		}
		next.ServeHTTP(w, r)
	})
}

// flowJSON is a flow as the API shows it. Literal field values are never
// returned: they show as "********".
type flowJSON struct {
	ID        string               `json:"id"`
	Name      string               `json:"name"`
	UserID    string               `json:"user_id"`
	Fields    map[string]flowField `json:"fields"`
	CreatedAt time.Time            `json:"created_at"`
}

func toFlowJSON(f flow) flowJSON {
	fields := make(map[string]flowField, len(f.Fields))
	for name, fld := range f.Fields {
		if fld.Value != "" {
			fld.Value = "********"
		}
		fields[name] = fld
	}
	return flowJSON{ID: f.ID, Name: f.Name, UserID: f.UserID, Fields: fields, CreatedAt: f.CreatedAt}
}

func (a *app) listFlows(w http.ResponseWriter, r *http.Request) {
	userID, _ := middleware.UserID(r)
	flows, err := a.store.flowsByUser(r.Context(), userID)
	if err != nil {
		a.storeUnavailable(w, r, "list flows", err)
		return
	}
	out := make([]flowJSON, len(flows))
	for i, f := range flows {
		out[i] = toFlowJSON(f)
	}
	httpjson.Write(w, http.StatusOK, out)
}

// createFlow: {"name": "...", "fields": {"api_key": {"variable": "OPENAI_API_KEY"},
// "model": {"value": "gpt-4o"}, "token": {}}} → 201.
func (a *app) createFlow(w http.ResponseWriter, r *http.Request) {
	userID, _ := middleware.UserID(r)
	var in struct {
		Name   string               `json:"name"`
		Fields map[string]flowField `json:"fields"`
	}
	if !httpjson.Decode(w, r, &in) {
		return
	}
	if in.Name == "" {
		httpjson.Detail(w, http.StatusBadRequest, "Flow name cannot be empty")
		return
	}
	// Names go to TEXT columns (PostgreSQL refuses NUL) and back to every
	// client: the same rule as variable names, without echoing the input.
	if variables.ValidateName(in.Name) != nil {
		httpjson.Detail(w, http.StatusBadRequest, "Flow name must be valid UTF-8 without control characters, at most 255 bytes")
		return
	}
	for name, f := range in.Fields {
		switch {
		case name == "":
			httpjson.Detail(w, http.StatusBadRequest, "Field names cannot be empty")
			return
		case variables.ValidateName(name) != nil:
			httpjson.Detail(w, http.StatusBadRequest, "Field names must be valid UTF-8 without control characters, at most 255 bytes")
			return
		case f.Variable != "" && variables.ValidateName(f.Variable) != nil:
			httpjson.Detail(w, http.StatusBadRequest, "Field '"+name+"': invalid variable name")
			return
		case f.Variable != "" && f.Value != "":
			httpjson.Detail(w, http.StatusBadRequest, "Field '"+name+"': set either a variable or a value, not both")
			return
		}
	}
	f, err := a.store.createFlow(r.Context(), userID, in.Name, in.Fields)
	if err != nil {
		a.storeUnavailable(w, r, "create flow", err)
		return
	}
	httpjson.Write(w, http.StatusCreated, toFlowJSON(f))
}

// fieldResult tells which source gave a field its value, never the value.
type fieldResult struct {
	Variable string           `json:"variable"`
	Source   variables.Source `json:"source"`
}

// runFlow is POST /api/v1/run/{flow_id} {"inputs": {"text": ...}, "tweaks":
// {"<field>": "<literal>"}}. The Echo "component" outputs its input text and
// reports, per field, where its value came from (Langflow §4.6: flow value or
// tweak > X-LANGFLOW-GLOBAL-VAR-* header > stored variable > environment).
func (a *app) runFlow(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("flow_id")
	if !ids.Valid(id) {
		httpjson.Detail(w, http.StatusUnprocessableEntity, "Invalid flow ID: not a UUID")
		return
	}
	var in struct {
		Inputs struct {
			Text string `json:"text"`
		} `json:"inputs"`
		Tweaks map[string]string `json:"tweaks"`
	}
	if r.ContentLength != 0 && !httpjson.Decode(w, r, &in) {
		return
	}
	userID, _ := middleware.UserID(r)
	ctx := r.Context()
	f, err := a.store.flowByID(ctx, id)
	if errors.Is(err, errFlowNotFound) {
		httpjson.Detail(w, http.StatusNotFound, "Flow not found")
		return
	}
	if err != nil {
		a.storeUnavailable(w, r, "read flow", err)
		return
	}
	if f.UserID != userID { // superusers are not exempt (§3.7)
		httpjson.Detail(w, http.StatusForbidden, "You do not have permission to run this flow")
		return
	}

	res, err := a.resolver.Resolve(ctx, userID, flowFields(f, in.Tweaks), variables.OverridesFromRequest(r))
	var verr *variables.ValidationError
	switch {
	case errors.As(err, &verr):
		httpjson.Detail(w, http.StatusBadRequest, verr.Message)
		return
	case errors.Is(err, variables.ErrUnavailable):
		a.storeUnavailable(w, r, "resolve variables", err)
		return
	case err != nil: // e.g. a Credential that no secret decrypts
		a.internalError(w, r, err)
		return
	}
	out := make(map[string]fieldResult, len(res))
	for _, rr := range res {
		out[rr.Field] = fieldResult{Variable: rr.Variable, Source: rr.Source}
	}
	httpjson.Write(w, http.StatusOK, map[string]any{
		"flow_id": f.ID,
		"outputs": map[string]string{"text": in.Inputs.Text},
		"fields":  out,
	})
}

// flowFields turns the flow's fields into the Resolver's input. A tweak
// replaces a field with a literal; tweaks for fields the flow lacks are
// ignored, as in Langflow. An empty field is filled by the Resolver from the
// user's variables whose "Apply To Fields" name it (Langflow does that only
// in its frontend, issue #11781; here it applies to every run).
func flowFields(f flow, tweaks map[string]string) []variables.Field {
	fields := make([]variables.Field, 0, len(f.Fields))
	for _, name := range slices.Sorted(maps.Keys(f.Fields)) {
		fld := f.Fields[name]
		if t, ok := tweaks[name]; ok {
			fld = flowField{Value: t}
		}
		fields = append(fields, variables.Field{Name: name, Variable: fld.Variable, Value: fld.Value})
	}
	return fields
}

// msgStoreUnavailable answers a request whose own database work failed.
// It is fixed: the cause (which may name hosts, tables, SQL) is only logged.
const msgStoreUnavailable = "Database unavailable, try again later"

// storeUnavailable answers a store failure with 503 and msgStoreUnavailable
// (fail closed, DESIGN.md), and logs op and the cause. Store errors name
// tables, IDs and SQL states, never a key, a secret or a variable's value;
// the path is logged without its query string (where a key may be).
func (a *app) storeUnavailable(w http.ResponseWriter, r *http.Request, op string, err error) {
	a.log.ErrorContext(r.Context(), "database unavailable", "op", op, "method", r.Method, "path", r.URL.Path, "err", err)
	httpjson.Detail(w, http.StatusServiceUnavailable, msgStoreUnavailable)
}

// internalError logs the cause and answers 500 without it: for errors that
// are not store failures, such as a stored Credential that does not decrypt
// under the configured secrets.
func (a *app) internalError(w http.ResponseWriter, r *http.Request, err error) {
	a.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	httpjson.Detail(w, http.StatusInternalServerError, "Internal server error")
}
