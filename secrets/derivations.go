package secrets

import (
	"errors"
	"slices"
)

// ErrNoSuchDerivation is returned by Keyring.WithEncryption when the
// primary secret has no key of the derivation asked for (a long secret has
// one key; only a secret shorter than 32 code points has a legacy one).
var ErrNoSuchDerivation = errors.New("secrets: the primary secret has no key of that derivation")

// primaryDerivations returns the derivations of the first n keys that
// NewKeyring derived from secret (deriveKeys' order, which add keeps).
func primaryDerivations(secret string, n int) []Derivation {
	derived, err := deriveKeys(secret)
	if err != nil {
		return nil
	}
	out := make([]Derivation, 0, n)
	for _, d := range derived[:min(n, len(derived))] {
		out = append(out, d.derivation)
	}
	return out
}

// WithEncryption returns a Keyring that decrypts every token k decrypts but
// encrypts with the primary secret's key of derivation d. Its use is a
// secret shorter than 32 code points shared with a Langflow that derives
// keys the pre-1.10.1 way: WithEncryption(DerivationLegacyMT19937) makes
// tokens Langflow 1.10.0 and earlier open (so does 1.11.3 and later, which
// tries both keys; 1.10.1 to 1.11.2 open only DerivationSHA256 tokens).
// See docs/langflow-compatibility.md#fernet-key-derivation. It returns k
// itself when d is already its encryption derivation, and
// ErrNoSuchDerivation when the primary secret has no key of derivation d.
func (k *Keyring) WithEncryption(d Derivation) (*Keyring, error) {
	if k == nil || len(k.keys) == 0 {
		return nil, ErrNoKeyring
	}
	i := slices.Index(k.primary, d)
	switch {
	case i < 0:
		return nil, ErrNoSuchDerivation
	case i == 0:
		return k, nil
	}
	keys := slices.Clone(k.keys)
	keys[0], keys[i] = keys[i], keys[0]
	primary := slices.Clone(k.primary)
	primary[0], primary[i] = primary[i], primary[0]
	return &Keyring{keys: keys, derivation: d, primary: primary, secrets: k.secrets}, nil
}

// OpenedBy reports which of the primary secret's keys opens token, by its
// derivation, so a program can tell the key derivation of the Langflow
// version that wrote it (a short secret: DerivationSHA256 from 1.10.1 on,
// DerivationLegacyMT19937 before). It returns "" when no key of the primary
// secret opens the token (a previous secret's, or none).
func (k *Keyring) OpenedBy(token string) Derivation {
	_, _, i, err := k.open(token)
	if err != nil || i >= len(k.primary) {
		return ""
	}
	return k.primary[i]
}
