package secrets

import (
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	testSecretA = "dBuuRmX0a5Gx3kqzT0C7mB1g7eYcY2Jq2Vd9sRxk2M0" // Langflow-generated shape (43 chars)
	testSecretB = "Qk9wZ3J5bXJ0c2RzZ3NkZ3NkZ3NkZ3NkZ3NkZ3NkZ2c" // another 43-char secret
	testShort   = "langflow"                                    // < 32 code points: SHA-256 + legacy MT19937
	testHex     = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

func mustKeyring(t testing.TB, secret string, previous ...string) *Keyring {
	t.Helper()
	k, err := NewKeyring(secret, previous...)
	require.NoError(t, err)
	return k
}

// tokenTime decodes a token's timestamp.
func tokenTime(t testing.TB, token string) uint64 {
	t.Helper()
	tok := decodeToken(token)
	require.NotNil(t, tok)
	return timestamp(tok)
}

func TestRoundTrip(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 64<<10/16)
	values := map[string]string{
		"empty":     "",
		"ascii":     "sk-test-plaintext",
		"unicode":   "clé 日本語のキー 🔑",
		"binary":    "\x00\xff\xfe not UTF-8 \x80",
		"one block": "0123456789abcdef",
		"64 KiB":    big,
	}
	for _, secret := range []string{testSecretA, testShort, testHex, "x", "日本語のキー"} {
		k := mustKeyring(t, secret)
		for name, v := range values {
			t.Run(fmt.Sprintf("%s/%s", k.Derivation(), name), func(t *testing.T) {
				tok, err := k.Encrypt(v)
				require.NoError(t, err)
				assert.True(t, IsEncrypted(tok), "tokens start with gAAAAA")
				_, err = base64.URLEncoding.DecodeString(tok)
				require.NoError(t, err, "padded base64url, as Langflow stores it")
				got, err := k.Decrypt(tok)
				require.NoError(t, err)
				assert.True(t, got == v, "plaintext round trip")
			})
		}
	}
}

func TestEncryptUsesFreshIVAndCurrentTime(t *testing.T) {
	k := mustKeyring(t, testSecretA)
	before := uint64(time.Now().Unix())
	a, err := k.Encrypt("same")
	require.NoError(t, err)
	b, err := k.Encrypt("same")
	require.NoError(t, err)
	after := uint64(time.Now().Unix())
	assert.NotEqual(t, a, b)
	ts := tokenTime(t, a)
	assert.True(t, ts >= before && ts <= after)
}

func TestWrongKeyFails(t *testing.T) {
	tok, err := mustKeyring(t, testSecretA).Encrypt("value")
	require.NoError(t, err)
	for _, other := range []string{testSecretB, testShort, testHex, testSecretA + "x"} {
		_, err := mustKeyring(t, other).Decrypt(tok)
		assert.ErrorIs(t, err, ErrInvalidToken)
	}
}

func TestDecryptRejectsMalformedAndTampered(t *testing.T) {
	k := mustKeyring(t, testSecretA)
	tok, err := k.Encrypt("value")
	require.NoError(t, err)
	raw, err := base64.URLEncoding.DecodeString(tok)
	require.NoError(t, err)

	bad := []string{
		"", "plaintext", "gAAAAA", "gAAAAA-invalid-token", tok[:len(tok)-4], tok + "AAAA",
		strings.TrimRight(tok, "="), // Go, unlike Python, rejects missing padding
		strings.NewReplacer("-", "+", "_", "/").Replace(tok) + "+/",
	}
	for i := range raw { // flip one bit of every byte: version, time, IV, ciphertext, MAC
		m := append([]byte(nil), raw...)
		m[i] ^= 0x01
		bad = append(bad, base64.URLEncoding.EncodeToString(m))
	}
	for _, b := range bad {
		_, err := k.Decrypt(b)
		assert.ErrorIs(t, err, ErrInvalidToken)
		_, err = k.Rotate(b)
		assert.ErrorIs(t, err, ErrInvalidToken)
	}
}

