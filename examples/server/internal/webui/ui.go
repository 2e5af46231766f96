// Package webui is the reference server's web UI: one page
// (templates/index.html) plus static/app.js and static/app.css, embedded in
// the binary; the page calls the JSON API with fetch(). It also holds the
// auto-login session cookie (sessions.go).
package webui

import (
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/middleware"
)

// How the UI authenticates:
//
//   - LANGFLOW_AUTO_LOGIN=true (the default, as in Langflow): serving the page
//     sets an HttpOnly, SameSite=Strict session cookie holding a signed value
//     that expires after an hour and is renewed while in use (sessions.go),
//     sent only to host names the server answers (package httpguard). The management
//     endpoints (/api/v1/api_key/, /api/v1/variables/, /api/v1/flows/)
//     accept that cookie as the superuser,
//     as Langflow's UI logs in automatically with a JWT cookie. /api/v1/run
//     does not: it needs an API key, unless LANGFLOW_SKIP_AUTH_AUTO_LOGIN is
//     also set (Langflow ≥ 1.5).
//   - LANGFLOW_AUTO_LOGIN=false: no session cookie. The page asks for a
//     username and password and logs in with POST /api/v1/login (package login);
//     the HttpOnly login cookies then authenticate its calls, and Log out
//     revokes them.
//
// A request that carries an API key is always authenticated by the key.
// Cross-origin POST/PATCH/DELETE are refused (http.CrossOriginProtection), and
// the cookie is SameSite=Strict, so other sites cannot ride the session.

//go:embed templates static
var files embed.FS

// SessionCookie is the name of the auto-login session cookie.
const SessionCookie = "keyflow_session"

// UI serves the page and the static files, and authenticates the auto-login
// session. It is safe for concurrent use.
type UI struct {
	superuser apikey.Principal // whom the session acts as
	log       *slog.Logger
	page      *template.Template
	sessions  *sessions // nil when auto-login is off
}

// New returns the UI; with autoLogin, serving the page issues a session
// cookie that acts as the superuser (ID, username).
func New(autoLogin bool, superuserID, superuserName string, log *slog.Logger) (*UI, error) {
	page, err := template.ParseFS(files, "templates/index.html")
	if err != nil {
		return nil, err
	}
	u := &UI{page: page, log: log,
		superuser: apikey.Principal{UserID: superuserID, KeyName: superuserName, Source: apikey.SourceAutoLogin}}
	if autoLogin {
		if u.sessions, err = newSessions(nil); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// Routes registers GET / and GET /static/ on mux.
func (u *UI) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", u.index)
	mux.Handle("GET /static/", http.FileServerFS(noDirs{files})) // no directory listings
}

// Session serves a request that carries no API key but a valid session
// cookie as the superuser (auto-login), calling next directly, and renews a
// cookie due for it; every other request goes to keyed, the API-key
// middleware.
func (u *UI) Session(next, keyed http.Handler) http.Handler {
	su := u.superuser
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u.sessions != nil && r.Header.Get("x-api-key") == "" && !r.URL.Query().Has("x-api-key") {
			if c, err := r.Cookie(SessionCookie); err == nil {
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

func (u *UI) index(w http.ResponseWriter, r *http.Request) {
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
	}{u.sessions != nil, u.superuser.KeyName})
	if err != nil {
		u.log.Error("render UI", "err", err)
	}
}

// noDirs is a file system that has no directories to open, so that
// http.FileServerFS answers 404 for /static/ and its subdirectories instead of
// listing them.
type noDirs struct{ fs.FS }

func (n noDirs) Open(name string) (fs.File, error) {
	f, err := n.FS.Open(name)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil || st.IsDir() {
		_ = f.Close()
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return f, nil
}
