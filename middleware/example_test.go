package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/middleware"
)

// show prints a response's status and body.
func show(h http.Handler, r *http.Request) {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	fmt.Println(w.Code, strings.TrimSpace(w.Body.String()))
}

// The in-memory setup for tests: a Manager over a memory store, a key, and
// the middleware, in three lines.
func Example() {
	ctx := context.Background()
	keys, _ := apikey.NewManager(apikey.Config{}) // nil Store: a memory store
	key, _, _ := keys.Create(ctx, "user-1", "test", apikey.CreateOptions{})
	auth, _ := middleware.New(middleware.Config{Verifier: keys})
	defer keys.Close()

	h := auth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := middleware.FromContext(r.Context())
		fmt.Fprintf(w, "hello %s (key %q, source %s)", p.UserID, p.KeyName, p.Source)
	}))

	r := httptest.NewRequest("POST", "/api/v1/run/flow", nil)
	r.Header.Set("x-api-key", key)
	show(h, r)
	show(h, httptest.NewRequest("POST", "/api/v1/run/flow", nil))
	show(h, httptest.NewRequest("POST", "/api/v1/run/flow?x-api-key=sk-wrong", nil))
	// Output:
	// 200 hello user-1 (key "test", source db)
	// 403 {"detail":"An API key must be passed as query or header"}
	// 403 {"detail":"Invalid or missing API key"}
}

// Plain http.ServeMux with Go 1.22 patterns: protect the API, keep /health
// public. The key given in the query never reaches the handler's URL.
func Example_serveMux() {
	keys, _ := apikey.NewManager(apikey.Config{})
	defer keys.Close()
	key, _, _ := keys.Create(context.Background(), "user-1", "ci", apikey.CreateOptions{})
	auth, _ := middleware.New(middleware.Config{Verifier: keys})

	api := http.NewServeMux()
	api.HandleFunc("POST /api/v1/run/{flow_id}", func(w http.ResponseWriter, r *http.Request) {
		p, _ := middleware.FromRequest(r)
		fmt.Fprintf(w, "run %s for %s, query %q", r.PathValue("flow_id"), p.UserID, r.URL.RawQuery)
	})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.Handle("/api/", auth(api))

	show(mux, httptest.NewRequest("GET", "/health", nil))
	// Langflow documentation's own example, with a '?' typed for '&'.
	show(mux, httptest.NewRequest("POST", "/api/v1/run/FLOW_ID?x-api-key="+key+"?stream=false", nil))
	// Output:
	// 200 ok
	// 200 run FLOW_ID for user-1, query "stream=false"
}

// Testing a host's handler alone: attach a principal without any key.
func ExampleNewContext() {
	myHandler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := middleware.FromContext(r.Context())
		if !ok {
			http.Error(w, "no principal", http.StatusForbidden)
			return
		}
		fmt.Fprintf(w, "flows of %s", p.UserID)
	})

	r := httptest.NewRequest("GET", "/api/v1/flows/", nil)
	r = r.WithContext(middleware.NewContext(r.Context(), apikey.Principal{UserID: "user-1", Source: apikey.SourceDB}))
	show(myHandler, r)
	// Output:
	// 200 flows of user-1
}

// A key created with scopes reaches only the routes that require one of them;
// a key without scopes reaches everything.
func ExampleRequireScope() {
	ctx := context.Background()
	keys, _ := apikey.NewManager(apikey.Config{})
	defer keys.Close()
	reader, _, _ := keys.Create(ctx, "user-1", "read-only", apikey.CreateOptions{Scopes: []string{"flows:read"}})
	admin, _, _ := keys.Create(ctx, "user-1", "admin", apikey.CreateOptions{})
	auth, _ := middleware.New(middleware.Config{Verifier: keys})

	mux := http.NewServeMux()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "done") })
	mux.Handle("GET /flows", middleware.RequireScope("flows:read")(ok))
	mux.Handle("DELETE /flows", middleware.RequireScope("flows:write")(ok))
	h := auth(mux)

	for _, c := range []struct{ method, key string }{{"GET", reader}, {"DELETE", reader}, {"DELETE", admin}} {
		r := httptest.NewRequest(c.method, "/flows", nil)
		r.Header.Set("x-api-key", c.key)
		show(h, r)
	}
	// Output:
	// 200 done
	// 403 {"detail":"API key lacks the required scope \"flows:write\""}
	// 200 done
}

