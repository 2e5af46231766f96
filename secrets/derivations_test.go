package secrets

import (
	"testing"

	"github.com/fernet/fernet-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWithEncryptionAgainstLangflowVectors: for a short secret,
// WithEncryption(DerivationLegacyMT19937) makes tokens that open under the
// legacy key CPython printed (Langflow ≤ 1.10.0) and not under the current
// one; the default Keyring the reverse; both Keyrings open both; OpenedBy
// names the derivation of each vector token.
func TestWithEncryptionAgainstLangflowVectors(t *testing.T) {
	var v langflowVectors
	loadJSON(t, "langflow_fernet_vectors.json", &v)
	tested := 0
	for _, c := range v.Cases {
		if !c.LegacyUsable || !c.CurrentUsable || c.LegacyFernetKey == c.CurrentFernetKey {
			continue
		}
		t.Run(c.Secret, func(t *testing.T) {
			tested++
			legacyKey, err := fernet.DecodeKey(c.LegacyFernetKey)
			require.NoError(t, err)
			currentKey, err := fernet.DecodeKey(c.CurrentFernetKey)
			require.NoError(t, err)
			k, err := NewKeyring(c.Secret)
			require.NoError(t, err)
			legacy, err := k.WithEncryption(DerivationLegacyMT19937)
			require.NoError(t, err)
			assert.Equal(t, DerivationLegacyMT19937, legacy.Derivation())
			same, err := k.WithEncryption(DerivationSHA256)
			require.NoError(t, err)
			assert.Same(t, k, same)

			tok, err := legacy.Encrypt("value")
			require.NoError(t, err)
			assert.Equal(t, "value", string(fernet.VerifyAndDecrypt([]byte(tok), 0, []*fernet.Key{legacyKey})), "Langflow ≤ 1.10.0 opens it")
			assert.Nil(t, fernet.VerifyAndDecrypt([]byte(tok), 0, []*fernet.Key{currentKey}))
			tok2, err := k.Encrypt("value")
			require.NoError(t, err)
			assert.Nil(t, fernet.VerifyAndDecrypt([]byte(tok2), 0, []*fernet.Key{legacyKey}))
			for _, kr := range []*Keyring{k, legacy} {
				for _, x := range []string{tok, tok2} {
					got, err := kr.Decrypt(x)
					require.NoError(t, err)
					assert.Equal(t, "value", got)
				}
			}
			for _, vt := range c.Tokens {
				want := DerivationSHA256
				if vt.Derivation == "legacy" {
					want = DerivationLegacyMT19937
				}
				assert.Equal(t, want, k.OpenedBy(vt.Token), vt.Derivation)
				assert.Equal(t, want, legacy.OpenedBy(vt.Token), vt.Derivation)
			}
		})
	}
	require.NotZero(t, tested, "the vectors have short secrets")
}

func TestWithEncryptionLongSecret(t *testing.T) {
	k, err := NewKeyring("dBuuRmX0a5Gx3kqzT0C7mB1g7eYcY2Jq2Vd9sRxk2M0")
	require.NoError(t, err)
	_, err = k.WithEncryption(DerivationLegacyMT19937)
	require.ErrorIs(t, err, ErrNoSuchDerivation)
	tok, err := k.Encrypt("x")
	require.NoError(t, err)
	assert.Equal(t, DerivationBase64, k.OpenedBy(tok))
	other, err := NewKeyring("another secret", "dBuuRmX0a5Gx3kqzT0C7mB1g7eYcY2Jq2Vd9sRxk2M0")
	require.NoError(t, err)
	assert.Equal(t, Derivation(""), other.OpenedBy(tok), "a previous secret's key is not the primary's")
	assert.Equal(t, Derivation(""), k.OpenedBy("not a token"))
	var nilK *Keyring
	_, err = nilK.WithEncryption(DerivationSHA256)
	require.ErrorIs(t, err, ErrNoKeyring)
}
