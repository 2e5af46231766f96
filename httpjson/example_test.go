package httpjson_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/keyflow-dev/keyflow/httpjson"
)

// A server's own handler, mounted beside apikeyhttp and variableshttp,
// answers as they do: malformed bodies get 422 {"detail": ...}.
func Example() {
	rename := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Name string `json:"name"`
		}
		if !httpjson.Decode(w, r, &in) {
			return // Decode has answered
		}
		if in.Name == "" {
			httpjson.Detail(w, http.StatusBadRequest, "Name cannot be empty")
			return
		}
		httpjson.Write(w, http.StatusOK, map[string]string{"name": in.Name})
	})
	for _, body := range []string{`{"name":"flows"}`, `{"name":""}`, `{"name":`, `{"name":1}`} {
		w := httptest.NewRecorder()
		rename.ServeHTTP(w, httptest.NewRequest("PATCH", "/thing", strings.NewReader(body)))
		fmt.Print(w.Code, " ", w.Body.String())
	}
	// Output:
	// 200 {"name":"flows"}
	// 400 {"detail":"Name cannot be empty"}
	// 422 {"detail":"Malformed JSON body: unexpected end of input"}
	// 422 {"detail":"Invalid type for field 'name': expected string"}
}
