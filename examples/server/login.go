package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/examples/internal/ids"
	"github.com/keyflow-dev/keyflow/httpjson"
	"github.com/keyflow-dev/keyflow/middleware"
)

// Login as Langflow does it (docs/langflow-compatibility.md#login-and-users):
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

// sourceLogin marks a principal authenticated by a login token.
const sourceLogin apikey.Source = "login"

const (
	accessCookie  = "access_token_lf"
	refreshCookie = "refresh_token_lf"

	kindAccess  = "access"
	kindRefresh = "refresh"

	defaultAccessTTL  = time.Hour
	defaultRefreshTTL = 7 * 24 * time.Hour
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

var (
	errTokenInvalid = errors.New("token invalid")
	errTokenExpired = errors.New("token expired")
)

// tokenSettings reads the token lifetimes (seconds, as in Langflow).
func tokenSettings(cfg *config, getenv func(string) string) error {
	cfg.AccessTokenTTL, cfg.RefreshTokenTTL = defaultAccessTTL, defaultRefreshTTL
	for _, s := range []struct {
		name string
		dst  *time.Duration
	}{
		{"LANGFLOW_ACCESS_TOKEN_EXPIRE_SECONDS", &cfg.AccessTokenTTL},
		{"LANGFLOW_REFRESH_TOKEN_EXPIRE_SECONDS", &cfg.RefreshTokenTTL},
	} {
		v := strings.TrimSpace(getenv(s.name))
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("%s must be a positive number of seconds, got %q", s.name, v)
		}
		*s.dst = time.Duration(n) * time.Second
	}
	return nil
}

// loginSettings reads every setting of login and users into cfg.
func loginSettings(cfg *config, getenv func(string) string) error {
	return errors.Join(superuserSettings(cfg, getenv), tokenSettings(cfg, getenv))
}

// newToken returns a new random token and its stored hash.
func newToken() (token, hash string) {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+).
	token = base64.RawURLEncoding.EncodeToString(b[:])
	return token, tokenHash(token)
}

func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// saveToken stores a token's hash, with the pair it belongs to.
func (s *store) saveToken(ctx context.Context, hash, userID, kind, pair string, expires time.Time) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO auth_tokens (token_hash, user_id, kind, pair, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?)`),
		hash, userID, kind, pair, expires.UTC(), time.Now().UTC())
	if err != nil {
		return fmt.Errorf("save token: %w", err)
	}
	return nil
}

// tokenOwner returns the user a token of that kind belongs to:
// errTokenInvalid when there is no such token, errTokenExpired when it has
// expired (it is then deleted).
func (s *store) tokenOwner(ctx context.Context, hash, kind string) (string, error) {
	var userID, k string
	var expires time.Time
	err := s.db.QueryRowContext(ctx, s.q(`SELECT user_id, kind, expires_at FROM auth_tokens WHERE token_hash = ?`), hash).
		Scan(&userID, &k, &expires)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", errTokenInvalid
	case err != nil:
		return "", fmt.Errorf("read token: %w", err)
	case k != kind:
		return "", errTokenInvalid
	case !time.Now().Before(expires):
		_, _ = s.revokePair(ctx, hash)
		return "", errTokenExpired
	}
	return userID, nil
}

// revokePair revokes a token and the other token of its pair (the access
// and refresh tokens of one login or refresh). It reports whether the token
// itself was still there: of several requests revoking the same token at
// once, exactly one sees true. A missing token is not an error.
func (s *store) revokePair(ctx context.Context, hash string) (bool, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("revoke token: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	var pair sql.NullString
	err = tx.QueryRowContext(ctx, s.q(`DELETE FROM auth_tokens WHERE token_hash = ? RETURNING pair`), hash).Scan(&pair)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("revoke token: %w", err)
	}
	if pair.Valid && pair.String != "" {
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM auth_tokens WHERE pair = ?`), pair.String); err != nil {
			return false, fmt.Errorf("revoke token: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("revoke token: %w", err)
	}
	return true, nil
}

// revokeUserTokens logs a user out everywhere.
func (s *store) revokeUserTokens(ctx context.Context, userID string) error {
	if _, err := s.db.ExecContext(ctx, s.q(`DELETE FROM auth_tokens WHERE user_id = ?`), userID); err != nil {
		return fmt.Errorf("revoke tokens: %w", err)
	}
	return nil
}

// pruneTokens deletes expired tokens.
func (s *store) pruneTokens(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, s.q(`DELETE FROM auth_tokens WHERE expires_at < ?`), time.Now().UTC()); err != nil {
		return fmt.Errorf("prune tokens: %w", err)
	}
	return nil
}

