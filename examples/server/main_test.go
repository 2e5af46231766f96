package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/examples/server/internal/webui"
)

// The HTTP API in this process, without a browser: routes, the UI session,
// same-origin checks, flow validation.
func TestHandler(t *testing.T) {
	a, srv, echo := startApp(t, true)
	key, _, err := a.Keys.Create(context.Background(), a.Superuser.ID, "test", apikey.CreateOptions{})
	require.NoError(t, err)

	// The UI page sets the session cookie, which then works for management
	// endpoints but not for /run.
	res, err := http.Get(srv.URL + "/")
	require.NoError(t, err)
	_ = res.Body.Close()
	require.Equal(t, 200, res.StatusCode)
	assert.Contains(t, res.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'")
	var session *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == webui.SessionCookie {
			session = c
		}
	}
	require.NotNil(t, session)
	assert.True(t, session.HttpOnly)
	assert.Equal(t, http.SameSiteStrictMode, session.SameSite)

	tests := []struct {
		name, method, path, body string
		headers                  []string
		cookie                   *http.Cookie
		wantCode                 int
		wantBody                 string
	}{
		{"health", "GET", "/health", "", nil, nil, 200, `{"status":"ok"}`},
		{"static", "GET", "/static/app.css", "", nil, nil, 200, ""},
		{"unknown API path", "GET", "/api/v1/nope", "", nil, nil, 404, `{"detail":"Not Found"}`},
		{"keys with the UI session", "GET", "/api/v1/api_key/", "", nil, session, 200, ""},
		{"keys with a forged session", "GET", "/api/v1/api_key/", "", nil, &http.Cookie{Name: webui.SessionCookie, Value: "forged"}, 403, ""},
		{"keys without anything", "GET", "/api/v1/api_key/", "", nil, nil, 403, `{"detail":"` + msgAutoLoginNoKey + `"}`},
		{"run with the UI session only", "POST", "/api/v1/run/" + echo.ID, seedBody, nil, session, 403, `{"detail":"` + msgAutoLoginNoKey + `"}`},
		{"run with a key", "POST", "/api/v1/run/" + echo.ID, seedBody, []string{"x-api-key", key}, nil, 200, ""},
		{"run without a body", "POST", "/api/v1/run/" + echo.ID, "", []string{"x-api-key", key}, nil, 200, ""},
		{"run with a list tweak", "POST", "/api/v1/run/" + echo.ID, `{"tweaks":{"api_key":[1]}}`, []string{"x-api-key", key}, nil, 422, ""},
		{"cross-site create", "POST", "/api/v1/api_key/", `{"name":"x"}`, []string{"Sec-Fetch-Site", "cross-site"}, session, 403, `{"detail":"Cross-origin request refused"}`},
		{"same-origin create", "POST", "/api/v1/api_key/", `{"name":"x"}`, []string{"Sec-Fetch-Site", "same-origin"}, session, 200, ""},
		{"flow without a name", "POST", "/api/v1/flows/", `{"fields":{}}`, []string{"x-api-key", key}, nil, 400, `{"detail":"Flow name cannot be empty"}`},
		{"flow field with both", "POST", "/api/v1/flows/", `{"name":"f","fields":{"k":{"variable":"A","value":"b"}}}`, []string{"x-api-key", key}, nil, 400,
			`{"detail":"Field 'k': set either a variable or a value, not both"}`},
		{"flow", "POST", "/api/v1/flows/", `{"name":"f","fields":{"k":{"value":"literal-value"}}}`, []string{"x-api-key", key}, nil, 201, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, body)
			require.NoError(t, err)
			for i := 0; i+1 < len(tt.headers); i += 2 {
				req.Header.Set(tt.headers[i], tt.headers[i+1])
			}
			if tt.cookie != nil {
				req.AddCookie(tt.cookie)
			}
			res, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer res.Body.Close()
			b, err := io.ReadAll(res.Body)
			require.NoError(t, err)
			assert.Equal(t, tt.wantCode, res.StatusCode, string(b))
			if tt.wantBody != "" {
				assert.JSONEq(t, tt.wantBody, string(b))
			}
			assert.NotContains(t, string(b), "literal-value")
		})
	}
}
