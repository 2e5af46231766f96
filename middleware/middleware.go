package middleware

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/envbool"
	"github.com/keyflow-dev/keyflow/faillog"
	"github.com/keyflow-dev/keyflow/httpjson"
	"github.com/keyflow-dev/keyflow/internal/isnil"
)

// Langflow's messages (see docs/langflow-compatibility.md#authentication-errors), answered verbatim by the default
// error handler.
const (
	// msgNoKey answers a request without a key when auto-login is off (403).
	msgNoKey = "An API key must be passed as query or header"
	// msgInvalidKey answers a wrong, unknown, revoked, expired or inactive
	// key (403). One message for all, so a response reveals nothing.
	msgInvalidKey = "Invalid or missing API key"
	// msgAutoLoginNoKey answers a request without a key when
	// LANGFLOW_AUTO_LOGIN is on and LANGFLOW_SKIP_AUTH_AUTO_LOGIN off (403).
	msgAutoLoginNoKey = "Since v1.5, LANGFLOW_AUTO_LOGIN requires a valid API key. " +
		"Set LANGFLOW_SKIP_AUTH_AUTO_LOGIN=true to skip this check. " +
		"Please update your authentication method."
	// msgUnavailable answers a request that could not be verified because
	// the key store failed (503). It names no cause; the log does.
	msgUnavailable = "Authentication service unavailable"
	// autoLoginWarning is logged (once per middleware) when a request is let
	// through as the superuser by LANGFLOW_SKIP_AUTH_AUTO_LOGIN.
	autoLoginWarning = "In v2.0, LANGFLOW_SKIP_AUTH_AUTO_LOGIN will be removed. Please update your authentication method."
)

var (
	// ErrNoKey: the request carries no key (auto-login off). With auto-login
	// on and skipping off, the error is ErrAutoLoginNoKey, which wraps it.
	ErrNoKey = errors.New("middleware: no API key in the request")
	// ErrAutoLoginNoKey: no key while LANGFLOW_AUTO_LOGIN is on and
	// LANGFLOW_SKIP_AUTH_AUTO_LOGIN is off. errors.Is(err, ErrNoKey) holds too.
	ErrAutoLoginNoKey = fmt.Errorf("middleware: LANGFLOW_AUTO_LOGIN requires an API key: %w", ErrNoKey)
)

// Verifier checks a presented key. *apikey.Manager implements it. Verify must
// be safe for concurrent use; it reports a verdict on the key with
// apikey.ErrInvalid, ErrExpired, ErrInactive (or ErrMissing, ErrNotFound), and
// a failure to decide with apikey.ErrUnavailable. Any other error counts as
// unavailability (503), so a broken verifier never lets anybody in.
type Verifier interface {
	Verify(ctx context.Context, key string) (apikey.Principal, error)
}

// OptionsPolicy says which OPTIONS requests pass without authentication
// (why the default differs from Langflow:
// docs/langflow-compatibility.md#options-requests).
type OptionsPolicy int

const (
	// OptionsPreflight, the default, lets through unauthenticated only CORS
	// preflights: OPTIONS requests with an Access-Control-Request-Method
	// header (browsers send one, and never a key). Any other OPTIONS
	// request is authenticated like every other method. Anyone can send
	// that header, though: a request that looks like a preflight reaches
	// the next handler without a principal, so a handler that does not
	// check the method must not sit behind this policy alone (register it
	// with a method pattern such as "GET /admin/export", check
	// FromRequest's ok, or use OptionsAuthenticate with the CORS layer in
	// front).
	OptionsPreflight OptionsPolicy = iota
	// OptionsAll lets every OPTIONS request through unauthenticated.
	OptionsAll
	// OptionsAuthenticate authenticates OPTIONS requests like any other,
	// preflights included (for a CORS layer placed in front of the
	// middleware).
	OptionsAuthenticate
)

// isPreflight reports whether r is a CORS preflight request.
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
}