// Langflow's environment: LANGFLOW_API_KEY_SOURCE=env makes LANGFLOW_API_KEY
// act as the superuser; other keys still go to the store.
func ExampleConfigFromEnv() {
	env := map[string]string{
		"LANGFLOW_AUTO_LOGIN":     "false",
		"LANGFLOW_API_KEY_SOURCE": "env",
		"LANGFLOW_API_KEY":        "shared-deploy-key",
	}
	cfg, err := middleware.ConfigFromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		fmt.Println(err)
		return
	}
	keys, _ := apikey.NewManager(apikey.Config{})
	defer keys.Close()
	cfg.Verifier = keys
	cfg.Superuser = apikey.Principal{UserID: "langflow-superuser-id"}
	auth, _ := middleware.New(cfg)

	h := auth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := middleware.FromContext(r.Context())
		fmt.Fprintf(w, "%s via %s", p.UserID, p.Source)
	}))
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("x-api-key", "shared-deploy-key")
	show(h, r)

	_, err = middleware.ConfigFromEnv(func(k string) (string, bool) {
		v, ok := map[string]string{"LANGFLOW_API_KEY_SOURCE": "vault"}[k]
		return v, ok
	})
	fmt.Println(err)
	// Output:
	// 200 langflow-superuser-id via env
	// middleware: LANGFLOW_API_KEY_SOURCE must be "db" or "env", got "vault"
}

// A custom error handler: 401 with WWW-Authenticate for a missing key, the
// default answers for everything else. The reason is a sentinel error.
func ExampleConfig_errorHandler() {
	keys, _ := apikey.NewManager(apikey.Config{})
	defer keys.Close()
	auth, _ := middleware.New(middleware.Config{
		Verifier: keys,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			switch {
			case errors.Is(err, middleware.ErrNoKey):
				w.Header().Set("WWW-Authenticate", `ApiKey header="x-api-key"`)
				http.Error(w, "send an API key", http.StatusUnauthorized)
			case errors.Is(err, apikey.ErrExpired):
				http.Error(w, "your key expired: create a new one", http.StatusUnauthorized)
			default:
				middleware.DefaultErrorHandler(w, r, err)
			}
		},
	})
	h := auth(http.NotFoundHandler())
	show(h, httptest.NewRequest("GET", "/", nil))
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("x-api-key", "sk-nope")
	show(h, r)
	// Output:
	// 401 send an API key
	// 403 {"detail":"Invalid or missing API key"}
}

// Optional mode for public routes that do more for callers who authenticate.
func ExampleConfig_optional() {
	keys, _ := apikey.NewManager(apikey.Config{})
	defer keys.Close()
	key, _, _ := keys.Create(context.Background(), "user-1", "k", apikey.CreateOptions{})
	auth, _ := middleware.New(middleware.Config{Verifier: keys, Optional: true})
	h := auth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, ok := middleware.FromRequest(r); ok {
			fmt.Fprintf(w, "public page, personalised for %s", p.UserID)
			return
		}
		io.WriteString(w, "public page")
	}))
	show(h, httptest.NewRequest("GET", "/", nil))
	show(h, httptest.NewRequest("GET", "/?x-api-key="+key, nil))
	// Output:
	// 200 public page
	// 200 public page, personalised for user-1
}

// Only real CORS preflights pass without a key (OptionsPreflight, the
// default): a bare OPTIONS request is authenticated like any other method.
func ExampleOptionsPolicy() {
	keys, _ := apikey.NewManager(apikey.Config{})
	defer keys.Close()
	auth, _ := middleware.New(middleware.Config{Verifier: keys})
	h := auth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "reached") }))

	preflight := httptest.NewRequest("OPTIONS", "/admin/export", nil)
	preflight.Header.Set("Origin", "https://app.example")
	preflight.Header.Set("Access-Control-Request-Method", "POST")
	show(h, preflight)
	show(h, httptest.NewRequest("OPTIONS", "/admin/export", nil))
	// Output:
	// 200 reached
	// 403 {"detail":"An API key must be passed as query or header"}
}
