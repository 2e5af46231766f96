// Package login is the reference server's login as Langflow does it
// (docs/langflow-compatibility.md#login-and-users):
// POST /api/v1/login with the form fields username and password
// answers {"access_token", "refresh_token", "token_type": "bearer"} and sets
// the cookies access_token_lf and refresh_token_lf; the management
// endpoints then accept "Authorization: Bearer <access token>" (or the
// cookie); POST /api/v1/refresh trades the refresh cookie for new tokens;
// POST /api/v1/logout revokes them and clears the cookies.
//
// Tokens are opaque: 32 random bytes (base64url), stored only as their
// SHA-256 in auth_tokens, with an expiry (LANGFLOW_ACCESS_TOKEN_EXPIRE_SECONDS,
// default 1 hour; LANGFLOW_REFRESH_TOKEN_EXPIRE_SECONDS, default 7 days, as
// in Langflow). Every check reads the database, so a logout or a
// deactivation is seen at once by every instance sharing it. Langflow's
// tokens are JWTs that logout cannot revoke.
//
// The package also keeps API keys of inactive users out (RequireActive).
package login

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/examples/internal/ids"
	"github.com/keyflow-dev/keyflow/examples/server/internal/accounts"
	"github.com/keyflow-dev/keyflow/examples/server/internal/config"
	"github.com/keyflow-dev/keyflow/examples/server/internal/httpapi"
	"github.com/keyflow-dev/keyflow/httpjson"
	"github.com/keyflow-dev/keyflow/middleware"
)

// Source marks a principal authenticated by a login token.
const Source apikey.Source = "login"

const (
	accessCookie  = "access_token_lf"
	refreshCookie = "refresh_token_lf"
)

// Langflow's answers.
const (
	msgBadLogin          = "Incorrect username or password"
	msgBadToken          = "Could not validate credentials"
	msgTokenExpired      = "Token has expired."
	msgUserInactive      = "User not found or is inactive."
	msgBadRefresh        = "Invalid refresh token"
	msgWaitingForApprove = "Waiting for approval"
	msgTooManyLogins     = "Too many failed login attempts, try again later"
)

// API is login's HTTP API (Login, Refresh, Logout) and its
// authentication of management routes (Authenticate).
type API struct {
	Users    *accounts.Service
	Tokens   *Tokens
	Throttle *Throttle
	// AccessTTL and RefreshTTL are the token lifetimes; zero: Langflow's
	// defaults.
	AccessTTL, RefreshTTL time.Duration
	// DummyHash is what a password is compared against when the user is
	// unknown or has none (accounts.DummyHash), made before the server
	// listens, so that the first such login does not take the time of two
	// bcrypt runs where a wrong password takes one; nil: made on first use.
	DummyHash []byte
	Log       *slog.Logger
}

// accessTTL and refreshTTL are the configured lifetimes, or Langflow's
// defaults when unset.
func (a *API) accessTTL() time.Duration {
	if a.AccessTTL > 0 {
		return a.AccessTTL
	}
	return config.DefaultAccessTTL
}

func (a *API) refreshTTL() time.Duration {
	if a.RefreshTTL > 0 {
		return a.RefreshTTL
	}
	return config.DefaultRefreshTTL
}

// TokenPair is Langflow's Token response.
type TokenPair struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
}

// issueTokens stores and returns a new access and refresh token for userID.
func (a *API) issueTokens(ctx context.Context, userID string) (TokenPair, error) {
	access, accessHash := newToken()
	refresh, refreshHash := newToken()
	pair := ids.New()
	now := time.Now()
	if err := a.Tokens.save(ctx, accessHash, userID, kindAccess, pair, now.Add(a.accessTTL())); err != nil {
		return TokenPair{}, err
	}
	if err := a.Tokens.save(ctx, refreshHash, userID, kindRefresh, pair, now.Add(a.refreshTTL())); err != nil {
		return TokenPair{}, err
	}
	return TokenPair{AccessToken: access, RefreshToken: refresh, TokenType: "bearer"}, nil
}

