package secrets

import (
	"errors"
	"fmt"
	"strings"

	"github.com/fernet/fernet-go"
)

var (
	// ErrInvalidToken is returned when no key of a Keyring opens a token:
	// it is not a Fernet token, it was made with another secret, or it was
	// altered. The message names no secret and no plaintext.
	ErrInvalidToken = errors.New("secrets: invalid token")
	// ErrEmptySecret is returned for an empty secret (NewKeyring,
	// WriteSecretFile) or an empty secret file (Load, ReadSecretFile).
	ErrEmptySecret = errors.New("secrets: empty secret")
	// ErrNoKeyring is returned by the methods of a nil or zero Keyring;
	// make one with NewKeyring or Load.
	ErrNoKeyring = errors.New("secrets: keyring not initialised (use NewKeyring or Load)")
	// ErrAmbiguousSecrets is returned by NewKeyring (and Load) when two of
	// its secrets derive different keys with the same signing half, as two
	// base64 keys that differ only in their last characters do. A token
	// under one then passes the other's MAC check, so no keyring can tell
	// which key made it; choose a new secret (GenerateSecret).
	ErrAmbiguousSecrets = errors.New("secrets: two secrets share a signing key, so their tokens cannot be told apart; choose a new secret")

	// errRandom: the system's random source failed while making an IV
	// (crypto/rand does not fail on supported systems since Go 1.24).
	errRandom = errors.New("secrets: cannot read random bytes for an IV")
)

// Keyring encrypts with the Fernet key derived from its primary secret and
// decrypts with every key derived from its primary and previous secrets:
// Langflow's current and legacy derivations of each (see Derivation), in the
// order primary, then previous secrets as given. This is pyca's MultiFernet
// with Langflow's key derivations.
//
// Tokens are made and opened by github.com/fernet/fernet-go. All keys are
// derived once, in NewKeyring, into the *fernet.Key values every call
// passes to fernet-go; a Keyring is immutable afterwards and safe for
// concurrent use. It holds derived keys, not the secrets themselves, and
// its String method prints no key material.
type Keyring struct {
	keys       []*fernet.Key // decryption order; keys[0] encrypts
	derivation Derivation    // how the primary secret became keys[0]
	primary    []Derivation  // derivations of keys[:len(primary)], the primary secret's keys
	secrets    int           // number of secrets, for String
}

// NewKeyring derives the Fernet keys of secret (the primary, which
// encrypts) and of each previous secret (which only decrypt), once.
//
// Any non-empty secret works. A secret shorter than 32 code points is
// hashed (Langflow ≥ 1.10.1) and also derived the pre-1.10.1 way; a longer one
// is read as a base64 key as Langflow reads it, or, when no Langflow version
// could use it (a 64-character hex string, a passphrase), derived with
// HKDF-SHA256 — data encrypted under such a secret opens in keyflow only.
// See Derivation. An empty secret, primary or previous, is ErrEmptySecret;
// secrets whose keys share a signing half are ErrAmbiguousSecrets.
// Errors never contain a secret.
func NewKeyring(secret string, previous ...string) (*Keyring, error) {
	if secret == "" {
		return nil, ErrEmptySecret
	}
	k := &Keyring{secrets: 1 + len(previous)}
	d, err := k.add(secret)
	if err != nil {
		return nil, err
	}
	k.derivation = d
	k.primary = primaryDerivations(secret, len(k.keys))
	for i, p := range previous {
		if p == "" {
			return nil, fmt.Errorf("secrets: previous secret %d: %w", i+1, ErrEmptySecret)
		}
		if _, err := k.add(p); err != nil {
			return nil, fmt.Errorf("secrets: previous secret %d: %w", i+1, err)
		}
	}
	return k, nil
}

// add appends the candidate keys of secret, skipping keys already present
// (the same secret given twice, or a previous secret equal to the primary),
// and returns the derivation of its first (encryption) key.
func (k *Keyring) add(secret string) (Derivation, error) {
	derived, err := deriveKeys(secret)
	if err != nil {
		return "", err
	}
next:
	for _, d := range derived {
		for _, have := range k.keys {
			if *have == d.key {
				continue next
			}
			if [16]byte(have[:16]) == [16]byte(d.key[:16]) {
				return "", ErrAmbiguousSecrets
			}
		}
		fk := fernet.Key(d.key)
		k.keys = append(k.keys, &fk)
	}
	return derived[0].derivation, nil
}

