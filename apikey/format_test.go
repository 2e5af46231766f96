package apikey_test

import (
	"encoding/base64"
	"errors"
	"hash/crc32"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey"
)

// A key made by Langflow's create_api_key: f"sk-{secrets.token_urlsafe(32)}"
// (docs/langflow-compatibility.md#api-key-format), with its api_key_hash, hashlib.sha256(key).hexdigest()
// (docs/langflow-compatibility.md#api-key-storage), and its masked form in GET /api/v1/api_key/.
const (
	langflowKey    = "sk-2F6qAva9ARClnm5EhopkmBUT4AVeVJga2JfSAzi782Y"
	langflowHash   = "ce0bc9f731b5f62d0c47dacc939eaae6f12c141d58d8fdd53237c9bb8cd1f92f"
	langflowMasked = "sk-2F6qA**************************************"
)

func mustChecksum(t testing.TB, prefix string) apikey.Format {
	t.Helper()
	f, err := apikey.NewChecksumFormat(prefix)
	require.NoError(t, err)
	return f
}

// TestLangflowCheck_Shape covers the shape of docs/langflow-compatibility.md#api-key-format: "sk-" +
// base64url(32 random bytes) without padding, 46 characters.
func TestLangflowCheck_Shape(t *testing.T) {
	body := langflowKey[3:]
	for _, tc := range []struct {
		name, key string
		reason    string // "" if valid
	}{
		{"key made by Langflow", langflowKey, ""},
		{"all zero bytes", "sk-" + base64.RawURLEncoding.EncodeToString(make([]byte, 32)), ""},
		{"url-safe characters - and _", "sk-" + strings.Repeat("-", 20) + strings.Repeat("_", 22) + "A", ""},
		{"empty", "", "empty"},
		{"prefix only", "sk-", "wrong length"},
		{"over 256 bytes", "sk-" + strings.Repeat("A", 300), "longer than 256"},
		{"no prefix", body + "AAA", "wrong prefix"},
		{"upper-case prefix", "SK-" + body, "wrong prefix"},
		{"underscore prefix", "sk_" + body, "wrong prefix"},
		{"leading space", " " + langflowKey[:45], "wrong prefix"},
		{"one character short (45)", langflowKey[:45], "wrong length"},
		{"one character long (47)", langflowKey + "A", "wrong length"},
		{"padded base64", "sk-" + base64.URLEncoding.EncodeToString(make([]byte, 32)), "wrong length"},
		{"standard base64 +", "sk-+" + body[1:], "alphabet"},
		{"standard base64 /", "sk-" + body[:10] + "/" + body[11:], "alphabet"},
		{"padding character inside", "sk-" + body[:42] + "=", "alphabet"},
		{"trailing newline", langflowKey[:45] + "\n", "alphabet"},
		{"non-ASCII", "sk-é" + body[2:], "alphabet"},
		{"NUL byte", "sk-" + body[:20] + "\x00" + body[21:], "alphabet"},
		{"non-canonical last character", "sk-" + body[:42] + "B", "non-canonical"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := apikey.Langflow.Check(tc.key)
			if tc.reason == "" {
				assert.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, apikey.ErrInvalid)
			assert.Contains(t, err.Error(), tc.reason)
			if len(tc.key) > 8 {
				assert.NotContains(t, err.Error(), tc.key[3:], "the error repeats the key")
			}
		})
	}
}

func TestLangflowGenerate_Reference31(t *testing.T) {
	seen := make(map[string]bool)
	for range 1000 {
		key, err := apikey.Langflow.Generate()
		require.NoError(t, err)
		require.Len(t, key, 46)
		require.True(t, strings.HasPrefix(key, "sk-"))
		raw, err := base64.RawURLEncoding.Strict().DecodeString(key[3:])
		require.NoError(t, err)
		require.Len(t, raw, 32)
		require.NoError(t, apikey.Langflow.Check(key))
		require.False(t, seen[key], "duplicate key")
		seen[key] = true
	}
}

