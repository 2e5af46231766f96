package middleware

import (
	"context"
	"net/http"
	"slices"
)

// Source says how a request was authenticated.
type Source string

// The sources of a Principal.
const (
	// SourceDB: a key found in the apikey store (Langflow's API_KEY_SOURCE=db).
	SourceDB Source = "db"
	// SourceEnv: the key matched LANGFLOW_API_KEY (API_KEY_SOURCE=env); the
	// caller acts as the superuser.
	SourceEnv Source = "env"
	// SourceAutoLogin: no key, LANGFLOW_AUTO_LOGIN and
	// LANGFLOW_SKIP_AUTH_AUTO_LOGIN on; the caller acts as the superuser.
	SourceAutoLogin Source = "auto-login"
)

// Principal is the authenticated caller of a request: the owner of the key it
// presented (or the configured superuser for SourceEnv and SourceAutoLogin).
type Principal struct {
	UserID, KeyID, KeyName string
	// Scopes restricts what the key may do; nil or empty means unrestricted.
	// It is shared with the verifier's cache: treat it as read-only.
	Scopes []string
	Source Source
}

// HasScope reports whether p may use scope: true when p.Scopes is empty (an
// unrestricted key, the env key or auto-login) or contains scope exactly.
func (p Principal) HasScope(scope string) bool {
	return len(p.Scopes) == 0 || slices.Contains(p.Scopes, scope)
}

// contextKey is a pointer-sized context key, as in net/http.
type contextKey struct{ name string }

func (k *contextKey) String() string { return "keyflow/middleware context value " + k.name }

var principalKey = &contextKey{"principal"}

// principalCtx carries the Principal by value inside the context itself, so
// attaching a principal costs one allocation (context.WithValue plus a boxed
// Principal would cost two).
type principalCtx struct {
	context.Context
	p Principal
}

func (c *principalCtx) Value(key any) any {
	if key == any(principalKey) {
		return &c.p
	}
	return c.Context.Value(key)
}

func (c *principalCtx) String() string {
	if s, ok := c.Context.(interface{ String() string }); ok {
		return s.String() + ".WithValue(middleware.Principal)"
	}
	return "context.WithValue(middleware.Principal)"
}

// NewContext returns a copy of ctx that carries p; FromContext returns it.
// This is what the middleware does after a key verifies, and it is also the
// helper for testing a handler without any key:
//
//	ctx := middleware.NewContext(context.Background(), middleware.Principal{UserID: "u1", Source: middleware.SourceDB})
func NewContext(ctx context.Context, p Principal) context.Context {
	if ctx == nil {
		ctx = context.Background()
	}
	return &principalCtx{Context: ctx, p: p}
}

// FromContext returns the principal the middleware (or NewContext) attached to
// ctx, and false when there is none: the route was skipped, the request was an
// OPTIONS request, or Optional mode let an anonymous request through.
// The returned Scopes slice is shared; do not modify it.
func FromContext(ctx context.Context) (Principal, bool) {
	if ctx == nil {
		return Principal{}, false
	}
	p, ok := ctx.Value(principalKey).(*Principal)
	if !ok {
		return Principal{}, false
	}
	return *p, true
}

// WithPrincipal returns a shallow copy of r whose context carries p, as if
// the middleware had authenticated it. Use it to test a host's handlers alone:
//
//	r := middleware.WithPrincipal(httptest.NewRequest("GET", "/", nil), middleware.Principal{UserID: "u1"})
//	handler.ServeHTTP(w, r)
func WithPrincipal(r *http.Request, p Principal) *http.Request {
	return r.WithContext(NewContext(r.Context(), p))
}

// UserID returns the user ID of the request's principal; ok is false when no
// principal is attached or its UserID is empty. It is an apikeyhttp.UserFunc
// (and a variableshttp.UserFunc) for handlers mounted behind the middleware.
func UserID(r *http.Request) (userID string, ok bool) {
	p, ok := r.Context().Value(principalKey).(*Principal)
	if !ok || p.UserID == "" {
		return "", false
	}
	return p.UserID, true
}
