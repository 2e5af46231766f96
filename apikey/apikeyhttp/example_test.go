package apikeyhttp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/apikey/apikeyhttp"
	"github.com/keyflow-dev/keyflow/middleware"
)

func call(h http.Handler, method, target, key, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	if key != "" {
		r.Header.Set("x-api-key", key)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// Mount the handlers at Langflow's path behind the middleware, on a plain
// http.ServeMux; the current user is the key's owner (middleware.FromRequest).
func Example() {
	keys, _ := apikey.NewManager(apikey.Config{})
	defer keys.Close()
	bootstrap, _, _ := keys.Create(context.Background(), "user-1", "CLI", apikey.CreateOptions{})
	auth, _ := middleware.New(middleware.Config{Verifier: keys})

	h, err := apikeyhttp.New(apikeyhttp.Config{Manager: keys, User: middleware.FromRequest})
	if err != nil {
		fmt.Println(err)
		return
	}
	mux := http.NewServeMux()
	mux.Handle("/api/v1/api_key/", auth(http.StripPrefix("/api/v1/api_key", h)))

	// Create: 200 with the key, shown this once.
	w := call(mux, "POST", "/api/v1/api_key/", bootstrap, `{"name": "deploy"}`)
	var created struct {
		APIKey string `json:"api_key"`
	}
	_ = json.Unmarshal(w.Body.Bytes(), &created)
	fmt.Println("create:", w.Code, strings.HasPrefix(created.APIKey, "sk-"), len(created.APIKey))

	// List: masked keys.
	w = call(mux, "GET", "/api/v1/api_key/", created.APIKey, "")
	var list struct {
		TotalCount int `json:"total_count"`
		APIKeys    []struct {
			Name   string `json:"name"`
			APIKey string `json:"api_key"`
			ID     string `json:"id"`
		} `json:"api_keys"`
	}
	_ = json.Unmarshal(w.Body.Bytes(), &list)
	fmt.Println("list:", w.Code, list.TotalCount)
	var deployID string
	sort.Slice(list.APIKeys, func(i, j int) bool { return list.APIKeys[i].Name < list.APIKeys[j].Name })
	for _, k := range list.APIKeys {
		fmt.Println(" ", k.Name, k.APIKey[:3], strings.Count(k.APIKey, "*"))
		if k.Name == "deploy" {
			deployID = k.ID
		}
	}

	// Delete (revoke): the key stops working at once.
	w = call(mux, "DELETE", "/api/v1/api_key/"+deployID, bootstrap, "")
	fmt.Println("delete:", w.Code, strings.TrimSpace(w.Body.String()))
	w = call(mux, "GET", "/api/v1/api_key/", created.APIKey, "")
	fmt.Println("revoked key:", w.Code, strings.TrimSpace(w.Body.String()))
	// Output:
	// create: 200 true 46
	// list: 200 2
	//   CLI sk- 38
	//   deploy sk- 38
	// delete: 200 {"detail":"API Key deleted"}
	// revoked key: 403 {"detail":"Invalid or missing API key"}
}

// A key limited to scopes can create keys only within those scopes: it cannot
// mint an unrestricted key.
func ExampleConfig_scopes() {
	ctx := context.Background()
	keys, _ := apikey.NewManager(apikey.Config{})
	defer keys.Close()
	ci, _, _ := keys.Create(ctx, "user-1", "ci", apikey.CreateOptions{Scopes: []string{"keys", "run"}})
	auth, _ := middleware.New(middleware.Config{Verifier: keys})
	h, _ := apikeyhttp.New(apikeyhttp.Config{Manager: keys, User: middleware.FromRequest})
	srv := auth(h)

	w := call(srv, "POST", "/", ci, `{"name": "runner", "scopes": ["run"]}`)
	fmt.Println(w.Code)
	w = call(srv, "POST", "/", ci, `{"name": "anything"}`)
	fmt.Println(w.Code, strings.TrimSpace(w.Body.String()))
	// Output:
	// 200
	// 403 {"detail":"An API key with scopes can only create keys with a subset of its scopes"}
}

// Behind a host's own authentication (sessions, JWT, …): give New a
// middleware.UserFunc that reads the host's user.
func ExampleNew_ownAuthentication() {
	keys, _ := apikey.NewManager(apikey.Config{})
	defer keys.Close()
	type userKey struct{}
	current := func(r *http.Request) (apikey.Principal, bool) {
		id, ok := r.Context().Value(userKey{}).(string)
		return apikey.Principal{UserID: id, Source: "session"}, ok
	}
	keysHandler, _ := apikeyhttp.New(apikeyhttp.Config{Manager: keys, User: current})
	h := http.StripPrefix("/api/v1/api_key", keysHandler)

	w := call(h, "GET", "/api/v1/api_key/", "", "")
	fmt.Println(w.Code, strings.TrimSpace(w.Body.String()))

	r := httptest.NewRequest("GET", "/api/v1/api_key/", nil)
	r = r.WithContext(context.WithValue(r.Context(), userKey{}, "user-7"))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	fmt.Println(rec.Code, strings.TrimSpace(rec.Body.String()))
	// Output:
	// 401 {"detail":"Not authenticated"}
	// 200 {"total_count":0,"user_id":"user-7","api_keys":[]}
}
