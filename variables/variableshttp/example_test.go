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

// Mount Langflow's /api/v1/variables/ behind the key middleware: the caller
// is the key's owner, Credential values never come back.
func Example() {
	ctx := context.Background()
	keyring, _ := secrets.NewKeyring("an-example-master-secret-of-32-chars!")
	svc, _ := variables.NewService(variables.ServiceConfig{Keyring: keyring}) // memory store
	keys, _ := apikey.NewManager(apikey.Config{})
	defer keys.Close()
	key, _, _ := keys.Create(ctx, "user-1", "CLI", apikey.CreateOptions{})

	auth, _ := middleware.New(middleware.Config{Verifier: keys})
	h, err := variableshttp.New(variableshttp.Config{Service: svc, User: middleware.FromRequest})
	if err != nil {
		fmt.Println(err)
		return
	}
	mux := http.NewServeMux()
	mux.Handle("/api/v1/variables/", auth(http.StripPrefix("/api/v1/variables", h)))

	send := func(method, body string) {
		r := httptest.NewRequest(method, "/api/v1/variables/", strings.NewReader(body))
		r.Header.Set("x-api-key", key)
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		out := w.Body.String()
		if i := strings.Index(out, `"id":"`); i >= 0 { // ids are random
			out = out[:i+6] + "…" + out[i+6+36:]
		}
		fmt.Println(w.Code, strings.TrimSpace(out))
	}
	send("POST", `{"name": "OPENAI_API_KEY", "value": "sk-secret", "default_fields": ["OpenAI", "api_key"]}`)
	send("POST", `{"name": "OPENAI\u200b_API_KEY", "value": "look-alike"}`)
	// Output:
	// 201 {"id":"…","name":"OPENAI_API_KEY","type":"Credential","value":null,"default_fields":["OpenAI","api_key"]}
	// 400 {"detail":"Variable name must be at most 255 bytes of valid UTF-8 without control, invisible or bidirectional characters (name holds the invisible or control character U+200B)"}
}
