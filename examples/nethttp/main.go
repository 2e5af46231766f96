// Command nethttp protects a plain net/http server with keyflow's API-key
// middleware and an in-memory key store: the smallest useful setup.
//
//	go run ./examples/nethttp
//	curl -H "x-api-key: <the key it prints>" http://127.0.0.1:8080/hello
//
// GET /health is public; GET /hello needs a key, from the x-api-key header
// or query parameter, and answers with the key's user.
package main

import (
	"context"
	"fmt"
	"log"
	"net/http"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/middleware"
)

func main() {
	keys, err := apikey.NewManager(apikey.Config{}) // an in-memory store
	if err != nil {
		log.Fatal(err)
	}
	defer keys.Close()

	// A real server creates keys through an API (see examples/server); here
	// one is made at start and shown once.
	key, _, err := keys.Create(context.Background(), "demo-user", "demo", apikey.CreateOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("API key for demo-user (shown once): %s\n", key)

	h, err := newHandler(keys)
	if err != nil {
		log.Fatal(err)
	}
	log.Print("listening on http://127.0.0.1:8080")
	log.Fatal(http.ListenAndServe("127.0.0.1:8080", h))
}

// newHandler returns the server's routes: /health open, /hello behind the
// API-key middleware.
func newHandler(keys *apikey.Manager) (http.Handler, error) {
	requireKey, err := middleware.New(middleware.Config{Verifier: keys})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("GET /hello", requireKey(http.HandlerFunc(hello)))
	return mux, nil
}

func hello(w http.ResponseWriter, r *http.Request) {
	p, _ := middleware.FromContext(r.Context()) // always there behind the middleware
	fmt.Fprintf(w, "hello, %s (key %q)\n", p.UserID, p.KeyName)
}
