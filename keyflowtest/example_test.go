package keyflowtest_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/keyflowtest"
	"github.com/keyflow-dev/keyflow/middleware"
	"github.com/keyflow-dev/keyflow/variables"
)

// hello is the handler a downstream project tests.
func hello(w http.ResponseWriter, r *http.Request) {
	p, _ := middleware.FromContext(r.Context())
	fmt.Fprintf(w, "hello %s", p.UserID)
}

// exampleT stands in for the *testing.T a test function receives, so that
// the examples run: done runs what the helpers registered with Cleanup, as
// the testing package does when a test ends.
type exampleT struct {
	testing.TB
	cleanups []func()
}

func (t *exampleT) Helper()                        {}
func (t *exampleT) Cleanup(f func())               { t.cleanups = append(t.cleanups, f) }
func (t *exampleT) Errorf(format string, a ...any) { fmt.Printf(format+"\n", a...) }
func (t *exampleT) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }
func (t *exampleT) done() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
}

// The real stack in a test: a Manager in memory, a key, the middleware, and
// requests with the key in the header or the query.
func ExampleNewKey() {
	t := &exampleT{} // in a test: func TestHello(t *testing.T)
	defer t.done()
	keys := keyflowtest.NewManager(t)
	key := keyflowtest.NewKey(t, keys, "user-1", "flows:run")
	auth, _ := middleware.New(middleware.Config{Verifier: keys})
	h := auth(http.HandlerFunc(hello))

	for _, r := range []*http.Request{
		keyflowtest.WithKey(httptest.NewRequest("GET", "/hello", nil), key),
		keyflowtest.WithQueryKey(httptest.NewRequest("GET", "/hello", nil), key),
		httptest.NewRequest("GET", "/hello", nil),
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Println(w.Code, w.Body.String())
	}
	// Output:
	// 200 hello user-1
	// 200 hello user-1
	// 403 {"detail":"An API key must be passed as query or header"}
}

// A handler alone, as the middleware would call it.
func ExampleAsUser() {
	w := httptest.NewRecorder()
	hello(w, keyflowtest.AsUser(httptest.NewRequest("GET", "/hello", nil), "user-7"))
	fmt.Println(w.Body.String())
	// Output: hello user-7
}

// A fixed Verifier: the middleware's answers without a Manager, including
// the one for a key store that is down.
func ExampleVerifier() {
	for _, v := range []keyflowtest.Verifier{
		{Keys: map[string]apikey.Principal{"good-key": {UserID: "user-1"}}},
		{Err: apikey.ErrUnavailable},
	} {
		auth, _ := middleware.New(middleware.Config{Verifier: v})
		w := httptest.NewRecorder()
		auth(http.HandlerFunc(hello)).ServeHTTP(w, keyflowtest.WithKey(httptest.NewRequest("GET", "/", nil), "good-key"))
		fmt.Println(w.Code, w.Body.String())
	}
	// Output:
	// 200 hello user-1
	// 503 {"detail":"Authentication service unavailable"}
}

// Revoking a key: Manager.Delete takes the key's record ID, which
// NewKeyRecord returns, and the key is refused at once.
func ExampleNewKeyRecord() {
	t := &exampleT{} // in a test: func TestRevoke(t *testing.T)
	defer t.done()
	keys := keyflowtest.NewManager(t)
	key, rec := keyflowtest.NewKeyRecord(t, keys, "user-1")
	auth, _ := middleware.New(middleware.Config{Verifier: keys})
	h := auth(http.HandlerFunc(hello))

	send := func() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, keyflowtest.WithKey(httptest.NewRequest("GET", "/hello", nil), key))
		fmt.Println(w.Code, w.Body.String())
	}
	send()
	if err := keys.Delete(context.Background(), "user-1", rec.ID); err != nil {
		fmt.Println(err)
	}
	send()
	// Output:
	// 200 hello user-1
	// 403 {"detail":"Invalid or missing API key"}
}

// Variables resolved against a map instead of the process environment.
func ExampleNewVariables() {
	t := &exampleT{} // in a test: func TestRun(t *testing.T)
	defer t.done()
	ctx := context.Background()
	svc, res := keyflowtest.NewVariables(t, map[string]string{"SERPAPI_API_KEY": "serp-from-env"})
	_, _ = svc.Create(ctx, "user-1", variables.CreateInput{Name: "OPENAI_API_KEY", Value: "sk-stored"})

	out, _ := res.Resolve(ctx, "user-1", []variables.Field{
		{Name: "api_key", Variable: "OPENAI_API_KEY"},
		{Name: "serp", Variable: "SERPAPI_API_KEY"},
	}, nil)
	for _, f := range out {
		fmt.Println(f.Field, f.Layer, f.Value)
	}
	// Output:
	// api_key stored sk-stored
	// serp environment serp-from-env
}

// A downstream test of a 429: a key allowed 2 requests a minute, a clock
// moved by hand, no sleeping.
func ExampleNewLimitedKey() {
	t := &exampleT{} // in a test: func TestTooMany(t *testing.T)
	defer t.done()
	clock := keyflowtest.NewClock(time.Time{})
	keys := keyflowtest.NewManagerConfig(t, apikey.Config{Now: clock.Now})
	key := keyflowtest.NewLimitedKey(t, keys, "user-1", keyflowtest.RateLimits(t, "2/1m"))
	auth, _ := middleware.New(middleware.Config{Verifier: keys})
	h := auth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))

	get := func() *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, keyflowtest.WithKey(httptest.NewRequest("GET", "/", nil), key))
		return w
	}
	for range 3 {
		w := get()
		fmt.Printf("%d %s retry-after=%q\n", w.Code, w.Header().Get("RateLimit"), w.Header().Get("Retry-After"))
	}
	clock.Advance(time.Minute)
	fmt.Println(get().Code)
	// Output:
	// 200 "minute";r=1;t=60 retry-after=""
	// 200 "minute";r=0;t=60 retry-after=""
	// 429 "minute";r=0;t=60 retry-after="60"
	// 200
}

// ExampleNewLogger checks what a handler logs: here, that a rejected key
// never reaches the log.
func ExampleNewLogger() {
	log, logs := keyflowtest.NewLogger()
	key := "sk-not-a-real-key"
	log.Warn("request refused", "reason", "invalid API key")
	fmt.Println(strings.Contains(logs.String(), key), len(logs.Lines()))
	// Output: false 1
}
