package middleware

import (
	"context"
	"net/http"

	"github.com/keyflow-dev/keyflow/apikey"
)

// UserFunc tells a handler who the current caller is. ok false (or a
// Principal with an empty UserID) means nobody: the handlers of packages
// apikeyhttp and variableshttp then answer 401. FromRequest is one, for
// handlers mounted behind New's middleware; a host that authenticates by
// other means (a session cookie) writes its own.
type UserFunc func(r *http.Request) (p apikey.Principal, ok bool)

// contextKey is a pointer-sized context key, as in net/http.
type contextKey struct{ name string }

func (k *contextKey) String() string { return "keyflow/middleware context value " + k.name }

var principalKey = &contextKey{"principal"}

// principalCtx carries the Principal by value inside the context itself, so
// attaching a principal costs one allocation (context.WithValue plus a boxed
// Principal would cost two).
type principalCtx struct {
	context.Context
	p apikey.Principal
}

func (c *principalCtx) Value(key any) any {
	if key == any(principalKey) {
		return &c.p
	}
	return c.Context.Value(key)
}

func (c *principalCtx) String() string {
	if s, ok := c.Context.(interface{ String() string }); ok {
		return s.String() + ".WithValue(apikey.Principal)"
	}
	return "context.WithValue(apikey.Principal)"
}

// NewContext returns a copy of ctx that carries p; FromContext returns it.
// This is what the middleware does after a key verifies, and it is also the
// helper for testing a handler without any key:
//
//	ctx := middleware.NewContext(context.Background(), apikey.Principal{UserID: "u1", Source: apikey.SourceDB})
func NewContext(ctx context.Context, p apikey.Principal) context.Context {
	if ctx == nil {
		ctx = context.Background()
	}
	return &principalCtx{Context: ctx, p: p}
}

// FromContext returns the principal the middleware (or NewContext) attached to
// ctx, and false when there is none: the route was skipped, the request was a
// CORS preflight, or Optional mode let an anonymous request through.
// The returned Scopes slice is shared; do not modify it.
func FromContext(ctx context.Context) (apikey.Principal, bool) {
	if ctx == nil {
		return apikey.Principal{}, false
	}
	p, ok := ctx.Value(principalKey).(*apikey.Principal)
	if !ok {
		return apikey.Principal{}, false
	}
	return *p, true
}

// FromRequest returns the principal of r's context, as FromContext; ok is
// false when none is attached or its UserID is empty. It is the UserFunc for
// handlers mounted behind the middleware.
func FromRequest(r *http.Request) (apikey.Principal, bool) {
	p, ok := FromContext(r.Context())
	if !ok || p.UserID == "" {
		return apikey.Principal{}, false
	}
	return p, true
}

// WithPrincipal returns a shallow copy of r whose context carries p, as if
// the middleware had authenticated it. Use it to test a host's handlers alone:
//
//	r := middleware.WithPrincipal(httptest.NewRequest("GET", "/", nil), apikey.Principal{UserID: "u1"})
//	handler.ServeHTTP(w, r)
func WithPrincipal(r *http.Request, p apikey.Principal) *http.Request {
	return r.WithContext(NewContext(r.Context(), p))
}