// accessTTL and refreshTTL are the configured lifetimes, or Langflow's
// defaults when unset.
func (a *app) accessTTL() time.Duration {
	if a.cfg.AccessTokenTTL > 0 {
		return a.cfg.AccessTokenTTL
	}
	return defaultAccessTTL
}

func (a *app) refreshTTL() time.Duration {
	if a.cfg.RefreshTokenTTL > 0 {
		return a.cfg.RefreshTokenTTL
	}
	return defaultRefreshTTL
}

// tokenPair is Langflow's Token response.
type tokenPair struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
}

// issueTokens stores and returns a new access and refresh token for userID.
func (a *app) issueTokens(ctx context.Context, userID string) (tokenPair, error) {
	access, accessHash := newToken()
	refresh, refreshHash := newToken()
	pair := ids.New()
	now := time.Now()
	if err := a.store.saveToken(ctx, accessHash, userID, kindAccess, pair, now.Add(a.accessTTL())); err != nil {
		return tokenPair{}, err
	}
	if err := a.store.saveToken(ctx, refreshHash, userID, kindRefresh, pair, now.Add(a.refreshTTL())); err != nil {
		return tokenPair{}, err
	}
	return tokenPair{AccessToken: access, RefreshToken: refresh, TokenType: "bearer"}, nil
}

// setTokenCookies sets Langflow's two cookies, and forbids caching the
// answer that carries them. Both are HttpOnly (the web
// UI never reads them); the access cookie is SameSite=Lax as in Langflow,
// the refresh cookie SameSite=Strict and scoped to /api/v1/ (Langflow:
// SameSite=None; Secure, which a browser drops on plain http).
func (a *app) setTokenCookies(w http.ResponseWriter, r *http.Request, t tokenPair) {
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

// login is POST /api/v1/login (OAuth2 password form: username, password,
// optional grant_type "password").
//
// A wrong password, an unknown user and a user without a password all
// answer 401 "Incorrect username or password" after one bcrypt comparison
// (against a dummy hash when there is no real one), so neither the answer
// nor its time tells whether the user exists. Only after the password is
// right does an inactive user learn so (Langflow tells before checking the
// password). Repeated failures for one username or from one client address
// are slowed: see loginThrottle.
func (a *app) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginForm)
	if err := r.ParseMultipartForm(maxLoginForm); err != nil && !errors.Is(err, http.ErrNotMultipart) {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			httpjson.Detail(w, http.StatusRequestEntityTooLarge, "Request body too large")
			return
		}
		validationError(w, "model_attributes_type", []string{"body"}, "Input should be a valid form")
		return
	}
	username, password := r.PostForm.Get("username"), r.PostForm.Get("password")
	for _, f := range []string{"username", "password"} {
		if r.PostForm.Get(f) == "" {
			validationError(w, "missing", []string{"body", f}, "Field required")
			return
		}
	}
	if gt := r.PostForm.Get("grant_type"); gt != "" && gt != "password" {
		validationError(w, "string_pattern_mismatch", []string{"body", "grant_type"}, "String should match pattern '^password$'")
		return
	}

	ctx := r.Context()
	client := clientAddr(r)
	if wait := a.throttle.attempt(username, client); wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
		httpjson.Detail(w, http.StatusTooManyRequests, msgTooManyLogins)
		return
	}
	err := a.refreshLangflowUser(ctx, username)
	if err != nil {
		a.throttle.abandoned(username, client)
		a.storeUnavailable(w, r, "login", err)
		return
	}
	acct, err := a.store.accountByName(ctx, username)
	if err != nil && !errors.Is(err, errUserNotFound) {
		a.throttle.abandoned(username, client)
		a.storeUnavailable(w, r, "login", err)
		return
	}
	hash := []byte(acct.PasswordHash)
	if err != nil || len(hash) == 0 {
		hash = a.dummyHash
		if hash == nil {
			hash = dummyHash()
		}
	}
	ok := compareHash(hash, []byte(password)) == nil && err == nil && acct.PasswordHash != ""
	if !ok {
		a.log.InfoContext(ctx, "login failed", "client", client)
		w.Header().Set("WWW-Authenticate", "Bearer")
		httpjson.Detail(w, http.StatusUnauthorized, msgBadLogin)
		return
	}
	a.throttle.succeed(username, client)
	if !acct.IsActive {
		if acct.LastLoginAt == nil {
			httpjson.Detail(w, http.StatusBadRequest, msgWaitingForApprove)
		} else {
			httpjson.Detail(w, http.StatusUnauthorized, "Inactive user")
		}
		return
	}
	tokens, err := a.issueTokens(ctx, acct.ID)
	if err == nil {
		err = a.store.touchLastLogin(ctx, acct.ID)
	}
	if err != nil {
		a.storeUnavailable(w, r, "login", err)
		return
	}
	if err := a.store.pruneTokens(ctx); err != nil {
		a.log.WarnContext(ctx, "prune expired login tokens", "err", err)
	}
	// Langflow imports the environment's provider keys on every login.
	if err := a.importEnv(ctx, acct.user); err != nil {
		a.log.WarnContext(ctx, "import environment variables at login", "username", acct.Username, "err", err)
	}
	a.log.InfoContext(ctx, "login", "username", acct.Username)
	a.setTokenCookies(w, r, tokens)
	httpjson.Write(w, http.StatusOK, tokens)
}

