package scopes

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/middleware"
	"github.com/stretchr/testify/assert"
)

// Unscoped is for routes no scope names: keys with scopes never pass.
func TestUnscoped(t *testing.T) {
	t.Parallel()
	h := Unscoped(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	for _, tc := range []struct {
		name string
		p    *apikey.Principal
		want int
	}{
		{"no principal", nil, http.StatusForbidden},
		{"unrestricted key", &apikey.Principal{UserID: "u"}, http.StatusTeapot},
		{"scoped key", &apikey.Principal{UserID: "u", Scopes: []string{"keys"}}, http.StatusForbidden},
		{"auto-login", &apikey.Principal{UserID: "su", Source: apikey.SourceAutoLogin}, http.StatusTeapot},
	} {
		r := httptest.NewRequest("GET", "/api/v1/users/", nil)
		if tc.p != nil {
			r = r.WithContext(middleware.NewContext(r.Context(), *tc.p))
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		assert.Equal(t, tc.want, w.Code, tc.name)
	}
}
