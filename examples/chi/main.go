// Command chi protects a chi router with keyflow's API-key middleware and
// gives routes scopes with middleware.RequireScope: a key created with scopes
// may call only the routes that require one of them; a key without scopes is
// unrestricted. It also mounts Langflow's key management API
// (apikey/apikeyhttp) under /api/v1/api_key/, behind the "keys" scope.
//
//	go run ./examples/chi
//	curl -H "x-api-key: <read key>" http://127.0.0.1:8080/items          # 200
//	curl -H "x-api-key: <read key>" -X POST http://127.0.0.1:8080/items  # 403
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"sync"

	"github.com/go-chi/chi/v5"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/apikey/apikeyhttp"
	"github.com/keyflow-dev/keyflow/middleware"
)

func main() {
	keys, err := apikey.NewManager(apikey.Config{}) // an in-memory store
	if err != nil {
		log.Fatal(err)
	}
	defer keys.Close()
	ctx := context.Background()
	for _, k := range []struct {
		name   string
		scopes []string
	}{{"reader", []string{"items:read"}}, {"writer", []string{"items:read", "items:write"}}} {
		key, _, err := keys.Create(ctx, "demo-user", k.name, apikey.CreateOptions{Scopes: k.scopes})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s key %v (shown once): %s\n", k.name, k.scopes, key)
	}
	r, err := newRouter(keys)
	if err != nil {
		log.Fatal(err)
	}
	log.Print("listening on http://127.0.0.1:8080")
	log.Fatal(http.ListenAndServe("127.0.0.1:8080", r))
}

// items is a tiny per-user in-memory list.
type items struct {
	mu     sync.Mutex
	byUser map[string][]string
}

// newRouter mounts the API behind the key middleware: GET /items needs
// items:read, POST /items needs items:write.
func newRouter(keys *apikey.Manager) (http.Handler, error) {
	requireKey, err := middleware.New(middleware.Config{Verifier: keys})
	if err != nil {
		return nil, err
	}
	keysAPI, err := apikeyhttp.New(apikeyhttp.Config{Manager: keys, User: middleware.FromRequest})
	if err != nil {
		return nil, err
	}
	store := &items{byUser: map[string][]string{}}
	r := chi.NewRouter()
	r.Get("/health", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	r.Group(func(r chi.Router) {
		r.Use(requireKey)
		r.With(middleware.RequireScope("items:read")).Get("/items", store.list)
		r.With(middleware.RequireScope("items:write")).Post("/items", store.add)
		// chi's Mount does not strip the prefix from r.URL.Path: strip it with
		// http.StripPrefix, as with ServeMux.
		r.With(middleware.RequireScope("keys")).Handle("/api/v1/api_key/*",
			http.StripPrefix("/api/v1/api_key", keysAPI))
	})
	return r, nil
}

func (s *items) list(w http.ResponseWriter, r *http.Request) {
	caller, _ := middleware.FromRequest(r)
	userID := caller.UserID
	s.mu.Lock()
	list := append([]string{}, s.byUser[userID]...)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, list)
}

func (s *items) add(w http.ResponseWriter, r *http.Request) {
	caller, _ := middleware.FromRequest(r)
	userID := caller.UserID
	var in struct {
		Name string `json:"name"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&in); err != nil || in.Name == "" {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"detail": "body must be {\"name\": \"...\"}"})
		return
	}
	s.mu.Lock()
	s.byUser[userID] = append(s.byUser[userID], in.Name)
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, in)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