// refresh is POST /api/v1/refresh: the refresh_token_lf cookie for a new
// pair, as in Langflow; the old refresh token is revoked.
func (a *app) refresh(w http.ResponseWriter, r *http.Request) {
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
	userID, err := a.store.tokenOwner(ctx, hash, kindRefresh)
	if errors.Is(err, errTokenInvalid) || errors.Is(err, errTokenExpired) {
		httpjson.Detail(w, http.StatusUnauthorized, msgBadRefresh)
		return
	}
	if err != nil {
		a.storeUnavailable(w, r, "refresh", err)
		return
	}
	acct, err := a.accountByIDFresh(ctx, userID)
	switch {
	case errors.Is(err, errUserNotFound):
		httpjson.Detail(w, http.StatusUnauthorized, msgBadRefresh)
		return
	case err != nil:
		a.storeUnavailable(w, r, "refresh", err)
		return
	case !acct.IsActive:
		httpjson.Detail(w, http.StatusUnauthorized, "User account is inactive")
		return
	}
	// The old pair goes (its access token too); of concurrent refreshes
	// with one token, only the one that revoked it gets a new pair.
	revoked, err := a.store.revokePair(ctx, hash)
	if err != nil {
		a.storeUnavailable(w, r, "refresh", err)
		return
	}
	if !revoked {
		httpjson.Detail(w, http.StatusUnauthorized, msgBadRefresh)
		return
	}
	tokens, err := a.issueTokens(ctx, userID)
	if err != nil {
		a.storeUnavailable(w, r, "refresh", err)
		return
	}
	a.setTokenCookies(w, r, tokens)
	httpjson.Write(w, http.StatusOK, tokens)
}

