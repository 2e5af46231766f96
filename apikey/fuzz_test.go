package apikey_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/keyflow-dev/keyflow/apikey"
)

// wellFormedLangflow is an independent statement of docs/langflow-compatibility.md#api-key-format: "sk-"
// and the canonical unpadded base64url encoding of 32 bytes.
func wellFormedLangflow(key string) bool {
	if !strings.HasPrefix(key, "sk-") || len(key) != 46 {
		return false
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(key[3:])
	return err == nil && len(raw) == 32
}

// wellFormedChecksum is an independent statement of the checksum format.
func wellFormedChecksum(prefix, key string) bool {
	if !strings.HasPrefix(key, prefix) || len(key) != len(prefix)+43+6 {
		return false
	}
	for i := len(prefix); i < len(key); i++ {
		if strings.IndexByte(base62, key[i]) < 0 {
			return false
		}
	}
	return checksumOf(key[:len(key)-6]) == key[len(key)-6:]
}

// FuzzCheck: Check never panics, and accepts exactly the well-formed keys
// of each format.
func FuzzCheck(f *testing.F) {
	ck := mustChecksum(f, "kf")
	for range 4 {
		k1, _ := apikey.Langflow.Generate()
		k2, _ := ck.Generate()
		f.Add(k1)
		f.Add(k2)
	}
	for _, s := range []string{
		"", "sk-", "kf_", langflowKey, langflowKey[:45] + "B", langflowKey + "=", "SK-" + langflowKey[3:],
		"kf_" + strings.Repeat("0", 43) + "000000", strings.Repeat("A", 300), "sk-\xff\xfe",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		if got, want := apikey.Langflow.Check(key) == nil, wellFormedLangflow(key); got != want {
			t.Fatalf("Langflow.Check(%q) accepted = %v, want %v", key, got, want)
		}
		if got, want := ck.Check(key) == nil, wellFormedChecksum("kf_", key); got != want {
			t.Fatalf("checksum Check(%q) accepted = %v, want %v", key, got, want)
		}
	})
}
