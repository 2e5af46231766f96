package middleware_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/middleware"
)

const fuzzKey = "sk-fuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzzfu"

// oneKey accepts fuzzKey only.
type oneKey struct{}

func (oneKey) Verify(_ context.Context, key string) (apikey.Principal, error) {
	if key == fuzzKey {
		return apikey.Principal{UserID: "u", KeyID: "k", KeyName: "fuzz", Scopes: []string{"s"}}, nil
	}
	return apikey.Principal{}, apikey.ErrInvalid
}

// oracleKey is an independent reading of Langflow's rule (Starlette keeps the
// last value of a repeated query parameter; an empty one means no query key)
// with the '?' typo of Langflow's documented curl command: the last x-api-key query value (decoded with
// net/url when it decodes, cut at a raw '?'), unless empty, else the header.
func oracleKey(rawQuery, header string) string {
	last := ""
	for _, seg := range strings.Split(rawQuery, "&") {
		name, v, _ := strings.Cut(seg, "=")
		n, err := url.QueryUnescape(name)
		if err != nil || n != "x-api-key" {
			continue
		}
		v, _, _ = strings.Cut(v, "?")
		if d, err := url.QueryUnescape(v); err == nil {
			v = d
		}
		last = v
	}
	if last != "" {
		return last
	}
	return header
}

// FuzzMiddleware feeds arbitrary x-api-key headers and raw queries: the
// middleware never panics, passes exactly when the key that rule selects is the
// valid one, hands over the right principal, and leaves no x-api-key
// parameter and no parameter holding the key, even after a raw '?', in the
// URL the next handler sees.
func FuzzMiddleware(f *testing.F) {
	for _, s := range [][2]string{
		{"", ""},
		{fuzzKey, ""},
		{"", "x-api-key=" + fuzzKey},
		{"", "x-api-key=" + fuzzKey + "?stream=false"},
		{fuzzKey, "x-api-key=wrong"},
		{"wrong", "x-api-key=" + fuzzKey + "&x-api-key=wrong"},
		{"wrong", "x-api-key=wrong&x-api-key=" + fuzzKey},
		{"", "x-api-key=" + fuzzKey + "&stream=false?x-api-key=" + fuzzKey},
		{fuzzKey, "x-api-key=" + fuzzKey + "&x-api-key="},
		{fuzzKey, "x-api-key=&stream=false"},
		{"", "x%2dapi-key=sk%2Dfuzz" + fuzzKey[7:] + "&a=%zz"},
		{"", "x-api-key=%"},
		{"", "a=" + fuzzKey + "&x-api-key=" + fuzzKey + "??&&"},
		{"\x00", "x-api-key=+" + fuzzKey},
	} {
		f.Add(s[0], s[1])
	}
	mw, err := middleware.New(middleware.Config{Verifier: oneKey{}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, header, rawQuery string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.URL.RawQuery = rawQuery
		r.RequestURI = "/?" + rawQuery
		if header != "" {
			r.Header["X-Api-Key"] = []string{header}
		}
		var called bool
		var got apikey.Principal
		var gotOK bool
		var gotQuery, gotURI string
		w := httptest.NewRecorder()
		mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			called = true
			got, gotOK = middleware.FromContext(r.Context())
			gotQuery, gotURI = r.URL.RawQuery, r.RequestURI
		})).ServeHTTP(w, r)

		want := oracleKey(rawQuery, header) == fuzzKey
		if called != want {
			t.Fatalf("header %q query %q: passed=%v, want %v (status %d)", header, rawQuery, called, want, w.Code)
		}
		if !called {
			if w.Code != http.StatusForbidden {
				t.Fatalf("rejected with %d, want 403", w.Code)
			}
			return
		}
		if !gotOK || got.UserID != "u" || got.KeyID != "k" || got.Source != apikey.SourceDB {
			t.Fatalf("wrong principal %+v (ok %v)", got, gotOK)
		}
		for _, seg := range strings.FieldsFunc(gotQuery, func(r rune) bool { return r == '&' || r == '?' }) {
			k, v, _ := strings.Cut(seg, "=")
			if d, err := url.QueryUnescape(v); err == nil && d == fuzzKey || v == fuzzKey {
				t.Fatalf("key left in the downstream query %q", gotQuery)
			}
			if d, err := url.QueryUnescape(k); err == nil && d == "x-api-key" || k == "x-api-key" {
				t.Fatalf("x-api-key parameter left in the downstream query %q", gotQuery)
			}
		}
		wantURI := "/"
		if gotQuery != "" {
			wantURI += "?" + gotQuery
		} else if gotQuery == rawQuery {
			wantURI = "/?"
		}
		if gotURI != wantURI {
			t.Fatalf("RequestURI %q does not match RawQuery %q", gotURI, gotQuery)
		}
		if r.URL.RawQuery != rawQuery || r.RequestURI != "/?"+rawQuery {
			t.Fatal("the caller's request was modified")
		}
	})
}
