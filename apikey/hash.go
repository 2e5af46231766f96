package apikey

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"unsafe"
)

// Hash is the SHA-256 digest of a plaintext key: what stores keep instead of
// the key. Its String form is Langflow's api_key_hash (lower-case hex of
// hashlib.sha256(key.encode()).digest()), so hashes of imported Langflow keys
// match Langflow's column.
type Hash [32]byte

// HashKey returns the SHA-256 hash of key. It does not allocate.
func HashKey(key string) Hash { return sha256.Sum256(readOnlyBytes(key)) }

// readOnlyBytes returns the bytes of s without copying them, for functions
// that neither modify nor keep their argument (sha256.Sum256,
// crc32.ChecksumIEEE): []byte(s) would copy the key to the heap on every
// verification.
func readOnlyBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// String returns h as 64 lower-case hexadecimal characters, the form stored
// in Langflow's api_key_hash column and in package sqlstore.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

var errBadHash = errors.New("apikey: hash must be 64 hexadecimal characters")

// ParseHash parses the 64-character hexadecimal form of a hash (either case).
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*len(h) {
		return Hash{}, errBadHash
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return Hash{}, errBadHash
	}
	return h, nil
}
