// Package fuzz holds the fuzz targets for keyflow's parsers that have none in
// their own package: the API-key management handler's JSON bodies, the
// shared JSON body decoder, API-key hashes, UUIDs in paths, the opt-in
// bearer and custom-name key extractors, and the master-secret file and
// previous-secret list. They use the public APIs only. scripts/fuzz.sh runs
// them with every other Fuzz target of the module.
package fuzz

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/apikey/apikeyhttp"
	"github.com/keyflow-dev/keyflow/httpjson"
	"github.com/keyflow-dev/keyflow/internal/ids"
	"github.com/keyflow-dev/keyflow/middleware"
	"github.com/keyflow-dev/keyflow/secrets"
)

// marker is spliced into fuzzed bodies: no answer other than a successful
// create may contain it, since it can only come from echoing the body.
const marker = "kf-marker-5b1e0c7d9a2f4e68"

func detailOf(t *testing.T, body []byte) string {
	t.Helper()
	var d struct {
		Detail string `json:"detail"`
	}
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatalf("answer is not JSON {\"detail\": ...}: %q", body)
	}
	return d.Detail
}

// FuzzAPIKeyBody: POST /api/v1/api_key/ with arbitrary bodies never answers
// 5xx, answers JSON, stores a key only when it answers 200 (the key then
// verifies as its user and is listed masked), and never echoes the body in
// an error.
func FuzzAPIKeyBody(f *testing.F) {
	for _, s := range [][2]string{
		{`{"name":"`, `"}`},
		{`{"name":"x","scopes":["`, `"]}`},
		{`{"name":"x","expires_at":"`, `"}`},
		{`{"name":"x","expires_at":"2999-01-01T00:00:00Z","scopes":["a"],"api_key":"`, `"}`},
		{`{"name":"x","expires_at":"2000-01-01T00:00:00Z"}`, ``},
		{`{"name":1,"x":"`, `"}`},
		{`[`, `]`},
		{`null`, ``},
		{``, ``},
		{`{"name":"` + strings.Repeat("n", 300), `"}`},
		{`{"scopes":["a b","`, `"]}`},
		{"{\"name\":\"\xff\x00", `"}`},
	} {
		f.Add(s[0], s[1])
	}
	m, err := apikey.NewManager(apikey.Config{FlushInterval: -1})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = m.Close() })
	keysAPI, err := apikeyhttp.New(apikeyhttp.Config{Manager: m, User: func(*http.Request) (apikey.Principal, bool) {
		return apikey.Principal{UserID: "u1"}, true
	}})
	if err != nil {
		f.Fatal(err)
	}
	h := http.StripPrefix("/api/v1/api_key", keysAPI)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, before, after string) {
		body := before + marker + after
		r := httptest.NewRequest(http.MethodPost, "/api/v1/api_key/", strings.NewReader(body))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		recs, err := m.List(ctx, "u1")
		if err != nil {
			t.Fatal(err)
		}
		if w.Code != http.StatusOK {
			switch w.Code {
			case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
			default:
				t.Fatalf("status %d for %q: %s", w.Code, body, w.Body)
			}
			if strings.Contains(detailOf(t, w.Body.Bytes()), marker) {
				t.Fatalf("error echoes the body: %s", w.Body)
			}
			if len(recs) != 0 {
				t.Fatalf("a refused request stored a key (%d records)", len(recs))
			}
			return
		}
		var got struct {
			APIKey string `json:"api_key"`
			ID     string `json:"id"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if len(recs) != 1 || recs[0].ID != got.ID {
			t.Fatalf("200 but the store holds %d records", len(recs))
		}
		p, err := m.Verify(ctx, got.APIKey)
		if err != nil && !errors.Is(err, apikey.ErrExpired) {
			t.Fatalf("created key does not verify: %v", err)
		}
		if err == nil && (p.UserID != "u1" || p.KeyID != got.ID) {
			t.Fatalf("wrong principal %+v", p)
		}
		if recs[0].MaskedKey() == got.APIKey || strings.Contains(recs[0].MaskedKey(), got.APIKey[8:]) {
			t.Fatal("listed unmasked")
		}
		if err := m.Delete(ctx, "u1", got.ID); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzDecodeBody: the shared body decoder either decodes or answers 413/422
// JSON without echoing the body.
func FuzzDecodeBody(f *testing.F) {
	for _, s := range [][2]string{
		{`{"name":"`, `","n":1,"list":["a"]}`}, {`{"n":"`, `"}`}, {`{"list":[`, `]}`}, {``, ``},
		{`{}`, ``}, {`{"name":"x"} {`, `}`}, {`"`, `"`}, {"\x00", ""}, {`{"name":"\ud800`, `"}`},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, before, after string) {
		body := before + marker + after
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		w := httptest.NewRecorder()
		var v struct {
			Name string   `json:"name"`
			N    int      `json:"n"`
			List []string `json:"list"`
		}
		if httpjson.Decode(w, r, &v) {
			if w.Code != http.StatusOK || w.Body.Len() != 0 {
				t.Fatalf("decoded, yet answered %d %s", w.Code, w.Body)
			}
			return
		}
		if w.Code != http.StatusUnprocessableEntity && w.Code != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d", w.Code)
		}
		if strings.Contains(detailOf(t, w.Body.Bytes()), marker) {
			t.Fatalf("error echoes the body: %s", w.Body)
		}
	})
}

var hexRe = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)

// FuzzParseHash: ParseHash accepts exactly 64 hex digits, and its String is
// their lower-case form.
func FuzzParseHash(f *testing.F) {
	f.Add(apikey.HashKey("sk-x").String())
	f.Add(strings.ToUpper(apikey.HashKey("sk-y").String()))
	f.Add(strings.Repeat("g", 64))
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := apikey.ParseHash(s)
		if (err == nil) != hexRe.MatchString(s) {
			t.Fatalf("ParseHash(%q) error %v", s, err)
		}
		if err == nil && h.String() != strings.ToLower(s) {
			t.Fatalf("String %q for %q", h.String(), s)
		}
		if _, ref := apikey.ParseHash("x"); err != nil && err.Error() != ref.Error() {
			t.Fatalf("the error depends on the input: %v", err)
		}
	})
}

var uuidRe = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// FuzzUUID: ids.Valid, the check every handler applies to path IDs,
// accepts exactly the canonical 8-4-4-4-12 hexadecimal form.
func FuzzUUID(f *testing.F) {
	f.Add(ids.New())
	f.Add(strings.ToUpper(ids.New()))
	f.Add("00000000-0000-0000-0000-00000000000g")
	f.Add("{00000000-0000-0000-0000-000000000000}")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		if ids.Valid(s) != uuidRe.MatchString(s) {
			t.Fatalf("Valid(%q) = %v", s, ids.Valid(s))
		}
	})
}

// bearerOracle is an independent reading of FromBearer's contract: the
// scheme "Bearer" (any case), one space, the key trimmed of spaces and tabs.
func bearerOracle(h string) (string, bool) {
	scheme, rest, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return "", false
	}
	key := strings.Trim(rest, " \t")
	return key, key != ""
}

type oneKey string

func (k oneKey) Verify(_ context.Context, key string) (apikey.Principal, error) {
	if key == string(k) {
		return apikey.Principal{UserID: "u", KeyID: "k"}, nil
	}
	return apikey.Principal{}, apikey.ErrInvalid
}

// FuzzBearer: the opt-in extractors (Authorization: Bearer and a custom
// header) never panic, agree with an independent reading, and the middleware
// built on them admits exactly the valid key.
func FuzzBearer(f *testing.F) {
	const valid = "sk-bearer-valid-key-0123456789"
	for _, s := range [][2]string{
		{"Bearer " + valid, ""}, {"bearer  " + valid + "\t", ""}, {"Bearer", ""}, {"Bearer ", "x"},
		{"Basic " + valid, valid}, {"BEARER " + valid, "other"}, {"Bearer\t" + valid, ""}, {"", valid},
	} {
		f.Add(s[0], s[1])
	}
	mw, err := middleware.New(middleware.Config{
		Verifier:   oneKey(valid),
		Extractors: []middleware.Extractor{middleware.FromBearer(), middleware.FromHeader("X-Custom-Key")},
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, auth, custom string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header["Authorization"] = []string{auth}
		r.Header["X-Custom-Key"] = []string{custom}
		got, ok := middleware.FromBearer()(r)
		want, wantOK := bearerOracle(auth)
		if ok != wantOK || got != want {
			t.Fatalf("FromBearer(%q) = %q, %v; want %q, %v", auth, got, ok, want, wantOK)
		}
		if got, ok := middleware.FromHeader("x-custom-key")(r); ok != (custom != "") || got != custom {
			t.Fatalf("FromHeader = %q, %v", got, ok)
		}
		chosen := want
		if !wantOK {
			chosen = custom
		}
		w := httptest.NewRecorder()
		passed := false
		mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { passed = true })).ServeHTTP(w, r)
		if passed != (chosen == valid) {
			t.Fatalf("auth %q custom %q: passed %v", auth, custom, passed)
		}
		if !passed && w.Code != http.StatusForbidden {
			t.Fatalf("status %d", w.Code)
		}
	})
}

// FuzzLoadSecret: any secret_key file content and KEYFLOW_PREVIOUS_SECRET_KEYS
// value give a working Keyring or an error naming no secret; the file is
// read verbatim (a keyring built from the same bytes opens the tokens), and
// every previous secret opens its own tokens, unless Load refused secrets
// whose tokens cannot be told apart.
func FuzzLoadSecret(f *testing.F) {
	f.Add("a-file-secret-of-some-length-0123456789", "old-one, old-two")
	f.Add("short\n", ",,")
	f.Add("", "x")
	f.Add(secrets.GenerateSecret(), " "+secrets.GenerateSecret()+" ")
	f.Add("\xff\xfe\x00", "\x00,\xff")
	f.Fuzz(func(t *testing.T, file, previous string) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, secrets.SecretFileName), []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
		getenv := func(name string) string {
			if name == secrets.EnvPreviousSecretKeys {
				return previous
			}
			return ""
		}
		k, err := secrets.Load(secrets.LoadOptions{ConfigDir: dir, Getenv: getenv})
		if err != nil {
			if file != "" && !errors.Is(err, secrets.ErrAmbiguousSecrets) {
				t.Fatalf("Load failed for a non-empty file: %v", err)
			}
			for _, s := range append(strings.Split(previous, ","), file) {
				if s = strings.TrimSpace(s); len(s) >= 4 && strings.Contains(err.Error(), s) && !strings.Contains(dir, s) {
					t.Fatal("the error contains a secret")
				}
			}
			return
		}
		if strings.Contains(k.String(), file) && len(file) >= 4 {
			t.Fatal("String shows the secret")
		}
		same, err := secrets.NewKeyring(file)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := k.Encrypt("v")
		if err != nil {
			t.Fatal(err)
		}
		if got, err := same.Decrypt(tok); err != nil || got != "v" {
			t.Fatal("the file was not read verbatim")
		}
		for _, p := range strings.Split(previous, ",") {
			if p = strings.TrimSpace(p); p == "" {
				continue
			}
			old, err := secrets.NewKeyring(p)
			if err != nil {
				t.Fatal(err)
			}
			tok, _ := old.Encrypt("old")
			if got, err := k.Decrypt(tok); err != nil || got != "old" {
				t.Fatalf("previous secret %d bytes does not open its tokens", len(p))
			}
		}
	})
}
