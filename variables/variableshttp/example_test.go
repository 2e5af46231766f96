package variableshttp_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/middleware"
	"github.com/keyflow-dev/keyflow/secrets"
	"github.com/keyflow-dev/keyflow/variables"
	"github.com/keyflow-dev/keyflow/variables/variableshttp"
)

// Mount the handlers at Langflow's path behind the API-key middleware; the
// current user is the key's owner (middleware.UserID).
func Example() {
	ctx := context.Background()
	keys, _ := apikey.NewManager(apikey.Config{})
	defer keys.Close()
	key, _, _ := keys.Create(ctx, "user-1", "CLI", apikey.CreateOptions{})
	auth, _ := middleware.New(middleware.Config{Verifier: keys})

	k, _ := secrets.NewKeyring("my-master-secret-0123456789-abcdefgh")
	svc, _ := variables.NewService(variables.ServiceConfig{Keyring: k})

	mux := http.NewServeMux()
	h, _ := variableshttp.New(variableshttp.Config{Service: svc, User: middleware.FromRequest})
	mux.Handle("/api/v1/variables/", auth(http.StripPrefix("/api/v1/variables", h)))

	call := func(method, body string) {
		r := httptest.NewRequest(method, "/api/v1/variables/", strings.NewReader(body))
		r.Header.Set("x-api-key", key)
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		fmt.Println(w.Code, strings.Contains(w.Body.String(), `"value":null`), strings.Contains(w.Body.String(), "sk-abc"))
	}
	call("POST", `{"name": "OPENAI_API_KEY", "value": "sk-abc", "default_fields": []}`) // a Credential by default
	call("GET", "")                                                                     // its value is never sent back
	// Output:
	// 201 true false
	// 200 true false
}