func TestDecryptTriesPrimaryThenPrevious(t *testing.T) {
	old := mustKeyring(t, testSecretB)
	oldShort := mustKeyring(t, testShort)
	oldTok, err := old.Encrypt("from B")
	require.NoError(t, err)
	shortTok, err := oldShort.Encrypt("from langflow")
	require.NoError(t, err)
	legacyTok := sealAt(oldShort.keys[1], []byte("legacy"), 1700000000) // Langflow ≤ 1.10.0

	k := mustKeyring(t, testSecretA, testSecretB, testShort)
	require.Len(t, k.keys, 4) // A; B; langflow SHA-256, langflow MT19937
	for tok, want := range map[string]string{oldTok: "from B", shortTok: "from langflow", legacyTok: "legacy"} {
		got, err := k.Decrypt(tok)
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
	newTok, err := k.Encrypt("new")
	require.NoError(t, err)
	_, err = old.Decrypt(newTok)
	assert.ErrorIs(t, err, ErrInvalidToken, "new data is under the primary secret only")
	got, err := mustKeyring(t, testSecretA).Decrypt(newTok)
	require.NoError(t, err)
	assert.Equal(t, "new", got)
}

// Two secrets whose keys share the signing half cannot share a keyring: a
// token under one passes the other's MAC check and, one time in about 256,
// its padding check too, so decryption could return garbage as a plaintext.
func TestSecretsSharingASigningKeyAreRefused(t *testing.T) {
	primary := strings.Repeat("0", 43)
	previous := strings.Repeat("0", 42) + "7"
	p, q := mustKeyring(t, primary), mustKeyring(t, previous)
	require.Equal(t, p.keys[0].raw[:16], q.keys[0].raw[:16], "the vector needs a shared signing key")
	require.NotEqual(t, p.keys[0].raw, q.keys[0].raw)

	for _, set := range [][]string{
		{primary, previous},
		{previous, primary},
		{testSecretA, primary, previous},
		{"000000     0000000000000000000000000000000000000", "0000]000000000\x7f000000000000000000000000000007"}, // lenient base64: the same two keys
	} {
		_, err := NewKeyring(set[0], set[1:]...)
		require.ErrorIs(t, err, ErrAmbiguousSecrets)
		for _, s := range set {
			assert.NotContains(t, err.Error(), s)
		}
	}
	_, err := NewKeyring(primary, primary+"=")
	assert.NoError(t, err, "the same key twice is one key, not an ambiguity")
}

func TestDuplicateKeysAreDropped(t *testing.T) {
	assert.Len(t, mustKeyring(t, testSecretA, testSecretA, testSecretA+"=").keys, 1,
		"the secret with and without padding is one key")
	assert.Len(t, mustKeyring(t, testShort, testShort).keys, 2)
}

func TestRotate(t *testing.T) {
	old := mustKeyring(t, testSecretB)
	const ts = 1700000000
	oldTok := sealAt(old.keys[0], []byte("value"), ts)

	both := mustKeyring(t, testSecretA, testSecretB)
	rotated, err := both.Rotate(oldTok)
	require.NoError(t, err)
	assert.NotEqual(t, oldTok, rotated)
	assert.Equal(t, uint64(ts), tokenTime(t, rotated), "rotation keeps the timestamp")

	// After dropping the old secret, rotated tokens open, old ones do not.
	newOnly := mustKeyring(t, testSecretA)
	got, err := newOnly.Decrypt(rotated)
	require.NoError(t, err)
	assert.Equal(t, "value", got)
	_, err = newOnly.Decrypt(oldTok)
	assert.ErrorIs(t, err, ErrInvalidToken)
	_, err = old.Decrypt(rotated)
	assert.ErrorIs(t, err, ErrInvalidToken)

	// A token already under the primary key is re-encrypted too (new IV).
	again, err := both.Rotate(rotated)
	require.NoError(t, err)
	assert.NotEqual(t, rotated, again)
	assert.Equal(t, uint64(ts), tokenTime(t, again))
}

// Rotating a Langflow ≤ 1.10.0 token of a short secret moves it to the
// current SHA-256 key of the same secret (docs/langflow-compatibility.md#fernet-key-derivation, Langflow 1.11.3).
func TestRotateUpgradesLegacyDerivation(t *testing.T) {
	k := mustKeyring(t, testShort)
	legacy := sealAt(k.keys[1], []byte("v"), 1600000000)
	_, _, idx, err := k.open(legacy, 0, time.Time{})
	require.NoError(t, err)
	require.Equal(t, 1, idx)
	rotated, err := k.Rotate(legacy)
	require.NoError(t, err)
	_, ts, idx, err := k.open(rotated, 0, time.Time{})
	require.NoError(t, err)
	assert.Equal(t, 0, idx)
	assert.Equal(t, uint64(1600000000), ts)
}

func TestNewKeyringErrors(t *testing.T) {
	_, err := NewKeyring("")
	assert.ErrorIs(t, err, ErrEmptySecret)
	_, err = NewKeyring(testSecretA, testSecretB, "")
	assert.ErrorIs(t, err, ErrEmptySecret)
	assert.Contains(t, err.Error(), "previous secret 2")
	assert.NotContains(t, err.Error(), testSecretA)
	assert.NotContains(t, err.Error(), testSecretB)
}

func TestDerivation(t *testing.T) {
	tests := []struct {
		secret string
		want   Derivation
	}{
		{"a", DerivationSHA256},
		{strings.Repeat("x", 31), DerivationSHA256},
		{testSecretA, DerivationBase64},
		{testSecretA + "=", DerivationBase64},
		{testSecretA + " ", DerivationLegacyPadding},
		{testHex, DerivationHKDF},
		{"correct horse battery staple, but longer than 32", DerivationHKDF},
		{strings.Repeat("鍵", 32), DerivationHKDF},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, mustKeyring(t, tt.secret).Derivation(), "%q", tt.secret)
	}
}