// Config configures New. Only Verifier is required; the zero value of every
// other field is Langflow's behaviour with LANGFLOW_AUTO_LOGIN=false.
type Config struct {
	// Verifier checks keys (required); usually an *apikey.Manager.
	Verifier Verifier
	// Extractors are tried in order; the first that finds a key wins. nil:
	// FromQuery("x-api-key"), FromHeader("x-api-key"): the query wins over
	// the header, as in Langflow. Add FromBearer() to accept
	// "Authorization: Bearer <key>".
	Extractors []Extractor
	// AutoLogin is LANGFLOW_AUTO_LOGIN. Langflow's default is true; ours is
	// false unless set. With it on, a request without a key is answered 403
	// (ErrAutoLoginNoKey, with Langflow's message), unless SkipAuthAutoLogin
	// is also on.
	AutoLogin bool
	// SkipAuthAutoLogin is LANGFLOW_SKIP_AUTH_AUTO_LOGIN: with AutoLogin, a
	// request without a key acts as Superuser (Source SourceAutoLogin), and
	// Langflow's deprecation warning for the setting is logged once.
	SkipAuthAutoLogin bool
	// Superuser is who auto-login and the env key act as. Its UserID is
	// required when either is enabled; its Source is set by the middleware.
	Superuser apikey.Principal
	// EnvKey is LANGFLOW_API_KEY, used with LANGFLOW_API_KEY_SOURCE=env: a
	// key equal to it (compared in constant time) acts as Superuser (Source
	// SourceEnv); any other key falls back to Verifier, as in Langflow.
	// Empty: disabled.
	EnvKey string
	// Optional attaches a principal when the request carries a valid key
	// (or auto-login applies) and never rejects: a missing, invalid or
	// unverifiable key lets the request through anonymously (OnFailure still
	// sees presented keys that fail). For public routes with extras for
	// callers who authenticate.
	Optional bool
	// Skip, when it returns true, passes the request to the next handler
	// without authentication: no key is read, no principal attached (any
	// x-api-key parameter is still removed from its URL).
	// For health checks and other public routes.
	Skip func(*http.Request) bool
	// OptionsPolicy says which OPTIONS requests pass without a key. The zero value, OptionsPreflight, passes only CORS preflights.
	OptionsPolicy OptionsPolicy
	// ErrorHandler answers a rejected request; err is ErrNoKey,
	// ErrAutoLoginNoKey or the Verifier's error (test it with errors.Is on
	// the apikey sentinels). It is never given the key. nil:
	// DefaultErrorHandler (Langflow's answers).
	ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)
	// OnFailure, if set, is called for every failed authentication
	// (before ErrorHandler, and in Optional mode too when a presented key
	// fails), with the same err: a hook for rate limiting and audit. It
	// runs on the request's goroutine and must be safe for concurrent use.
	OnFailure func(r *http.Request, err error)
	// Cost is how many units of a limited key's rate limits and quota a
	// request costs (a host that charges by what a request does: a run
	// costs more than a read); < 1 counts as 1. nil: 1. Used when Verifier
	// is a Charger (*apikey.Manager); keys without limits are not charged.
	Cost func(*http.Request) int64
	// Logger receives the cause of 503s (Error), rejected keys' reasons
	// (Debug) and the auto-login warning (Warn), errors under the key "err";
	// never a key. nil: slog.Default() at the time of logging.
	Logger *slog.Logger
	// ErrorLogInterval bounds the Error lines of 503s while the key store is
	// down: the first failure of a run is logged at once with its cause, the
	// next ones are counted and summarised (with the latest cause) at most
	// once per interval, and a run that stops is closed by one Info line.
	// 0: 10 s. Negative: one Error line per failed request.
	ErrorLogInterval time.Duration
}