func TestNewChecksumFormatPrefix(t *testing.T) {
	for _, tc := range []struct {
		prefix, want string // want "" if refused
	}{
		{"kf_", "kf_"},
		{"kf", "kf_"},
		{"acme_live_", "acme_live_"},
		{"A1", "A1_"},
		{"abcdefghijklmnop", "abcdefghijklmnop_"},
		{"", ""},
		{"abcdefghijklmnopq", ""}, // 17 characters
		{"_kf", ""},
		{"1kf", ""},
		{"sk-", ""},
		{"k f", ""},
		{"ké", ""},
	} {
		t.Run(tc.prefix, func(t *testing.T) {
			f, err := apikey.NewChecksumFormat(tc.prefix)
			if tc.want == "" {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			key, err := f.Generate()
			require.NoError(t, err)
			assert.True(t, strings.HasPrefix(key, tc.want), key)
			assert.Len(t, key, len(tc.want)+43+6)
		})
	}
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// checksumOf computes the format's checksum independently of the package.
func checksumOf(s string) string {
	sum := crc32.ChecksumIEEE([]byte(s))
	out := make([]byte, 6)
	for i := 5; i >= 0; i-- {
		out[i] = base62[sum%62]
		sum /= 62
	}
	return string(out)
}

func TestChecksumFormatCheck(t *testing.T) {
	f := mustChecksum(t, "kf_")
	var good string
	for good == "" || good[46] == good[47] { // so that swapping two checksum digits changes the key
		var err error
		good, err = f.Generate()
		require.NoError(t, err)
	}
	body := good[3 : 3+43]
	require.Equal(t, checksumOf(good[:46]), good[46:], "checksum is CRC32-IEEE of prefix+body in 6 base62 digits")
	flip := func(c byte) byte {
		if c == 'a' {
			return 'b'
		}
		return 'a'
	}
	for _, tc := range []struct {
		name, key, reason string
	}{
		{"generated", good, ""},
		{"hand-made with a correct checksum", "kf_" + strings.Repeat("0", 43) + checksumOf("kf_"+strings.Repeat("0", 43)), ""},
		{"empty", "", "empty"},
		{"over 256 bytes", good + strings.Repeat("a", 256), "longer than 256"},
		{"Langflow key", langflowKey, "wrong prefix"},
		{"other prefix", "gh_" + good[3:], "wrong prefix"},
		{"prefix without separator", "kf" + good[3:] + "a", "wrong prefix"},
		{"short", good[:len(good)-1], "wrong length"},
		{"long", good + "a", "wrong length"},
		{"base64url character in body", "kf_-" + good[4:], "alphabet"},
		{"underscore in body", "kf_" + body[:5] + "_" + good[9:], "alphabet"},
		{"non-ASCII", "kf_é" + good[5:], "alphabet"},
		{"changed body", "kf_" + string(flip(body[0])) + good[4:], "checksum"},
		{"changed checksum", good[:len(good)-1] + string(flip(good[len(good)-1])), "checksum"},
		{"swapped checksum digits", good[:46] + good[47:48] + good[46:47] + good[48:], "checksum"},
		{"checksum above 2^32", good[:46] + "zzzzzz", "checksum"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := f.Check(tc.key)
			if tc.reason == "" {
				assert.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, apikey.ErrInvalid)
			assert.Contains(t, err.Error(), tc.reason)
		})
	}
}

// TestChecksumDetectsEverySubstitution: CRC32 catches every single-character
// change of a key, so a mistyped key never reaches the store.
func TestChecksumDetectsEverySubstitution(t *testing.T) {
	f := mustChecksum(t, "kf")
	for range 20 {
		key, err := f.Generate()
		require.NoError(t, err)
		for i := 3; i < len(key); i++ {
			for j := 0; j < len(base62); j++ {
				if base62[j] == key[i] {
					continue
				}
				bad := key[:i] + base62[j:j+1] + key[i+1:]
				if err := f.Check(bad); !errors.Is(err, apikey.ErrInvalid) {
					t.Fatalf("substituting position %d was not detected", i)
				}
			}
		}
	}
}

func TestChecksumGenerateUniform(t *testing.T) {
	f := mustChecksum(t, "kf")
	counts := make(map[byte]int)
	const n = 2000
	for range n {
		key, err := f.Generate()
		require.NoError(t, err)
		for i := 3; i < 3+43; i++ {
			counts[key[i]]++
		}
	}
	require.Len(t, counts, 62, "every base62 digit appears")
	want := float64(n*43) / 62
	for c, got := range counts {
		assert.InDelta(t, want, float64(got), want*0.2, "digit %q", c)
	}
}
