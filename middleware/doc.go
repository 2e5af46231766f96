// Package middleware authenticates net/http requests with keyflow API keys,
// answering exactly as Langflow's API does (see
// docs/langflow-compatibility.md#authentication-errors), and hands the
// next handler the caller as a Principal in the request context.
//
// New validates a Config and returns a func(http.Handler) http.Handler, so it
// works with http.ServeMux (Go 1.22 patterns and PathValue included), chi,
// and anything else built on net/http:
//
//	keys, _ := apikey.NewManager(apikey.Config{Store: store})
//	auth, err := middleware.New(middleware.Config{Verifier: keys})
//	mux.Handle("/api/", auth(api))
//
// and in the handler:
//
//	p, ok := middleware.FromContext(r.Context()) // an apikey.Principal: UserID, KeyID, KeyName, Scopes, Source
//
// The Principal is apikey.Principal: the one type that apikey.Manager.Verify
// returns, that the middleware puts in the context, and that a UserFunc
// (FromRequest behind this middleware) gives the handlers of packages
// apikeyhttp and variableshttp.
//
// The package is named middleware. A project that also imports chi's
// middleware package (or another one of that name) names one of them:
//
//	import kfmw "github.com/keyflow-dev/keyflow/middleware"
//
// # Keys
//
// By default the key is read from the query parameter x-api-key, then the
// header x-api-key; the query wins when both are present, as in Langflow. A
// repeated query parameter counts with its last value (Starlette's reading),
// a repeated header with its first. Config.Extractors changes the sources
// (FromQuery, FromHeader, and the opt-in FromBearer for "Authorization:
// Bearer"). A raw '?' inside the query value ends the key, so Langflow's
// documented "/api/v1/run/FLOW_ID?x-api-key=API_KEY?stream=false" works and
// the handler still sees stream=false. Before calling the next handler the
// middleware removes every x-api-key parameter (whatever its value, also one
// written after a raw '?') and every parameter holding the key from a copy of
// the request (URL, URL.RawQuery and RequestURI), so handlers and access logs
// downstream never see it; the caller's request is not modified, and a
// request without any costs no URL copy.
//
// # Answers
//
// With the default error handler (DefaultErrorHandler), every answer is
// FastAPI-shaped JSON {"detail": "..."}:
//
//	no key (auto-login off)                        403 An API key must be passed as query or header
//	no key (AutoLogin on, SkipAuthAutoLogin off)   403 Since v1.5, LANGFLOW_AUTO_LOGIN requires a valid API key. ...
//	wrong, unknown, revoked, expired, inactive     403 Invalid or missing API key (one answer for all)
//	key store unavailable                          503 Authentication service unavailable (cause logged, fail closed)
//	limited key over its rate limit                429 API key rate limit exceeded (Retry-After: the window's end)
//	limited key over its quota                     429 API key quota exhausted (Retry-After: the next refill, else a day)
//
// Config.ErrorHandler replaces these answers; it receives the reason as an
// error to test with errors.Is: ErrNoKey (ErrAutoLoginNoKey wraps it),
// apikey.ErrInvalid, apikey.ErrExpired, apikey.ErrInactive or
// apikey.ErrUnavailable. Config.OnFailure sees every failure too, for rate
// limiting or audit. Neither is ever given the key, and no log line contains
// one.
//
// # Langflow modes
//
// (See docs/langflow-compatibility.md#auto-login-and-the-environment-key.)
// ConfigFromEnv reads LANGFLOW_AUTO_LOGIN, LANGFLOW_SKIP_AUTH_AUTO_LOGIN,
// LANGFLOW_API_KEY_SOURCE and LANGFLOW_API_KEY (booleans as Langflow reads
// them: unset is the default, an empty value an error). With AutoLogin and
// SkipAuthAutoLogin a request without a key acts as Config.Superuser (Source
// SourceAutoLogin; Langflow's deprecation warning is logged once); with
// AutoLogin alone it is refused with Langflow's auto-login message; a request
// that does carry a key is always checked. With EnvKey (source "env") a key
// equal to LANGFLOW_API_KEY, compared in constant time, acts as the
// superuser (SourceEnv); any other key goes to the store.
//
// # Routes
//
// CORS preflights (OPTIONS with an Access-Control-Request-Method header)
// pass unauthenticated, as browsers send them without a key; any other
// OPTIONS request is authenticated (Config.OptionsPolicy: OptionsPreflight by
// default, OptionsAll, OptionsAuthenticate). Any client can send that header,
// so a handler must not act on OPTIONS as on GET: register it with a method
// pattern ("GET /admin/export"), or check that FromRequest found a principal. Config.Skip exempts routes
// (health checks); Config.Optional attaches a principal when a valid key is
// present and never rejects. RequireScope restricts a route to keys that have
// a scope (a key without scopes is unrestricted) and answers 403 otherwise;
// apikeyhttp lets a key with scopes create only keys within them.
//
// # Usage limits
//
// With an *apikey.Manager as Verifier (a Charger), a key with usage limits
// (apikey.Limits) is charged Config.Cost units per request (1 by default),
// and every response to it carries the RateLimit-Policy and RateLimit
// header fields of draft-ietf-httpapi-ratelimit-headers (SetRateLimitHeaders
// writes them), set before the next handler runs:
//
//	RateLimit-Policy: "minute";q=100;w=60, "quota";q=10000;w=2678400
//	RateLimit: "minute";r=42;t=17, "quota";r=9958;t=1234567
//
// A key over its budget is answered 429 as above, with Retry-After and the
// same fields. A request the next handler fails (a status of 500 or more,
// or a panic before it answered) gets its quota back
// (apikey.Manager.Refund); its rate-limit units are not refunded. A client
// cannot earn a refund by hanging up mid-answer; answer a client's own
// mistakes with 4xx, since every 5xx refunds. Keys without limits get no fields and pay
// nothing: the charge of an unlimited key is a nil check.
//
// # Testing handlers behind the middleware
//
// To test a handler alone, attach a principal without any key with
// NewContext (keyflowtest.AsUser does the same in one call):
//
//	r := httptest.NewRequest("GET", "/", nil)
//	r = r.WithContext(middleware.NewContext(r.Context(), apikey.Principal{UserID: "u1"}))
//
// To test through the real
// middleware, an in-memory setup takes three lines:
//
//	keys, _ := apikey.NewManager(apikey.Config{}) // memory store
//	key, _, _ := keys.Create(ctx, "user-1", "test", apikey.CreateOptions{})
//	auth, _ := middleware.New(middleware.Config{Verifier: keys})
//
// then send requests to auth(handler) with the header "x-api-key: "+key, and
// defer keys.Close().
//
// # Cost
//
// On a warm apikey.Manager cache a request with a header key costs two
// allocations beyond the bare handler: the context (which holds the
// Principal itself) and the shallow request copy. A query key adds the URL
// copy and the rebuilt query strings. See BENCHMARKS.md.
package middleware