// ConfigFromEnv reads Langflow's settings with lookup (nil: os.LookupEnv):
//
//	LANGFLOW_AUTO_LOGIN            bool, default false (Langflow's default is true)
//	LANGFLOW_SKIP_AUTH_AUTO_LOGIN  bool, default false
//	LANGFLOW_API_KEY_SOURCE        "db" (default) or "env"
//	LANGFLOW_API_KEY               the env key, used only when the source is "env"
//
// Booleans are read as Langflow's settings read them (see
// docs/langflow-compatibility.md#boolean-settings): 1/0, true/false, t/f,
// yes/no, y/n, on/off in any case; unset means the default, and any other
// value, the empty string included, is an error naming the variable, as
// Langflow's settings validation refuses to start. So is a source other than
// db/env. As in Langflow, source "env" with an empty LANGFLOW_API_KEY is not
// an error: every key then goes to the store. Verifier and Superuser are
// left for the caller to set.
func ConfigFromEnv(lookup func(string) (string, bool)) (Config, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	var cfg Config
	var errs []error
	var err error
	if cfg.AutoLogin, err = envbool.Lookup(lookup, "LANGFLOW_AUTO_LOGIN", false); err != nil {
		errs = append(errs, fmt.Errorf("middleware: %w", err))
	}
	if cfg.SkipAuthAutoLogin, err = envbool.Lookup(lookup, "LANGFLOW_SKIP_AUTH_AUTO_LOGIN", false); err != nil {
		errs = append(errs, fmt.Errorf("middleware: %w", err))
	}
	switch src, _ := lookup("LANGFLOW_API_KEY_SOURCE"); src {
	case "", "db":
	case "env":
		cfg.EnvKey, _ = lookup("LANGFLOW_API_KEY")
	default:
		errs = append(errs, fmt.Errorf("middleware: LANGFLOW_API_KEY_SOURCE must be \"db\" or \"env\", got %q", src))
	}
	if len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}
	return cfg, nil
}

// auth is the validated, precomputed configuration shared by every handler
// New's middleware wraps.
type auth struct {
	verifier     Verifier
	charger      Charger // Verifier as a Charger; nil: it is not one
	cost         func(*http.Request) int64
	extractors   []Extractor
	autoLogin    bool
	skipAuth     bool
	autoLoginP   apikey.Principal
	envP         apikey.Principal
	envHash      apikey.Hash
	hasEnv       bool
	optional     bool
	skip         func(*http.Request) bool
	options      OptionsPolicy
	errorHandler func(http.ResponseWriter, *http.Request, error)
	onFailure    func(*http.Request, error)
	logger       *slog.Logger
	failures     *faillog.Log // the 503s' Error lines
	warnOnce     sync.Once
}

// New validates cfg and returns the authentication middleware, usable with
// http.ServeMux, chi and anything else built on net/http. It is an error if
// Verifier is nil (a nil interface or a nil pointer in one, such as a nil
// *apikey.Manager), an Extractor is nil, OptionsPolicy is unknown, or
// Superuser.UserID is empty while auto-login skipping or an env key is
// enabled.
//
// For each request the middleware, in order: passes CORS preflights (see
// OptionsPolicy) and Skip'd requests without authentication; finds the key with the
// Extractors; with no key, acts as Superuser (AutoLogin+SkipAuthAutoLogin) or
// rejects with ErrAutoLoginNoKey / ErrNoKey; checks EnvKey, then Verifier;
// on success calls next with a shallow copy of the request whose context
// carries the Principal (FromContext) and whose URL (RawQuery, RequestURI
// and URL) no longer contains any x-api-key parameter or any parameter
// holding the key (see StripKeys), so downstream handlers and access logs
// never see it. The caller's request is never modified.
//
// The returned middleware and the handlers it makes are safe for concurrent
// use.
func New(cfg Config) (func(http.Handler) http.Handler, error) {
	if isnil.Value(cfg.Verifier) {
		return nil, errors.New("middleware: Config.Verifier is required (it is nil)")
	}
	if cfg.OptionsPolicy < OptionsPreflight || cfg.OptionsPolicy > OptionsAuthenticate {
		return nil, fmt.Errorf("middleware: Config.OptionsPolicy %d is unknown", cfg.OptionsPolicy)
	}
	a := &auth{
		verifier:     cfg.Verifier,
		extractors:   cfg.Extractors,
		autoLogin:    cfg.AutoLogin,
		skipAuth:     cfg.AutoLogin && cfg.SkipAuthAutoLogin,
		optional:     cfg.Optional,
		skip:         cfg.Skip,
		options:      cfg.OptionsPolicy,
		errorHandler: cfg.ErrorHandler,
		onFailure:    cfg.OnFailure,
		logger:       cfg.Logger,
		cost:         cfg.Cost,
		failures:     faillog.New("middleware: API key verification failed; answering 503", cfg.ErrorLogInterval),
	}
	a.charger, _ = cfg.Verifier.(Charger)
	if a.extractors == nil {
		a.extractors = defaultExtractors()
	} else {
		a.extractors = append([]Extractor(nil), cfg.Extractors...)
	}
	for i, e := range a.extractors {
		if e == nil {
			return nil, fmt.Errorf("middleware: Config.Extractors[%d] is nil", i)
		}
	}
	if a.errorHandler == nil {
		a.errorHandler = DefaultErrorHandler
	}
	if a.skipAuth || cfg.EnvKey != "" {
		if cfg.Superuser.UserID == "" {
			return nil, errors.New("middleware: Config.Superuser.UserID is required with SkipAuthAutoLogin or EnvKey (Langflow: Missing first superuser credentials)")
		}
	}
	su := cfg.Superuser
	su.Scopes = append([]string(nil), su.Scopes...)
	if len(su.Scopes) == 0 {
		su.Scopes = nil
	}
	a.autoLoginP, a.envP = su, su
	a.autoLoginP.Source, a.envP.Source = apikey.SourceAutoLogin, apikey.SourceEnv
	if cfg.EnvKey != "" {
		a.hasEnv = true
		a.envHash = apikey.HashKey(cfg.EnvKey)
	}
	return func(next http.Handler) http.Handler {
		if next == nil {
			next = http.NotFoundHandler()
		}
		return &handler{a: a, next: next}
	}, nil
}