func TestZeroKeyringDoesNotPanic(t *testing.T) {
	for _, k := range []*Keyring{nil, {}} {
		_, err := k.Encrypt("x")
		assert.ErrorIs(t, err, ErrNoKeyring)
		tok, err := mustKeyring(t, testSecretA).Encrypt("x")
		require.NoError(t, err)
		for _, in := range []string{"gAAAAA", tok} {
			_, err = k.Decrypt(in)
			assert.ErrorIs(t, err, ErrNoKeyring, "Decrypt reports the misuse, not a bad token")
			_, err = k.Rotate(in)
			assert.ErrorIs(t, err, ErrNoKeyring)
		}
		assert.NotEmpty(t, k.String())
		assert.Equal(t, Derivation(""), k.Derivation())
	}
}

func TestStringHoldsNoKeyMaterial(t *testing.T) {
	k := mustKeyring(t, testSecretA, testShort)
	for _, s := range []string{k.String(), fmt.Sprintf("%v", k), fmt.Sprintf("%+v", k), fmt.Sprintf("%#v", k), fmt.Sprintf("%x", k)} {
		assert.NotContains(t, s, testSecretA)
		assert.NotContains(t, s, testSecretA[:10])
		for _, fk := range k.keys {
			assert.NotContains(t, s, base64.URLEncoding.EncodeToString(fk.raw[:]))
			assert.NotContains(t, s, fmt.Sprint(fk.raw[0], " ", fk.raw[1], " ", fk.raw[2]))
		}
	}
	assert.Equal(t, "secrets.Keyring{secrets: 2, keys: 3, derivation: base64}", k.String())
}

func TestIsEncrypted(t *testing.T) {
	tests := map[string]bool{
		"gAAAAABlU_EAAAECAwQFBgcICQoLDA0OD1D5": true,
		"gAAAAA":                               true,
		"gAAAA":                                false,
		"":                                     false,
		"sk-abc":                               false,
		" gAAAAAB":                             false,
		"GAAAAAB":                              false,
	}
	for v, want := range tests {
		assert.Equal(t, want, IsEncrypted(v), "%q", v)
	}
}

func TestConcurrentUse(t *testing.T) {
	k := mustKeyring(t, testSecretA, testSecretB, testShort)
	old := mustKeyring(t, testSecretB)
	oldTok, err := old.Encrypt("old")
	require.NoError(t, err)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				v := fmt.Sprint(g, "/", i)
				tok, err := k.Encrypt(v)
				if err == nil {
					var got string
					got, err = k.Decrypt(tok)
					if err == nil && got != v {
						err = fmt.Errorf("got %q, want %q", got, v)
					}
				}
				if err == nil {
					var rotated string
					if rotated, err = k.Rotate(oldTok); err == nil {
						_, err = k.Decrypt(rotated)
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