// setTokenCookies sets Langflow's two cookies, and forbids caching the
// answer that carries them. Both are HttpOnly (the web
// UI never reads them); the access cookie is SameSite=Lax as in Langflow,
// the refresh cookie SameSite=Strict and scoped to /api/v1/ (Langflow:
// SameSite=None; Secure, which a browser drops on plain http).
func (a *API) setTokenCookies(w http.ResponseWriter, r *http.Request, t TokenPair) {
	// The answer holds the tokens: no cache may keep it (RFC 6749 §5.1).
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	http.SetCookie(w, &http.Cookie{Name: accessCookie, Value: t.AccessToken, Path: "/",
		MaxAge: int(a.accessTTL() / time.Second), HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil})
	http.SetCookie(w, &http.Cookie{Name: refreshCookie, Value: t.RefreshToken, Path: "/api/v1/",
		MaxAge: int(a.refreshTTL() / time.Second), HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
}

func clearTokenCookies(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: accessCookie, Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil})
	http.SetCookie(w, &http.Cookie{Name: refreshCookie, Path: "/api/v1/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
}

// maxLoginForm bounds the login form.
const maxLoginForm = 64 << 10

// readLoginForm reads the OAuth2 password form, answering 413 or 422
// itself (and reporting false) when it is refused.
func readLoginForm(w http.ResponseWriter, r *http.Request) (username, password string, ok bool) {
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginForm)
	if err := r.ParseMultipartForm(maxLoginForm); err != nil && !errors.Is(err, http.ErrNotMultipart) {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			httpjson.Detail(w, http.StatusRequestEntityTooLarge, "Request body too large")
			return "", "", false
		}
		httpapi.ValidationError(w, "model_attributes_type", []string{"body"}, "Input should be a valid form")
		return "", "", false
	}
	username, password = r.PostForm.Get("username"), r.PostForm.Get("password")
	for _, f := range []string{"username", "password"} {
		if r.PostForm.Get(f) == "" {
			httpapi.ValidationError(w, "missing", []string{"body", f}, "Field required")
			return "", "", false
		}
	}
	if gt := r.PostForm.Get("grant_type"); gt != "" && gt != "password" {
		httpapi.ValidationError(w, "string_pattern_mismatch", []string{"body", "grant_type"}, "String should match pattern '^password$'")
		return "", "", false
	}
	return username, password, true
}

// startSession answers a login that succeeded: a new token pair (as JSON
// and cookies), the last login recorded, expired tokens pruned and, as
// Langflow does at every login, the environment's provider keys imported.
func (a *API) startSession(w http.ResponseWriter, r *http.Request, acct accounts.User) {
	ctx := r.Context()
	tokens, err := a.issueTokens(ctx, acct.ID)
	if err == nil {
		err = a.Users.Store.TouchLastLogin(ctx, acct.ID)
	}
	if err != nil {
		httpapi.StoreUnavailable(a.Log, w, r, "login", err)
		return
	}
	if err := a.Tokens.prune(ctx); err != nil {
		a.Log.WarnContext(ctx, "prune expired login tokens", "err", err)
	}
	// Langflow imports the environment's provider keys on every login.
	if err := a.Users.ImportEnv(ctx, acct.ID, acct.Username); err != nil {
		a.Log.WarnContext(ctx, "import environment variables at login", "username", acct.Username, "err", err)
	}
	a.Log.InfoContext(ctx, "login", "username", acct.Username)
	a.setTokenCookies(w, r, tokens)
	httpjson.Write(w, http.StatusOK, tokens)
}

// Login is POST /api/v1/login (OAuth2 password form: username, password,
// optional grant_type "password").
//
// A wrong password, an unknown user and a user without a password all
// answer 401 "Incorrect username or password" after one bcrypt comparison
// (against a dummy hash when there is no real one), so neither the answer
// nor its time tells whether the user exists. Only after the password is
// right does an inactive user learn so (Langflow tells before checking the
// password). Repeated failures for one username or from one client address
// are slowed: see Throttle.
func (a *API) Login(w http.ResponseWriter, r *http.Request) {
	username, password, ok := readLoginForm(w, r)
	if !ok {
		return
	}

	ctx := r.Context()
	client := clientAddr(r)
	if wait := a.Throttle.attempt(username, client); wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
		httpjson.Detail(w, http.StatusTooManyRequests, msgTooManyLogins)
		return
	}
	err := a.Users.Refresh(ctx, username)
	if err != nil {
		a.Throttle.abandoned(username, client)
		httpapi.StoreUnavailable(a.Log, w, r, "login", err)
		return
	}
	acct, err := a.Users.Store.ByName(ctx, username)
	if err != nil && !errors.Is(err, accounts.ErrNotFound) {
		a.Throttle.abandoned(username, client)
		httpapi.StoreUnavailable(a.Log, w, r, "login", err)
		return
	}
	hash := []byte(acct.PasswordHash)
	if err != nil || len(hash) == 0 {
		hash = a.DummyHash
		if hash == nil {
			hash = accounts.DummyHash()
		}
	}
	ok = accounts.CompareHash(hash, []byte(password)) == nil && err == nil && acct.PasswordHash != ""
	if !ok {
		a.Log.InfoContext(ctx, "login failed", "client", client)
		w.Header().Set("WWW-Authenticate", "Bearer")
		httpjson.Detail(w, http.StatusUnauthorized, msgBadLogin)
		return
	}
	a.Throttle.succeed(username, client)
	if !acct.IsActive {
		if acct.LastLoginAt == nil {
			httpjson.Detail(w, http.StatusBadRequest, msgWaitingForApprove)
		} else {
			httpjson.Detail(w, http.StatusUnauthorized, "Inactive user")
		}
		return
	}
	a.startSession(w, r, acct)
}