// Derivation reports how the primary secret became the encryption key, so a
// program can warn about a short secret (DerivationSHA256; Langflow 1.11.3
// warns below 32 characters) or one whose data Langflow cannot read
// (DerivationHKDF, DerivationLegacyPadding).
func (k *Keyring) Derivation() Derivation {
	if k == nil {
		return ""
	}
	return k.derivation
}

// String describes the keyring without any key material.
func (k *Keyring) String() string {
	if k == nil {
		return "secrets.Keyring(nil)"
	}
	return fmt.Sprintf("secrets.Keyring{secrets: %d, keys: %d, derivation: %s}", k.secrets, len(k.keys), k.derivation)
}

// Encrypt encrypts plaintext (any bytes; text is UTF-8 by convention) under
// the primary secret and returns a Fernet token, base64url with padding, as
// Langflow stores it (fernet-go's EncryptAndSign). It fails only on a
// Keyring not made by NewKeyring (ErrNoKeyring).
func (k *Keyring) Encrypt(plaintext string) (string, error) {
	if k == nil || len(k.keys) == 0 {
		return "", ErrNoKeyring
	}
	tok, err := fernet.EncryptAndSign([]byte(plaintext), k.keys[0])
	if err != nil {
		return "", errRandom
	}
	return bytesToString(tok), nil
}

// Decrypt opens a Fernet token with the first key whose MAC matches —
// primary secret first, then legacy derivations, then previous secrets — and
// returns the plaintext. As Langflow, it checks no TTL: a token never
// expires. Anything that does not open (including "", plaintext and
// tokens made with another secret) is ErrInvalidToken (ErrNoKeyring on a
// Keyring not made by NewKeyring); use IsEncrypted first
// for Langflow's "not gAAAAA means plaintext" rule. It is stricter than
// fernet-go alone: a token must be padded base64url and nothing else (no
// line breaks, nothing after it), and its PKCS #7 padding 1 to 16 bytes, as
// the spec and pyca require. No input panics. A token
// under the i-th key costs i-1 extra HMACs (fernet-go's VerifyAndDecrypt
// with every key of the keyring).
func (k *Keyring) Decrypt(token string) (string, error) {
	if k == nil || len(k.keys) == 0 {
		return "", ErrNoKeyring
	}
	msg, ok := openWith(token, k.keys)
	if !ok {
		return "", ErrInvalidToken
	}
	return bytesToString(msg), nil
}

// Rotate re-encrypts token under the primary secret with a fresh IV,
// keeping its timestamp (pyca's MultiFernet.rotate; fernet-go's
// EncryptAndSignAtTime), so a token's age still tells when its value was
// written. A token already under the primary key is re-encrypted too. It
// returns ErrInvalidToken when no key opens the token, and ErrNoKeyring on
// a Keyring not made by NewKeyring.
func (k *Keyring) Rotate(token string) (string, error) {
	if k == nil || len(k.keys) == 0 {
		return "", ErrNoKeyring
	}
	msg, ok := openWith(token, k.keys)
	if !ok {
		return "", ErrInvalidToken
	}
	return sealAt(k.keys[0], msg, tokenTime(token))
}

// open tries every key in turn and returns the plaintext, the token's
// timestamp and the index of the key that opened it (Reencrypt needs to
// know whether that is the encryption key). A nil or zero Keyring is
// ErrNoKeyring.
func (k *Keyring) open(token string) (msg []byte, ts uint64, key int, err error) {
	if k == nil || len(k.keys) == 0 {
		return nil, 0, -1, ErrNoKeyring
	}
	for i := range k.keys {
		if msg, ok := openWith(token, k.keys[i:i+1]); ok {
			return msg, tokenTime(token), i, nil
		}
	}
	return nil, 0, -1, ErrInvalidToken
}

// fernetPrefix is how every Fernet token starts: version 0x80 and the 28
// high bits of the timestamp, zero until the year 4147.
const fernetPrefix = "gAAAAA"

// IsEncrypted reports whether value looks like a Fernet token, by Langflow's
// test: it starts with "gAAAAA". Langflow (early 2026 on) treats any other
// stored value as plaintext and returns it unchanged. This is a heuristic
// for reading data written before values were encrypted, not a security
// check: a plaintext that starts with "gAAAAA" is misclassified, and only
// Decrypt says whether a token is genuine. Use it only where a caller asks
// for that compatibility.
func IsEncrypted(value string) bool {
	return strings.HasPrefix(value, fernetPrefix)
}
