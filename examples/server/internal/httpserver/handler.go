// Package httpserver is the reference server's HTTP side: the route table that
// puts every part's handlers behind authentication, scopes and the
// hardening layer (Handler), and the serve subcommand's life: listen, log
// the guide, shut down gracefully (Run).
package httpserver

import (
	"net/http"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/apikey/apikeyhttp"
	"github.com/keyflow-dev/keyflow/examples/server/internal/accounts"
	"github.com/keyflow-dev/keyflow/examples/server/internal/flows"
	"github.com/keyflow-dev/keyflow/examples/server/internal/httpguard"
	"github.com/keyflow-dev/keyflow/examples/server/internal/login"
	"github.com/keyflow-dev/keyflow/examples/server/internal/scopes"
	"github.com/keyflow-dev/keyflow/examples/server/internal/startup"
	"github.com/keyflow-dev/keyflow/examples/server/internal/webui"
	"github.com/keyflow-dev/keyflow/httpjson"
	"github.com/keyflow-dev/keyflow/middleware"
	"github.com/keyflow-dev/keyflow/variables/variableshttp"
)

// parts are the handlers and middleware the routes are made of.
type parts struct {
	keys   http.Handler // keyflow's apikeyhttp
	vars   http.Handler // keyflow's variableshttp
	flows  *flows.API
	users  *accounts.API
	logins *login.API
	ui     *webui.UI
	// manage authenticates a management route (a login token, the UI
	// session under auto-login, or an API key) and checks the scope.
	manage func(scope func(http.Handler) http.Handler, h http.Handler) http.Handler
	// run authenticates the run API: an API key only, as in Langflow.
	run func(h http.Handler) http.Handler
}

// Handler builds the whole HTTP API and the web UI, with throttle slowing
// password guessing (nil: a new one):
//
//	GET  /health                       200 {"status":"ok"}, no auth
//	     /api/v1/api_key/…              keyflow's apikeyhttp handler
//	     /api/v1/variables/…            keyflow's variableshttp handler
//	GET  /api/v1/flows/                 the caller's flows (package flows)
//	POST /api/v1/flows/                 create a flow
//	POST /api/v1/run/{flow_id_or_name}  run a flow: API key only, as in Langflow
//	POST /api/v1/login, /refresh, /logout   login tokens (package login)
//	GET  /api/v1/users/whoami           the caller (package accounts)
//	GET, POST /api/v1/users/, PATCH /api/v1/users/{user_id}   users, superusers only
//	GET  /                              the web UI (package webui)
//
// The management endpoints accept a login token (Authorization: Bearer, or
// the access_token_lf cookie), an API key or, in auto-login mode, the web
// UI's session cookie. Every POST/PATCH/DELETE that a browser marks as
// cross-origin is refused with 403 (http.CrossOriginProtection). When the
// database fails, the flows and run handlers answer 503 {"detail":
// httpapi.MsgStoreUnavailable} and log the cause (fail closed), as the key
// middleware and variableshttp do for their own store failures.
func Handler(a *startup.App, throttle *login.Throttle) (http.Handler, error) {
	p, err := newParts(a, throttle)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	routes(mux, p)
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpjson.Detail(w, http.StatusForbidden, "Cross-origin request refused")
	}))
	// Host check, nosniff, no key in redirects.
	return httpguard.Harden(cop.Handler(mux), httpguard.Settings{
		CheckHost:    a.Config.HostCheckEnabled(),
		ListenHost:   a.Config.Host,
		AllowedHosts: a.Config.AllowedHosts,
		AutoLogin:    a.Config.Auth.AutoLogin,
	}, a.Log), nil
}

