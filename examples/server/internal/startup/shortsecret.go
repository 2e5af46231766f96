package startup

import (
	"log/slog"

	"github.com/keyflow-dev/keyflow/secrets"
)

// ShortSecretWarning is logged when the master secret is shorter than 32
// characters, as Langflow ≥ 1.11.3 warns
// (docs/langflow-compatibility.md#a-short-master-secret). It names neither
// the secret nor its length.
const ShortSecretWarning = "the master secret is shorter than 32 characters: short secrets are not recommended for production. " +
	"Keep it unchanged while upgrading from Langflow, so Credential values encrypted before Langflow 1.10.1 still open, " +
	"then replace it with a generated one: rotate-secret re-encrypts every value under the new secret"

// warnShortSecret logs ShortSecretWarning once when the primary secret of
// k is shorter than 32 characters (Python's len, in code points: the secrets
// Langflow hashes into a key), with where the secret came from. Generated
// secrets are 43 characters and never warn.
func warnShortSecret(log *slog.Logger, k *secrets.Keyring, fromEnv bool) {
	if k.Derivation() != secrets.DerivationSHA256 {
		return
	}
	source := secrets.SecretFileName + " in the config dir"
	if fromEnv {
		source = secrets.EnvSecretKey
	}
	log.Warn(ShortSecretWarning, "source", source)
}
