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

// NewContext returns a copy of ctx that carries p; FromContext reads it
// back. NewContext and FromContext are the one pair for the principal: the
// middleware calls NewContext after a key verifies, and a test (or a host
// that authenticates by other means, such as a session cookie) calls it to
// attach a principal without any key:
//
//	r = r.WithContext(middleware.NewContext(r.Context(), apikey.Principal{UserID: "u1", Source: apikey.SourceDB}))
//
// (keyflowtest.AsUser is that line for a key's owner.)
func NewContext(ctx context.Context, p apikey.Principal) context.Context {
	if ctx == nil {
		ctx = context.Background()
	}
	return &principalCtx{Context: ctx, p: p}
}

// FromContext returns the principal that NewContext (or the middleware)
// attached to ctx. ok is false when there is none (the route was skipped,
// the request was a CORS preflight, or Optional mode let an anonymous
// request through) and when the attached principal has an empty UserID,
// which stands for nobody. The returned Scopes slice is shared; do not
// modify it.
func FromContext(ctx context.Context) (apikey.Principal, bool) {
	if ctx == nil {
		return apikey.Principal{}, false
	}
	p, ok := ctx.Value(principalKey).(*apikey.Principal)
	if !ok || p.UserID == "" {
		return apikey.Principal{}, false
	}
	return *p, true
}

// FromRequest is FromContext(r.Context()), with exactly its result. It is
// the UserFunc to give the handlers of apikeyhttp and variableshttp when
// they are mounted behind the middleware.
func FromRequest(r *http.Request) (apikey.Principal, bool) {
	return FromContext(r.Context())
}
