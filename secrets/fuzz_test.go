package secrets

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"regexp"
	"strings"
	"testing"

	"github.com/fernet/fernet-go"
)

// fuzzKeyring holds the spec key, a Langflow short secret (two
// derivations) and a keyflow-only HKDF secret.
func fuzzKeyring(t testing.TB) *Keyring {
	return mustKeyring(t, "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=", testShort, testHex)
}

// seedTokens adds every token of the test vectors to the corpus.
func seedTokens(f *testing.F) {
	for _, name := range []string{"generate.json", "verify.json", "invalid.json"} {
		for _, c := range specCases(f, name) {
			f.Add(c.Token)
		}
	}
	var v langflowVectors
	loadJSON(f, "langflow_fernet_vectors.json", &v)
	for _, c := range v.Cases {
		for _, tok := range c.Tokens {
			f.Add(tok.Token)
		}
	}
	f.Add("")
	f.Add("gAAAAA")
	f.Add("gAAA")
}

// hasValidMAC reports whether token decodes to bytes whose last 32 are a
// valid HMAC-SHA256 under the signing half of one of k's keys, computed
// here independently of fernet-go.
func hasValidMAC(k *Keyring, token string) bool {
	raw, err := base64.URLEncoding.DecodeString(token)
	if err != nil || len(raw) < sha256.Size {
		return false
	}
	body, tag := raw[:len(raw)-sha256.Size], raw[len(raw)-sha256.Size:]
	for _, fk := range k.keys {
		m := hmac.New(sha256.New, fk[:16])
		m.Write(body)
		if hmac.Equal(m.Sum(nil), tag) {
			return true
		}
	}
	return false
}

// FuzzDecrypt: arbitrary input never panics and never yields a plaintext
// without a valid MAC. Each input is also re-signed with a genuine key, so
// the fuzzer reaches what lies behind the MAC check (length, padding,
// version) — what only a key holder could send.
func FuzzDecrypt(f *testing.F) {
	seedTokens(f)
	k := fuzzKeyring(f)
	fk := fernet.MustDecodeKeys("cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=")
	f.Fuzz(func(t *testing.T, token string) {
		plain, err := k.Decrypt(token)
		if err == nil && !hasValidMAC(k, token) {
			t.Fatalf("plaintext without a valid MAC (%d bytes)", len(plain))
		}
		if err != nil && plain != "" {
			t.Fatal("plaintext returned with an error")
		}
		if _, err := k.Rotate(token); err == nil && !hasValidMAC(k, token) {
			t.Fatal("rotated a token without a valid MAC")
		}

		// Re-sign the decoded input (or the raw input) under the first key.
		body, err := base64.URLEncoding.DecodeString(token)
		if err != nil {
			body = []byte(token)
		}
		m := hmac.New(sha256.New, k.keys[0][:16])
		m.Write(body)
		signed := m.Sum(append([]byte(nil), body...))
		resigned := base64.URLEncoding.EncodeToString(signed)
		// A signed prefix followed by the raw input: fernet-go opens what
		// decodes before the first bad character; the Keyring must not.
		if _, err := k.Decrypt(resigned + token); err == nil && !hasValidMAC(k, resigned+token) {
			t.Fatal("opened a signed token followed by junk")
		}
		plain, err = k.Decrypt(resigned)
		if err != nil {
			return
		}
		if len(signed) < minTokenLen || signed[0] != fernetVersion || (len(signed)-headerLen-macSize)%16 != 0 {
			t.Fatalf("accepted a malformed token of %d bytes", len(signed))
		}
		// fernet-go accepts a superset (padding of 0 or more than 16 bytes,
		// junk after a token), so whatever the Keyring accepts, it must
		// accept too, with the same plaintext.
		if ref := fernet.VerifyAndDecrypt([]byte(resigned), 0, fk); ref == nil || string(ref) != plain {
			t.Fatal("fernet-go disagrees on a token this package accepted")
		}
	})
}

var stringPattern = regexp.MustCompile(`^secrets\.Keyring\{secrets: 1, keys: [12], derivation: [a-z0-9-]+\}$`)

// FuzzDeriveKeys: any secret gives a working Keyring or (only for "") an
// error, never a panic, and no error message contains the secret.
func FuzzDeriveKeys(f *testing.F) {
	var v langflowVectors
	loadJSON(f, "langflow_fernet_vectors.json", &v)
	for _, c := range v.Cases {
		f.Add(c.Secret)
	}
	var d derivationVectors
	loadJSON(f, "langflow_derivation_vectors.json", &d)
	for _, c := range d.Cases {
		f.Add(c.Secret)
	}
	for _, c := range d.Base64 {
		f.Add(c.Input)
	}
	f.Add("")
	f.Add("\xff\xfe invalid UTF-8 \x80 padding padding padding")
	f.Fuzz(func(t *testing.T, secret string) {
		_, _ = pythonURLSafeB64Decode(secret) // must not panic on its own either
		k, err := NewKeyring(secret)
		if err != nil {
			if secret != "" {
				t.Fatalf("NewKeyring failed for a non-empty secret: %v", err)
			}
			return
		}
		// Error messages must not depend on the secret at all: the same
		// failure with another secret gives the same message.
		for _, mk := range []func(secret string) error{
			func(secret string) error { _, err := NewKeyring(secret, ""); return err },
			func(secret string) error {
				_, err := Load(LoadOptions{Secret: secret, Previous: []string{""}})
				return err
			},
		} {
			e, other := mk(secret), mk("some other secret")
			if e == nil || other == nil {
				t.Fatal("an empty previous secret was accepted")
			}
			if e.Error() != other.Error() {
				t.Fatal("an error message depends on the secret")
			}
		}
		if !stringPattern.MatchString(k.String()) {
			t.Fatal("String is not the fixed description")
		}
		tok, err := k.Encrypt("value")
		if err != nil {
			t.Fatal(err)
		}
		if got, err := k.Decrypt(tok); err != nil || got != "value" {
			t.Fatal("round trip failed")
		}
		if !strings.HasPrefix(tok, fernetPrefix) {
			t.Fatal("bad token prefix")
		}
	})
}
