package secrets

import (
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"strings"
	"unicode/utf8"
)

// Derivation names how a secret became a Fernet key.
type Derivation string

// The derivations, in the order NewKeyring considers them. The length of a
// secret is counted in Unicode code points, as Python's len(str) does.
const (
	// DerivationSHA256: a secret shorter than 32 code points becomes
	// base64url(SHA-256(UTF-8 secret)). Langflow ≥ 1.10.1 encrypts with it.
	DerivationSHA256 Derivation = "sha256"
	// DerivationLegacyMT19937: a secret shorter than 32 code points seeds
	// CPython's MT19937 (random.seed(secret)); the first 32 getrandbits(8)
	// are the key. Langflow ≤ 1.10.0 encrypted with it; keyflow only
	// decrypts with it.
	DerivationLegacyMT19937 Derivation = "legacy-mt19937"
	// DerivationBase64: a secret of 32 code points or more is the key
	// itself, read as base64 with Python's lenient rules (padding appended
	// when the length is not a multiple of 4). Every Langflow version reads
	// such a secret this way when it decodes to 32 bytes, e.g. the
	// 43-character secrets Langflow generates.
	DerivationBase64 Derivation = "base64"
	// DerivationLegacyPadding: as DerivationBase64, but with Langflow ≤
	// 1.10.0's padding rule, which always appends 4 - len%4 '=' characters.
	// It differs only for secrets whose length is a multiple of 4 and that
	// hold characters base64 skips (e.g. 43 key characters and a trailing
	// space): Langflow ≤ 1.10.0 could use them, newer versions raise. keyflow
	// encrypts with this key for such a secret, so its data stays readable by
	// the Langflow versions that could use it.
	DerivationLegacyPadding Derivation = "legacy-padding"
	// DerivationHKDF: a secret of 32 code points or more that no Langflow
	// version can use as a key (a 64-character hex string from
	// `openssl rand -hex 32`, a passphrase) becomes
	// HKDF-SHA256(secret, salt none, info "keyflow/secrets fernet key v1").
	// Langflow raises "Fernet key must be 32 url-safe base64-encoded bytes"
	// for such a secret, so data encrypted with it opens in keyflow only.
	// HKDF does not stretch: a passphrase is only as strong as its entropy.
	DerivationHKDF Derivation = "hkdf-sha256"
)

// minLangflowKeyLength is Langflow's MINIMUM_KEY_LENGTH: shorter secrets are
// hashed, longer ones are read as base64.
const minLangflowKeyLength = 32

const hkdfInfo = "keyflow/secrets fernet key v1"

// derivedKey is one candidate Fernet key of a secret.
type derivedKey struct {
	derivation Derivation
	key        [32]byte
}

// deriveKeys returns the Fernet keys a secret stands for, the encryption
// key first and then the keys older Langflow versions derived from the same
// secret (decryption only). The secret must not be empty. Errors never
// contain the secret.
func deriveKeys(secret string) ([]derivedKey, error) {
	n := utf8.RuneCountInString(secret)
	if n < minLangflowKeyLength {
		return []derivedKey{
			{DerivationSHA256, sha256.Sum256([]byte(secret))},
			{DerivationLegacyMT19937, legacyMTKey(secret)},
		}, nil
	}
	// Long secrets: the current padding rule succeeds only where the legacy
	// one does, with the same key (extra '=' after a complete quad are
	// skipped), so one candidate always suffices.
	if key, ok := langflowBase64Key(secret, n, false); ok {
		return []derivedKey{{DerivationBase64, key}}, nil
	}
	if key, ok := langflowBase64Key(secret, n, true); ok {
		return []derivedKey{{DerivationLegacyPadding, key}}, nil
	}
	raw, err := hkdf.Key(sha256.New, []byte(secret), nil, hkdfInfo, 32)
	if err != nil {
		return nil, errors.New("secrets: cannot derive a key from the secret with HKDF-SHA256")
	}
	var key [32]byte
	copy(key[:], raw)
	return []derivedKey{{DerivationHKDF, key}}, nil
}

// langflowBase64Key does what Langflow does with a long secret: append
// '=' padding (legacy: always 4 - n%4 characters; current: only when n%4 !=
// 0, n in code points), then Fernet(key), which is
// base64.urlsafe_b64decode and a 32-byte length check.
func langflowBase64Key(secret string, codePoints int, legacyPadding bool) ([32]byte, bool) {
	var key [32]byte
	pad := 4 - codePoints%4
	if !legacyPadding && pad == 4 {
		pad = 0
	}
	b, err := pythonURLSafeB64Decode(secret + strings.Repeat("=", pad))
	if err != nil || len(b) != len(key) {
		return key, false
	}
	copy(key[:], b)
	return key, true
}

var (
	errB64Padding  = errors.New("incorrect padding")
	errB64DataChar = errors.New("number of data characters cannot be 1 more than a multiple of 4")
)

// pythonURLSafeB64Decode is CPython's base64.urlsafe_b64decode: translate
// "-_" to "+/", then binascii.a2b_base64 in its default, non-strict mode
// (docs/langflow-compatibility.md#fernet-key-derivation):
//   - bytes outside the alphabet are skipped (spaces, '.', non-ASCII);
//   - both alphabets are accepted;
//   - a '=' before the second character of a quad is ignored;
//   - otherwise '=' is padding, and decoding stops once the quad is complete,
//     ignoring the rest;
//   - one dangling data character, or two or three without enough padding,
//     are errors.
func pythonURLSafeB64Decode(s string) ([]byte, error) {
	out := make([]byte, 0, len(s)*3/4+3)
	quadPos, pads := 0, 0
	var left byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '=' {
			if quadPos >= 2 {
				pads++
				if quadPos+pads >= 4 {
					return out, nil
				}
			}
			continue
		}
		v, ok := b64Value(c)
		if !ok {
			continue
		}
		pads = 0
		switch quadPos {
		case 0:
			left = v
			quadPos = 1
		case 1:
			out = append(out, left<<2|v>>4)
			left = v & 0x0f
			quadPos = 2
		case 2:
			out = append(out, left<<4|v>>2)
			left = v & 0x03
			quadPos = 3
		case 3:
			out = append(out, left<<6|v)
			left = 0
			quadPos = 0
		}
	}
	switch quadPos {
	case 0:
		return out, nil
	case 1:
		return nil, errB64DataChar
	default:
		return nil, errB64Padding
	}
}

// b64Value maps a character of either base64 alphabet to its value.
func b64Value(c byte) (byte, bool) {
	switch {
	case c >= 'A' && c <= 'Z':
		return c - 'A', true
	case c >= 'a' && c <= 'z':
		return c - 'a' + 26, true
	case c >= '0' && c <= '9':
		return c - '0' + 52, true
	case c == '+' || c == '-':
		return 62, true
	case c == '/' || c == '_':
		return 63, true
	}
	return 0, false
}