// Refresh is POST /api/v1/refresh: the refresh_token_lf cookie for a new
// pair, as in Langflow; the old refresh token is revoked.
func (a *API) Refresh(w http.ResponseWriter, r *http.Request) {
	token := ""
	if c, err := r.Cookie(refreshCookie); err == nil {
		token = c.Value
	}
	if token == "" {
		w.Header().Set("WWW-Authenticate", "Bearer")
		httpjson.Detail(w, http.StatusUnauthorized, msgBadRefresh)
		return
	}
	ctx := r.Context()
	hash := tokenHash(token)
	userID, err := a.Tokens.owner(ctx, hash, kindRefresh)
	if errors.Is(err, errTokenInvalid) || errors.Is(err, errTokenExpired) {
		httpjson.Detail(w, http.StatusUnauthorized, msgBadRefresh)
		return
	}
	if err != nil {
		httpapi.StoreUnavailable(a.Log, w, r, "refresh", err)
		return
	}
	acct, err := a.Users.Fresh(ctx, userID)
	switch {
	case errors.Is(err, accounts.ErrNotFound):
		httpjson.Detail(w, http.StatusUnauthorized, msgBadRefresh)
		return
	case err != nil:
		httpapi.StoreUnavailable(a.Log, w, r, "refresh", err)
		return
	case !acct.IsActive:
		httpjson.Detail(w, http.StatusUnauthorized, "User account is inactive")
		return
	}
	// The old pair goes (its access token too); of concurrent refreshes
	// with one token, only the one that revoked it gets a new pair.
	revoked, err := a.Tokens.revokePair(ctx, hash)
	if err != nil {
		httpapi.StoreUnavailable(a.Log, w, r, "refresh", err)
		return
	}
	if !revoked {
		httpjson.Detail(w, http.StatusUnauthorized, msgBadRefresh)
		return
	}
	tokens, err := a.issueTokens(ctx, userID)
	if err != nil {
		httpapi.StoreUnavailable(a.Log, w, r, "refresh", err)
		return
	}
	a.setTokenCookies(w, r, tokens)
	httpjson.Write(w, http.StatusOK, tokens)
}

// Logout is POST /api/v1/logout: it revokes the access token (bearer
// header or cookie) and the refresh cookie it is given, each with the other
// token of its pair (a client that logs out with its access token alone
// does not leave its refresh token usable), clears the cookies
// and answers {"message": "Logout successful"}, as Langflow does (which only
// clears the cookies).
func (a *API) Logout(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var hashes []string
	if t, ok := bearerToken(r); ok {
		hashes = append(hashes, tokenHash(t))
	}
	for _, name := range []string{accessCookie, refreshCookie} {
		if c, err := r.Cookie(name); err == nil && c.Value != "" {
			hashes = append(hashes, tokenHash(c.Value))
		}
	}
	for _, h := range hashes {
		if _, err := a.Tokens.revokePair(ctx, h); err != nil {
			httpapi.StoreUnavailable(a.Log, w, r, "logout", err)
			return
		}
	}
	clearTokenCookies(w, r)
	httpjson.Write(w, http.StatusOK, map[string]string{"message": "Logout successful"})
}

// bearerToken reads "Authorization: Bearer <token>".
func bearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	const scheme = "bearer "
	if len(h) <= len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return "", false
	}
	t := strings.TrimSpace(h[len(scheme):])
	return t, t != ""
}

// Authenticate serves a request that carries a login token (an Authorization
// bearer header, or the access_token_lf cookie when the request carries no
// API key) to next as the token's user. A bearer token that is unknown,
// revoked or expired, or whose user is gone or inactive, answers 401 with
// Langflow's messages; such a cookie is ignored instead (a stale cookie must
// not hide the web UI's session or an API key), so the request goes to
// other, as does any request without a token. As in Langflow, a bearer token
// is tried before an API key.
func (a *API) Authenticate(next, other http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearerToken(r)
		fromCookie := false
		if !ok && r.Header.Get(middleware.APIKeyName) == "" && !r.URL.Query().Has(middleware.APIKeyName) {
			if c, err := r.Cookie(accessCookie); err == nil && c.Value != "" {
				token, ok, fromCookie = c.Value, true, true
			}
		}
		if !ok {
			other.ServeHTTP(w, r)
			return
		}
		ctx := r.Context()
		userID, err := a.Tokens.owner(ctx, tokenHash(token), kindAccess)
		msg := ""
		switch {
		case errors.Is(err, errTokenInvalid):
			msg = msgBadToken
		case errors.Is(err, errTokenExpired):
			msg = msgTokenExpired
		case err != nil:
			httpapi.StoreUnavailable(a.Log, w, r, "check token", err)
			return
		default:
			acct, err := a.Users.Fresh(ctx, userID)
			switch {
			case errors.Is(err, accounts.ErrNotFound) || err == nil && !acct.IsActive:
				msg = msgUserInactive
			case err != nil:
				httpapi.StoreUnavailable(a.Log, w, r, "check token", err)
				return
			}
		}
		if msg != "" && fromCookie {
			other.ServeHTTP(w, r)
			return
		}
		if msg != "" {
			w.Header().Set("WWW-Authenticate", "Bearer")
			httpjson.Detail(w, http.StatusUnauthorized, msg)
			return
		}
		p := apikey.Principal{UserID: userID, Source: Source}
		next.ServeHTTP(w, r.WithContext(middleware.NewContext(ctx, p)))
	})
}

// clientAddr is the client's IP address (without the port). Behind a proxy
// it is the proxy's: keyflow reads no forwarding header it cannot trust.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