type handler struct {
	a    *auth
	next http.Handler
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a := h.a
	if a.passes(r) || a.skip != nil && a.skip(r) {
		h.serve(w, r, nil, "")
		return
	}
	key, ok := a.extract(r)
	if !ok {
		switch {
		case a.skipAuth:
			a.warnOnce.Do(func() { a.log().WarnContext(r.Context(), autoLoginWarning) })
			h.serve(w, r, &principalCtx{Context: r.Context(), p: a.autoLoginP}, "")
		case a.optional:
			h.serve(w, r, nil, "")
		case a.autoLogin:
			a.reject(w, r, ErrAutoLoginNoKey)
		default:
			a.reject(w, r, ErrNoKey)
		}
		return
	}
	if a.hasEnv && a.isEnvKey(key) {
		h.serve(w, r, &principalCtx{Context: r.Context(), p: a.envP}, key)
		return
	}
	var (
		ap  apikey.Principal
		ch  apikey.Charge
		err error
	)
	if a.charger != nil {
		ap, ch, err = a.charger.VerifyCharge(r.Context(), key, a.costOf(r))
	} else {
		ap, err = a.verifier.Verify(r.Context(), key)
	}
	if err != nil {
		a.logFailure(r, err)
		if a.optional {
			if a.onFailure != nil {
				a.onFailure(r, err)
			}
			h.serve(w, r, nil, key)
			return
		}
		a.reject(w, r, err)
		return
	}
	c := &principalCtx{Context: r.Context(), p: ap}
	if c.p.Source == "" {
		c.p.Source = apikey.SourceDB
	}
	if ch.Limited() {
		h.serveLimited(w, r, c, key, ch)
		return
	}
	h.serve(w, r, c, key)
}

// costOf is what r costs a limited key (Config.Cost).
func (a *auth) costOf(r *http.Request) int64 {
	if a.cost == nil {
		return 1
	}
	return a.cost(r)
}

// passes reports whether r is an OPTIONS request that OptionsPolicy lets
// through without a key.
func (a *auth) passes(r *http.Request) bool {
	if r.Method != http.MethodOptions {
		return false
	}
	switch a.options {
	case OptionsAll:
		return true
	case OptionsPreflight:
		return isPreflight(r)
	}
	return false
}

// serve calls next with a copy of r whose context is c (unchanged if c is
// nil) and without any x-api-key parameter, or parameter holding key, in its
// URL. c holds the Principal itself, so the context and the principal are one
// allocation.
func (h *handler) serve(w http.ResponseWriter, r *http.Request, c *principalCtx, key string) {
	var r2 *http.Request
	if c != nil {
		r2 = r.WithContext(c)
	}
	if r.URL != nil && r.URL.RawQuery != "" {
		if full, start, changed := stripKeyAfter(r.RequestURI, r.URL.RawQuery, key); changed {
			if r2 == nil {
				r2 = r.WithContext(r.Context())
			}
			u := *r.URL
			u.RawQuery = full[start:]
			if u.RawQuery == "" {
				u.ForceQuery = false
			}
			r2.URL = &u
			if r.RequestURI != "" {
				r2.RequestURI = full
			}
			// A form parsed upstream holds the query's values: drop it so
			// ParseForm rebuilds it from the stripped URL (PostForm, already
			// read from the body, is kept).
			r2.Form = nil
		}
	}
	if r2 == nil {
		r2 = r
	}
	h.next.ServeHTTP(w, r2)
}

