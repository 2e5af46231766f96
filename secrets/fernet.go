package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"hash"
	"sync"
	"time"
)

// Fernet token layout (https://github.com/fernet/spec, Spec.md):
//
//	0x80 ‖ timestamp (8, big-endian Unix seconds) ‖ IV (16) ‖ AES-128-CBC ciphertext (n×16) ‖ HMAC-SHA256 (32)
//
// base64url-encoded with padding. This file implements it on the standard
// library's primitives instead of calling fernet-go per token, because
// fernet-go's API builds a new AES cipher and a new HMAC for every call and
// every key; here both are prepared once per key in NewKeyring (see
// BenchmarkEncrypt and BenchmarkDecrypt, which compare the two). fernet-go
// is still the reference in the tests: tokens go both ways between the two.
const (
	fernetVersion = 0x80
	tsOffset      = 1
	ivOffset      = tsOffset + 8
	payOffset     = ivOffset + aes.BlockSize
	macSize       = sha256.Size
	// minTokenLen is the shortest valid decoded token: an empty plaintext
	// still pads to one block.
	minTokenLen = payOffset + aes.BlockSize + macSize
	// maxClockSkew is how far in the future a timestamp may be when a TTL
	// is checked (pyca's _MAX_CLOCK_SKEW, fernet-go's maxClockSkew).
	maxClockSkew = 60 * time.Second
)

var tokenEncoding = base64.URLEncoding

// fernetKey is one 32-byte Fernet key, prepared for use: the AES block
// cipher is built once and HMAC states are pooled, so a token costs no key
// schedule. It is safe for concurrent use.
type fernetKey struct {
	raw   [32]byte // signing key ‖ encryption key; compared for de-duplication only
	block cipher.Block
	macs  sync.Pool // of hash.Hash: HMAC-SHA256 keyed with raw[:16]
}

func newFernetKey(raw [32]byte) (*fernetKey, error) {
	block, err := aes.NewCipher(raw[16:])
	if err != nil {
		return nil, err
	}
	k := &fernetKey{raw: raw, block: block}
	k.macs.New = func() any { return hmac.New(sha256.New, k.raw[:16]) }
	return k, nil
}

// sum appends HMAC-SHA256(signing key, msg) to dst.
func (k *fernetKey) sum(dst, msg []byte) []byte {
	h := k.macs.Get().(hash.Hash)
	h.Reset()
	h.Write(msg)
	dst = h.Sum(dst)
	k.macs.Put(h)
	return dst
}

// verify reports whether tok (decoded, length already checked) carries a
// valid MAC under k, comparing in constant time. The MAC is computed into
// tok's spare capacity when there is room (decodeToken leaves some), so
// trying a key allocates nothing.
func (k *fernetKey) verify(tok []byte) bool {
	n := len(tok) - macSize
	return subtle.ConstantTimeCompare(k.sum(tok[len(tok):], tok[:n]), tok[n:]) == 1
}

// seal encrypts msg with the given timestamp and IV and returns the
// base64url token.
func seal[M ~string | ~[]byte](k *fernetKey, msg M, ts uint64, iv *[aes.BlockSize]byte) string {
	padded := len(msg)/aes.BlockSize*aes.BlockSize + aes.BlockSize
	tok := make([]byte, payOffset+padded, payOffset+padded+macSize)
	tok[0] = fernetVersion
	binary.BigEndian.PutUint64(tok[tsOffset:], ts)
	copy(tok[ivOffset:], iv[:])
	p := tok[payOffset:]
	copy(p, msg)
	for i := len(msg); i < padded; i++ { // PKCS #7
		p[i] = byte(padded - len(msg))
	}
	cipher.NewCBCEncrypter(k.block, iv[:]).CryptBlocks(p, p)
	tok = k.sum(tok, tok)
	return tokenEncoding.EncodeToString(tok)
}

// sealAt is seal with a random IV.
func sealAt[M ~string | ~[]byte](k *fernetKey, msg M, ts uint64) string {
	var iv [aes.BlockSize]byte
	rand.Read(iv[:]) // never fails (crypto/rand, Go 1.24+)
	return seal(k, msg, ts, &iv)
}

// decodeToken base64url-decodes s and checks everything that does not need
// a key: length (at least one block, whole blocks) and version. It returns
// nil when s cannot be a Fernet token.
func decodeToken(s string) []byte {
	if len(s) < tokenEncoding.EncodedLen(minTokenLen) {
		return nil
	}
	tok := make([]byte, tokenEncoding.DecodedLen(len(s))+macSize) // spare room for verify
	n, err := tokenEncoding.Decode(tok, []byte(s))
	if err != nil {
		return nil
	}
	tok = tok[:n]
	if n < minTokenLen || (n-payOffset-macSize)%aes.BlockSize != 0 || tok[0] != fernetVersion {
		return nil
	}
	return tok
}

// timestamp returns the token's creation time in Unix seconds.
func timestamp(tok []byte) uint64 {
	return binary.BigEndian.Uint64(tok[tsOffset:])
}

// checkTTL reports whether a token created at ts is acceptable at now under
// ttl; ttl <= 0 disables the check (Langflow decrypts without a TTL).
func checkTTL(ts uint64, ttl time.Duration, now time.Time) bool {
	if ttl <= 0 {
		return true
	}
	t := time.Unix(int64(ts), 0)
	return !now.After(t.Add(ttl)) && !t.After(now.Add(maxClockSkew))
}

// decrypt decrypts a decoded token whose MAC k has verified, in place, and
// removes the PKCS #7 padding. ok is false when the padding is malformed.
func (k *fernetKey) decrypt(tok []byte) (msg []byte, ok bool) {
	p := tok[payOffset : len(tok)-macSize]
	cipher.NewCBCDecrypter(k.block, tok[ivOffset:payOffset]).CryptBlocks(p, p)
	c := int(p[len(p)-1]) // len(p) >= aes.BlockSize, checked by decodeToken
	if c == 0 || c > aes.BlockSize {
		return nil, false
	}
	var bad byte
	for _, b := range p[len(p)-c:] {
		bad |= b ^ byte(c)
	}
	if bad != 0 {
		return nil, false
	}
	return p[:len(p)-c], true
}
