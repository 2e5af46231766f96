// Package secrets holds keyflow's master secret and the Fernet encryption
// built on it, compatible with Langflow's LANGFLOW_SECRET_KEY.
//
// A Keyring encrypts with the key derived from the primary secret and
// decrypts with every key derived from it and from previous secrets, so that
// data written by any Langflow version — before and after Langflow 1.10.1
// changed how short secrets become keys — opens, and so that the master
// secret can be rotated without losing data:
//
//	k, err := secrets.Load(secrets.LoadOptions{ConfigDir: dir}) // LANGFLOW_SECRET_KEY, else dir/secret_key, else generated
//	token, err := k.Encrypt("sk-...")                           // a Fernet token, "gAAAAA..."
//	plain, err := k.Decrypt(token)
//
// Tokens are standard Fernet (https://github.com/fernet/spec): they open
// with Langflow, pyca/cryptography and fernet-go given the same derived key,
// and never expire (Langflow decrypts without a TTL).
//
// To rotate the master secret (Langflow has no way to; see
// docs/langflow-compatibility.md#secret-rotation): start every
// instance with the new secret in LANGFLOW_SECRET_KEY and the old one in
// KEYFLOW_PREVIOUS_SECRET_KEYS, so new data is encrypted under the new secret
// and old data still opens; run Reencrypt over the stored ciphertexts (it is
// idempotent and can run beside live servers) until it reports nothing
// rotated or skipped; only then drop the old secret. When instances
// restart one at a time, do it in two rounds: first the old secret as
// primary with the new one as previous everywhere, then the swap, so no
// instance ever meets a token it cannot open.
//
// Keyrings are immutable and safe for concurrent use. Nothing in this
// package logs, and no error message contains a secret, a key or a
// plaintext.
package secrets
