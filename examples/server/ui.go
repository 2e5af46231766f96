package main

import (
	"embed"
	"html/template"
	"net/http"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/middleware"
)

// The web UI is one page (templates/index.html) plus static/app.js and
// static/app.css, embedded in the binary; the page calls the JSON API with
// fetch().
//
// How the UI authenticates:
//
//   - LANGFLOW_AUTO_LOGIN=true (the default, as in Langflow): serving the page
//     sets an HttpOnly, SameSite=Strict session cookie holding a signed value
//     that expires after an hour and is renewed while in use (sessions.go),
//     sent only to host names the server answers (hosts.go). The management
//     endpoints (/api/v1/api_key/, /api/v1/variables/, /api/v1/flows/)
//     accept that cookie as the superuser,
//     as Langflow's UI logs in automatically with a JWT cookie. /api/v1/run
//     does not: it needs an API key, unless LANGFLOW_SKIP_AUTH_AUTO_LOGIN is
//     also set (Langflow ≥ 1.5).
//   - LANGFLOW_AUTO_LOGIN=false: no session cookie. The page asks for a
//     username and password and logs in with POST /api/v1/login (login.go);
//     the HttpOnly login cookies then authenticate its calls, and Log out
//     revokes them.
//
// A request that carries an API key is always authenticated by the key.
// Cross-origin POST/PATCH/DELETE are refused (http.CrossOriginProtection), and
// the cookie is SameSite=Strict, so other sites cannot ride the session.

//go:embed templates static
var uiFiles embed.FS

const sessionCookie = "keyflow_session"

type ui struct {
	app      *app
	page     *template.Template
	sessions *sessions // nil when auto-login is off
}

func (a *app) newUI() (*ui, error) {
	page, err := template.ParseFS(uiFiles, "templates/index.html")
	if err != nil {
		return nil, err
	}
	u := &ui{app: a, page: page}
	if a.cfg.Auth.AutoLogin {
		if u.sessions, err = newSessions(nil); err != nil {
			return nil, err
		}
	}
	return u, nil
}

func (u *ui) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", u.index)
	mux.Handle("GET /static/", http.FileServerFS(noDirs{uiFiles})) // no directory listings
}

// session serves a request that carries no API key but a valid session
// cookie as the superuser (auto-login), calling next directly, and renews a
// cookie due for it; every other request goes to keyed, the API-key
// middleware.
func (u *ui) session(next, keyed http.Handler) http.Handler {
	su := apikey.Principal{UserID: u.app.superuser.ID, KeyName: u.app.superuser.Username, Source: apikey.SourceAutoLogin}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u.sessions != nil && r.Header.Get("x-api-key") == "" && !r.URL.Query().Has("x-api-key") {
			if c, err := r.Cookie(sessionCookie); err == nil {
				if ok, renew := u.sessions.check(c.Value); ok {
					if renew {
						u.sessions.setCookie(w, r)
					}
					next.ServeHTTP(w, r.WithContext(middleware.NewContext(r.Context(), su)))
					return
				}
			}
		}
		keyed.ServeHTTP(w, r)
	})
}

func (u *ui) index(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	if u.sessions != nil {
		u.sessions.setCookie(w, r)
	}
	err := u.page.Execute(w, struct {
		AutoLogin bool
		Superuser string
	}{u.sessions != nil, u.app.superuser.Username})
	if err != nil {
		u.app.log.Error("render UI", "err", err)
	}
}
