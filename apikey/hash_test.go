package apikey_test

import (
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey"
)

// TestHashKey_Reference33: the hash is Langflow's api_key_hash,
// hashlib.sha256(key.encode()).hexdigest().
func TestHashKey_Reference33(t *testing.T) {
	h := apikey.HashKey(langflowKey)
	assert.Equal(t, langflowHash, h.String())
	assert.Equal(t, apikey.Hash(sha256.Sum256([]byte(langflowKey))), h)
	assert.Equal(t, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", apikey.HashKey("").String())
}

func TestParseHash(t *testing.T) {
	h, err := apikey.ParseHash(langflowHash)
	require.NoError(t, err)
	assert.Equal(t, apikey.HashKey(langflowKey), h)
	upper, err := apikey.ParseHash(strings.ToUpper(langflowHash))
	require.NoError(t, err)
	assert.Equal(t, h, upper)

	for _, bad := range []string{"", langflowHash[:63], langflowHash + "0", "g" + langflowHash[1:], " " + langflowHash[1:]} {
		_, err := apikey.ParseHash(bad)
		assert.Error(t, err, "%q", bad)
	}
}

func TestHashKeyAllocs(t *testing.T) {
	var h apikey.Hash
	allocs := testing.AllocsPerRun(100, func() { h = apikey.HashKey(langflowKey) })
	assert.Zero(t, allocs)
	assert.Equal(t, langflowHash, h.String())
}

// TestMaskedKey_Reference34: f"{v[:8]}{'*' * (len(v) - 8)}".
func TestMaskedKey_Reference34(t *testing.T) {
	for _, tc := range []struct {
		name string
		rec  apikey.Record
		want string
	}{
		{"Langflow key", apikey.Record{Prefix: langflowKey[:8], Length: 46}, langflowMasked},
		{"length unknown: Langflow's 46", apikey.Record{Prefix: langflowKey[:8]}, langflowMasked},
		{"checksum key", apikey.Record{Prefix: "kf_abcde", Length: 52}, "kf_abcde" + strings.Repeat("*", 44)},
		{"length shorter than prefix", apikey.Record{Prefix: "kf_abcde", Length: 3}, "kf_abcde"},
	} {
		t.Run(tc.name, func(t *testing.T) { assert.Equal(t, tc.want, tc.rec.MaskedKey()) })
	}
}
