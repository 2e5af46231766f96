package secrets_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/keyflow-dev/keyflow/secrets"
)

func ExampleNewKeyring() {
	// The master secret, e.g. LANGFLOW_SECRET_KEY; keyflow and Langflow
	// derive the same Fernet key from it.
	k, err := secrets.NewKeyring("dBuuRmX0a5Gx3kqzT0C7mB1g7eYcY2Jq2Vd9sRxk2M0")
	if err != nil {
		log.Fatal(err)
	}
	token, err := k.Encrypt("sk-my-openai-key")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(secrets.IsEncrypted(token), strings.HasPrefix(token, "gAAAAA"))

	plain, err := k.Decrypt(token)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(plain)

	// A token written by Langflow ≤ 1.10.0 under the short secret "langflow"
	// (its legacy derivation) opens too.
	short, _ := secrets.NewKeyring("langflow")
	plain, err = short.Decrypt("gAAAAABrCIrndGQkDYvZiCvnpOlPQ7fdbMvTYitaZBUKbCuDNy44DwtrFe0gG6fIebbV8uuv5UytSEswFR7MCrr5SlckTjJeU1nPBKfFhg3qu5MsxW2XP7g=")
	fmt.Println(plain, err)
	// Output:
	// true true
	// sk-my-openai-key
	// sk-test-plaintext <nil>
}

func ExampleLoad() {
	dir, err := os.MkdirTemp("", "keyflow-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	noEnv := func(string) string { return "" } // a real program leaves Getenv nil

	// No LANGFLOW_SECRET_KEY: the first start generates dir/secret_key...
	first, err := secrets.Load(secrets.LoadOptions{ConfigDir: dir, Getenv: noEnv})
	if err != nil {
		log.Fatal(err)
	}
	token, _ := first.Encrypt("value")

	// ...and the next start reuses it.
	second, err := secrets.Load(secrets.LoadOptions{ConfigDir: dir, Getenv: noEnv})
	if err != nil {
		log.Fatal(err)
	}
	plain, err := second.Decrypt(token)
	fmt.Println(plain, err, second.Derivation())

	info, _ := os.Stat(dir + "/" + secrets.SecretFileName)
	fmt.Println(info.Mode().Perm())
	// Output:
	// value <nil> base64
	// -rw-------
}

// store is a CiphertextStore over a map, as a database table would be.
type store struct {
	mu     sync.Mutex
	tokens map[string]string
}

func (s *store) ListCiphertexts(_ context.Context, after string, limit int) ([]secrets.Ciphertext, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []secrets.Ciphertext
	for id, tok := range s.tokens {
		if id > after {
			out = append(out, secrets.Ciphertext{ID: id, Token: tok})
		}
	}
	slices.SortFunc(out, func(a, b secrets.Ciphertext) int { return strings.Compare(a.ID, b.ID) })
	return out[:min(limit, len(out))], nil
}

func (s *store) SwapCiphertext(_ context.Context, id, oldToken, newToken string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tokens[id] != oldToken {
		return false, nil
	}
	s.tokens[id] = newToken
	return true, nil
}

func ExampleReencrypt() {
	const oldSecret, newSecret = "my old short secret", "Qk9wZ3J5bXJ0c2RzZ3NkZ3NkZ3NkZ3NkZ3NkZ3NkZ2c"
	old, _ := secrets.NewKeyring(oldSecret)
	s := &store{tokens: map[string]string{}}
	for _, id := range []string{"a", "b", "c"} {
		s.tokens[id], _ = old.Encrypt("value of " + id)
	}

	// Step 1: the new secret encrypts, the old one still decrypts
	// (LANGFLOW_SECRET_KEY=new, KEYFLOW_PREVIOUS_SECRET_KEYS=old).
	k, _ := secrets.NewKeyring(newSecret, oldSecret)
	report, err := secrets.Reencrypt(context.Background(), k, s, secrets.ReencryptOptions{BatchSize: 2})
	fmt.Printf("%+v %v\n", report, err)

	// Step 2: nothing left under the old secret, so it can go.
	report, _ = secrets.Reencrypt(context.Background(), k, s, secrets.ReencryptOptions{})
	fmt.Printf("%+v\n", report)
	newOnly, _ := secrets.NewKeyring(newSecret)
	plain, err := newOnly.Decrypt(s.tokens["b"])
	fmt.Println(plain, err)
	// Output:
	// {Rotated:3 Current:0 Failed:0 Skipped:0 LastID:c} <nil>
	// {Rotated:0 Current:3 Failed:0 Skipped:0 LastID:c}
	// value of b <nil>
}