func (a *auth) extract(r *http.Request) (string, bool) {
	for _, e := range a.extractors {
		if k, ok := e(r); ok && k != "" {
			return k, true
		}
	}
	return "", false
}

// isEnvKey compares SHA-256 digests in constant time, so neither the content
// nor the length of LANGFLOW_API_KEY leaks through timing. apikey.HashKey
// hashes without copying the key (sha256.Sum256([]byte(key)) would allocate
// for every key longer than 32 bytes, on every request).
func (a *auth) isEnvKey(key string) bool {
	h := apikey.HashKey(key)
	return subtle.ConstantTimeCompare(h[:], a.envHash[:]) == 1
}

func (a *auth) reject(w http.ResponseWriter, r *http.Request, err error) {
	if a.onFailure != nil {
		a.onFailure(r, err)
	}
	a.errorHandler(w, r, err)
}

func (a *auth) log() *slog.Logger {
	if a.logger != nil {
		return a.logger
	}
	return slog.Default()
}

// logFailure logs why a presented key failed: the store's cause at Error
// level (it becomes a 503; a run of them is aggregated, see
// Config.ErrorLogInterval), a rejected key's reason, or a request whose
// client went away during the check, at Debug. The key is never
// logged; the apikey package's errors never contain it.
func (a *auth) logFailure(r *http.Request, err error) {
	ctx := r.Context()
	path := ""
	if r.URL != nil { // a hand-built request may have none
		path = r.URL.Path
	}
	if IsRejection(err) || IsLimited(err) {
		a.log().DebugContext(ctx, "middleware: API key rejected", "method", r.Method, "path", path, "err", err)
		return
	}
	if ctx.Err() != nil { // the client went away: no outage to report
		a.log().DebugContext(ctx, "middleware: request cancelled during API key verification", "method", r.Method, "path", path, "err", err)
		return
	}
	a.failures.Failure(ctx, a.log(), "method", r.Method, "path", path, "err", err)
}

// IsRejection reports whether err is a verdict on the request's key (no key,
// or a wrong, unknown, revoked, expired or inactive one: 403) rather than a
// failure to decide (store unavailable: 503).
func IsRejection(err error) bool {
	if err == nil || errors.Is(err, apikey.ErrUnavailable) {
		return false
	}
	return errors.Is(err, ErrNoKey) ||
		errors.Is(err, apikey.ErrInvalid) ||
		errors.Is(err, apikey.ErrExpired) ||
		errors.Is(err, apikey.ErrInactive) ||
		errors.Is(err, apikey.ErrMissing) ||
		errors.Is(err, apikey.ErrNotFound)
}

// DefaultErrorHandler answers as Langflow does
// (docs/langflow-compatibility.md#authentication-errors), with a JSON
// body {"detail": msg}:
//
//	ErrAutoLoginNoKey                              403 msgAutoLoginNoKey
//	ErrNoKey                                       403 msgNoKey
//	apikey.ErrInvalid, ErrExpired, ErrInactive, …  403 msgInvalidKey (one answer for all)
//	apikey.ErrRateLimited, ErrQuotaExhausted        429 msgRateLimited / msgQuotaExhausted,
//	                                               with Retry-After and the RateLimit header fields
//	apikey.ErrUnavailable or any other error       503 msgUnavailable (no internals)
//
// A custom Config.ErrorHandler can call it for the cases it does not change.
func DefaultErrorHandler(w http.ResponseWriter, r *http.Request, err error) {
	if limitAnswer(w, err) {
		return
	}
	switch {
	case errors.Is(err, ErrAutoLoginNoKey):
		httpjson.Detail(w, http.StatusForbidden, msgAutoLoginNoKey)
	case errors.Is(err, ErrNoKey):
		httpjson.Detail(w, http.StatusForbidden, msgNoKey)
	case IsRejection(err):
		httpjson.Detail(w, http.StatusForbidden, msgInvalidKey)
	default:
		httpjson.Detail(w, http.StatusServiceUnavailable, msgUnavailable)
	}
}
