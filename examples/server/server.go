package main

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/apikey/apikeyhttp"
	"github.com/keyflow-dev/keyflow/httpjson"
	"github.com/keyflow-dev/keyflow/middleware"
	"github.com/keyflow-dev/keyflow/variables/variableshttp"
)

// handler builds the whole HTTP API and the web UI:
//
//	GET  /health                       200 {"status":"ok"}, no auth
//	     /api/v1/api_key/…              keyflow's apikeyhttp handler
//	     /api/v1/variables/…            keyflow's variableshttp handler
//	GET  /api/v1/flows/                 the caller's flows
//	POST /api/v1/flows/                 create a flow
//	POST /api/v1/run/{flow_id_or_name}  run a flow (run.go): API key only, as in Langflow
//	POST /api/v1/login, /refresh, /logout   login tokens (login.go)
//	GET  /api/v1/users/whoami           the caller (users.go)
//	GET, POST /api/v1/users/, PATCH /api/v1/users/{user_id}   users, superusers only
//	GET  /                              the web UI (Settings)
//
// The management endpoints accept a login token (Authorization: Bearer, or
// the access_token_lf cookie), an API key or, in auto-login mode, the web
// UI's session cookie (see ui.go). Every POST/PATCH/DELETE that a browser
// marks as cross-origin is refused with 403 (http.CrossOriginProtection).
// When the database fails, the flows and run handlers answer 503
// {"detail": msgStoreUnavailable} and log the cause (fail closed), as the
// key middleware and variableshttp do for their own store failures.
func (a *app) handler() (http.Handler, error) {
	mwCfg := a.cfg.Auth
	mwCfg.Verifier = a.keys
	mwCfg.Superuser = apikey.Principal{UserID: a.superuser.ID, KeyName: a.superuser.Username}
	mwCfg.Logger = a.log
	requireKey, err := middleware.New(mwCfg)
	if err != nil {
		return nil, err
	}
	ui, err := a.newUI()
	if err != nil {
		return nil, err
	}
	// Management endpoints: a login token, the UI session (auto-login) or
	// an API key. Every one names the scope a key needs for it (scopes.go).
	manage := func(scope func(http.Handler) http.Handler, h http.Handler) http.Handler {
		h = scope(h)
		active := a.activeKeyUser(h)
		return a.tokenAuth(h, ui.session(active, requireKey(active)))
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		httpjson.Write(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	keysAPI, err := apikeyhttp.New(apikeyhttp.Config{Manager: a.keys, User: middleware.FromRequest, Logger: a.log})
	if err != nil {
		return nil, err
	}
	varsAPI, err := variableshttp.New(variableshttp.Config{Service: a.vars, User: middleware.FromRequest, Logger: a.log})
	if err != nil {
		return nil, err
	}
	// Keys without scopes, login tokens, the UI session and LANGFLOW_API_KEY
	// have every scope.
	mux.Handle("/api/v1/api_key/", manage(scope(scopeKeys), checkKeyCreate(http.StripPrefix("/api/v1/api_key", a.currentUsage(keysAPI)))))
	mux.Handle("/api/v1/variables/", manage(variablesScope, http.StripPrefix("/api/v1/variables", varsAPI)))
	mux.Handle("GET /api/v1/flows/{$}", manage(scope(scopeFlows), http.HandlerFunc(a.listFlows)))
	mux.Handle("POST /api/v1/flows/{$}", manage(scope(scopeFlows), http.HandlerFunc(a.createFlow)))
	mux.Handle("POST /api/v1/run/{flow_id_or_name}", requireKey(a.activeKeyUser(scope(scopeRun)(http.HandlerFunc(a.runFlow)))))
	mux.HandleFunc("POST /api/v1/login", a.login)
	mux.HandleFunc("POST /api/v1/refresh", a.refresh)
	mux.HandleFunc("POST /api/v1/logout", a.logout)
	// No scope names the users' routes: keys with scopes never reach them.
	mux.Handle("GET /api/v1/users/whoami", manage(unscoped, http.HandlerFunc(a.whoami)))
	mux.Handle("GET /api/v1/users/{$}", manage(unscoped, http.HandlerFunc(a.listUsers)))
	mux.Handle("POST /api/v1/users/{$}", manage(unscoped, http.HandlerFunc(a.createUser)))
	mux.Handle("PATCH /api/v1/users/{user_id}", manage(unscoped, http.HandlerFunc(a.patchUser)))
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		httpjson.Detail(w, http.StatusNotFound, "Not Found")
	})
	ui.routes(mux)

	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpjson.Detail(w, http.StatusForbidden, "Cross-origin request refused")
	}))
	return a.harden(cop.Handler(mux)), nil // hardening.go: Host check, nosniff, no key in redirects
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
	ID           string               `json:"id"`
	Name         string               `json:"name"`
	EndpointName *string              `json:"endpoint_name"`
	ComponentID  string               `json:"component_id"`
	UserID       string               `json:"user_id"`
	Fields       map[string]flowField `json:"fields"`
	CreatedAt    time.Time            `json:"created_at"`
}

func toFlowJSON(f flow) flowJSON {
	fields := make(map[string]flowField, len(f.Fields))
	for name, fld := range f.Fields {
		if fld.Value != "" {
			fld.Value = "********"
		}
		fields[name] = fld
	}
	var endpoint *string
	if f.EndpointName != "" {
		endpoint = &f.EndpointName
	}
	return flowJSON{ID: f.ID, Name: f.Name, EndpointName: endpoint, ComponentID: componentID(f),
		UserID: f.UserID, Fields: fields, CreatedAt: f.CreatedAt}
}

func (a *app) listFlows(w http.ResponseWriter, r *http.Request) {
	caller, _ := middleware.FromRequest(r)
	userID := caller.UserID
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

// createFlow: {"name": "...", "endpoint_name": "my-flow", "fields": {"api_key":
// {"variable": "OPENAI_API_KEY"}, "model": {"value": "gpt-4o"}, "token": {}}}
// → 201. endpoint_name is optional; Langflow's rules: letters, digits, "-"
// and "_" (else 422), unique among the user's flows (else 400 "Endpoint name
// must be unique").
func (a *app) createFlow(w http.ResponseWriter, r *http.Request) {
	caller, _ := middleware.FromRequest(r)
	userID := caller.UserID
	var in struct {
		Name         string               `json:"name"`
		EndpointName *string              `json:"endpoint_name"`
		Fields       map[string]flowField `json:"fields"`
	}
	if !httpjson.Decode(w, r, &in) {
		return
	}
	// Names go to TEXT columns (PostgreSQL refuses NUL) and back to every
	// client: checked without echoing the input (flowcheck.go).
	if msg := checkFlow(in.Name, in.Fields); msg != "" {
		httpjson.Detail(w, http.StatusBadRequest, msg)
		return
	}
	endpoint := ""
	if in.EndpointName != nil {
		endpoint = *in.EndpointName
		if len(endpoint) > maxEndpointName || !endpointNameRe.MatchString(endpoint) {
			httpjson.Detail(w, http.StatusUnprocessableEntity, msgEndpointCharset)
			return
		}
	}
	f, err := a.store.createNamedFlow(r.Context(), userID, in.Name, endpoint, in.Fields)
	if errors.Is(err, errEndpointTaken) {
		httpjson.Detail(w, http.StatusBadRequest, "Endpoint name must be unique")
		return
	}
	if err != nil {
		a.storeUnavailable(w, r, "create flow", err)
		return
	}
	httpjson.Write(w, http.StatusCreated, toFlowJSON(f))
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