// logout is POST /api/v1/logout: it revokes the access token (bearer
// header or cookie) and the refresh cookie it is given, each with the other
// token of its pair (a client that logs out with its access token alone
// does not leave its refresh token usable), clears the cookies
// and answers {"message": "Logout successful"}, as Langflow does (which only
// clears the cookies).
func (a *app) logout(w http.ResponseWriter, r *http.Request) {
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
		if _, err := a.store.revokePair(ctx, h); err != nil {
			a.storeUnavailable(w, r, "logout", err)
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

// tokenAuth serves a request that carries a login token (an Authorization
// bearer header, or the access_token_lf cookie when the request carries no
// API key) to next as the token's user. A bearer token that is unknown,
// revoked or expired, or whose user is gone or inactive, answers 401 with
// Langflow's messages; such a cookie is ignored instead (a stale cookie must
// not hide the web UI's session or an API key), so the request goes to
// other, as does any request without a token. As in Langflow, a bearer token
// is tried before an API key.
func (a *app) tokenAuth(next, other http.Handler) http.Handler {
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
		userID, err := a.store.tokenOwner(ctx, tokenHash(token), kindAccess)
		msg := ""
		switch {
		case errors.Is(err, errTokenInvalid):
			msg = msgBadToken
		case errors.Is(err, errTokenExpired):
			msg = msgTokenExpired
		case err != nil:
			a.storeUnavailable(w, r, "check token", err)
			return
		default:
			acct, err := a.accountByIDFresh(ctx, userID)
			switch {
			case errors.Is(err, errUserNotFound) || err == nil && !acct.IsActive:
				msg = msgUserInactive
			case err != nil:
				a.storeUnavailable(w, r, "check token", err)
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
		p := apikey.Principal{UserID: userID, Source: sourceLogin}
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

// loginThrottle slows password guessing: after loginFreeFailures failed
// logins for one username, or from one client address (an IPv6 client's
// /64, which one host can hold whole), each further attempt must wait (1 s,
// then doubling up to loginMaxDelay) after the last failure, or get 429 with
// Retry-After. An attempt counts as a failure from the moment it is let
// through (attempt), so that many guesses sent at once cannot all pass
// before the first is judged; a success (succeed) takes it back and clears
// the username's count, an attempt the database could not decide
// (abandoned) is taken back. Unknown and known usernames are counted alike.
// Usernames are kept as SHA-256 hashes, so a long username costs no memory.
// Entries are forgotten loginForgetAfter after their last failure; at most
// loginMaxEntries are kept: when full, the entries with the fewest failures
// make room, so that a flood of new usernames or addresses cannot push out
// the count of the one being guessed. It is safe for concurrent use.
type loginThrottle struct {
	mu  sync.Mutex
	m   map[string]*loginFailures
	now func() time.Time
}

type loginFailures struct {
	n    int
	last time.Time
}

const (
	loginFreeFailures = 5
	loginMaxDelay     = time.Minute
	loginForgetAfter  = 15 * time.Minute
	loginMaxEntries   = 10000
)

func newLoginThrottle() *loginThrottle {
	return &loginThrottle{m: map[string]*loginFailures{}, now: time.Now}
}

// throttleKeys are the counters of a login attempt: the username (hashed,
// without case) and the client's address, an IPv6 address as its /64.
func throttleKeys(username, client string) [2]string {
	if a, err := netip.ParseAddr(client); err == nil && a.Is6() && !a.Is4In6() {
		if p, err := a.WithZone("").Prefix(64); err == nil {
			client = p.String()
		}
	}
	sum := sha256.Sum256([]byte(strings.ToLower(username)))
	return [2]string{"u:" + string(sum[:]), "a:" + client}
}

// delay is how long after the last of n failures the next attempt waits.
func loginDelay(n int) time.Duration {
	if n < loginFreeFailures {
		return 0
	}
	d := time.Second << min(n-loginFreeFailures, 10)
	return min(d, loginMaxDelay)
}

// attempt reports how long the caller must still wait; when that is 0 the
// attempt is let through and counted as a failure until succeed or
// abandoned says otherwise.
func (t *loginThrottle) attempt(username, client string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	keys := throttleKeys(username, client)
	var longest time.Duration
	for _, k := range keys {
		f := t.m[k]
		if f == nil || now.Sub(f.last) > loginForgetAfter {
			continue
		}
		if w := f.last.Add(loginDelay(f.n)).Sub(now); w > longest {
			longest = w
		}
	}
	if longest > 0 {
		return longest
	}
	for _, k := range keys {
		f := t.m[k]
		if f == nil {
			t.makeRoom(now)
			f = &loginFailures{}
			t.m[k] = f
		} else if now.Sub(f.last) > loginForgetAfter {
			f.n = 0
		}
		f.n++
		f.last = now
	}
	return 0
}

// makeRoom keeps the map under loginMaxEntries: it drops forgotten entries,
// then, if still full, every entry with the fewest failures (a flood of
// one-off attempts goes in one pass; a counter close to or past
// loginFreeFailures outlives them).
func (t *loginThrottle) makeRoom(now time.Time) {
	if len(t.m) < loginMaxEntries {
		return
	}
	fewest := -1
	for k, f := range t.m {
		switch {
		case now.Sub(f.last) > loginForgetAfter:
			delete(t.m, k)
		case fewest < 0 || f.n < fewest:
			fewest = f.n
		}
	}
	if len(t.m) < loginMaxEntries {
		return
	}
	for k, f := range t.m {
		if f.n == fewest {
			delete(t.m, k)
		}
	}
}

// uncount takes one attempt back from a counter; an empty counter goes.
func (t *loginThrottle) uncount(k string) {
	if f := t.m[k]; f != nil {
		if f.n--; f.n <= 0 {
			delete(t.m, k)
		}
	}
}

// succeed takes back the attempt's failure after a successful login and
// clears the username's count. The address keeps its earlier failures: one
// valid account must not reset the count of an address that guesses other
// users' passwords.
func (t *loginThrottle) succeed(username, client string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	keys := throttleKeys(username, client)
	delete(t.m, keys[0])
	t.uncount(keys[1])
}

// abandoned takes back an attempt that could not be decided (the database
// did not answer).
func (t *loginThrottle) abandoned(username, client string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range throttleKeys(username, client) {
		t.uncount(k)
	}
}