// routes registers every route on mux. Keys without scopes, login tokens,
// the UI session and LANGFLOW_API_KEY have every scope; no scope names the
// users' routes: keys with scopes never reach them.
func routes(mux *http.ServeMux, p parts) {
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		httpjson.Write(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.Handle("/api/v1/api_key/", p.manage(scopes.Require(scopes.Keys), scopes.CheckKeyCreate(http.StripPrefix("/api/v1/api_key", p.keys))))
	mux.Handle("/api/v1/variables/", p.manage(scopes.Variables, http.StripPrefix("/api/v1/variables", p.vars)))
	mux.Handle("GET /api/v1/flows/{$}", p.manage(scopes.Require(scopes.Flows), http.HandlerFunc(p.flows.List)))
	mux.Handle("POST /api/v1/flows/{$}", p.manage(scopes.Require(scopes.Flows), http.HandlerFunc(p.flows.Create)))
	mux.Handle("POST /api/v1/run/{flow_id_or_name}", p.run(scopes.Require(scopes.Run)(http.HandlerFunc(p.flows.Run))))
	mux.HandleFunc("POST /api/v1/login", p.logins.Login)
	mux.HandleFunc("POST /api/v1/refresh", p.logins.Refresh)
	mux.HandleFunc("POST /api/v1/logout", p.logins.Logout)
	mux.Handle("GET /api/v1/users/whoami", p.manage(scopes.Unscoped, http.HandlerFunc(p.users.Whoami)))
	mux.Handle("GET /api/v1/users/{$}", p.manage(scopes.Unscoped, http.HandlerFunc(p.users.List)))
	mux.Handle("POST /api/v1/users/{$}", p.manage(scopes.Unscoped, http.HandlerFunc(p.users.Create)))
	mux.Handle("PATCH /api/v1/users/{user_id}", p.manage(scopes.Unscoped, http.HandlerFunc(p.users.Patch)))
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		httpjson.Detail(w, http.StatusNotFound, "Not Found")
	})
	p.ui.Routes(mux)
}

// newParts builds every part's handlers on a.
func newParts(a *startup.App, throttle *login.Throttle) (parts, error) {
	if throttle == nil {
		throttle = login.NewThrottle(nil)
	}
	mwCfg := a.Config.Auth
	mwCfg.Verifier = a.Keys
	mwCfg.Superuser = apikey.Principal{UserID: a.Superuser.ID, KeyName: a.Superuser.Username}
	mwCfg.Logger = a.Log
	requireKey, err := middleware.New(mwCfg)
	if err != nil {
		return parts{}, err
	}
	p := parts{
		flows: &flows.API{Flows: a.Flows, Resolver: a.Resolver, Log: a.Log},
		users: &accounts.API{Users: a.Users, NewUserIsActive: a.Config.NewUserIsActive, RevokeTokens: a.Tokens.RevokeUser,
			KeyLimited: a.Keys.KeyLimited, Log: a.Log},
		logins: &login.API{Users: a.Users, Tokens: a.Tokens, Throttle: throttle, AccessTTL: a.Config.AccessTokenTTL,
			RefreshTTL: a.Config.RefreshTokenTTL, DummyHash: accounts.DummyHash(), Log: a.Log},
	}
	if p.ui, err = webui.New(a.Config.Auth.AutoLogin, a.Superuser.ID, a.Superuser.Username, a.Log); err != nil {
		return parts{}, err
	}
	keysAPI, err := apikeyhttp.New(apikeyhttp.Config{Manager: a.Keys, User: middleware.FromRequest, Logger: a.Log})
	if err != nil {
		return parts{}, err
	}
	p.keys = a.CurrentUsage(keysAPI)
	if p.vars, err = variableshttp.New(variableshttp.Config{Service: a.Vars, User: middleware.FromRequest, Logger: a.Log}); err != nil {
		return parts{}, err
	}
	active := &login.ActiveUsers{Users: a.Users, Log: a.Log}
	p.manage = func(scope func(http.Handler) http.Handler, h http.Handler) http.Handler {
		h = scope(h)
		checked := active.Require(h) // login tokens are checked by Authenticate
		return p.logins.Authenticate(h, p.ui.Session(checked, requireKey(checked)))
	}
	p.run = func(h http.Handler) http.Handler { return requireKey(active.Require(h)) }
	return p, nil
}
