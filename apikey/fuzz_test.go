package apikey_test

import (
	"encoding/base64"
	"errors"
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

// FuzzParseLimits: the limit-spec parsers never panic, accept only what they
// can write back, and what they write reads back the same.
func FuzzParseLimits(f *testing.F) {
	for _, s := range []string{"100/1m", "10000/24h", "10000/month", "5/daily", "7/7d", "1/1h30m", "0/1s", "99999999999999999999/1m", "1/-1s", "1/1e3s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if r, err := apikey.ParseRateLimit(s); err == nil {
			if verr := (apikey.Limits{Rate: []apikey.RateLimit{r}}).Validate(); verr != nil {
				t.Fatalf("ParseRateLimit(%q) = %+v, which Validate refuses: %v", s, r, verr)
			}
			back, err := apikey.ParseRateLimit(r.String())
			if err != nil || back != r {
				t.Fatalf("ParseRateLimit(%q) = %+v, written %q, read back %+v, %v", s, r, r.String(), back, err)
			}
		} else if !errors.Is(err, apikey.ErrInvalidLimits) {
			t.Fatalf("ParseRateLimit(%q): error %v does not wrap ErrInvalidLimits", s, err)
		}
		if f, err := apikey.ParseRefill(s); err == nil {
			back, err := apikey.ParseRefill(f.String())
			if err != nil || back != f {
				t.Fatalf("ParseRefill(%q) = %+v, read back %+v, %v", s, f, back, err)
			}
		} else if !errors.Is(err, apikey.ErrInvalidLimits) {
			t.Fatalf("ParseRefill(%q): error %v does not wrap ErrInvalidLimits", s, err)
		}
	})
}
