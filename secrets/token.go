package secrets

import (
	"crypto/aes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"time"
	"unsafe"

	"github.com/fernet/fernet-go"
)

// Fernet tokens are made and opened by github.com/fernet/fernet-go; this
// file adds what fernet-go leaves to its caller. A token is
// (https://github.com/fernet/spec, Spec.md)
//
//	0x80 ‖ timestamp (8, big-endian Unix seconds) ‖ IV (16) ‖ AES-128-CBC ciphertext (n×16) ‖ HMAC-SHA256 (32)
//
// base64url-encoded with padding. fernet-go's VerifyAndDecrypt is more
// lenient than the spec, and not safe on every input a key holder can
// sign:
//
//   - it ignores base64 errors and opens what decodes before the first bad
//     character, and skips line breaks;
//   - it accepts PKCS #7 padding of 0 or more than 16 bytes;
//   - it slices a token before checking its length, so a token signed with
//     the right key but shorter than the header, or with no ciphertext
//     block, panics.
//
// openWith closes all three without decoding the token twice: the token's
// length says how long the padded plaintext of a well-formed token is, and
// the plaintext fernet-go returns must be 1 to 16 bytes shorter; a token
// fernet-go decoded only in part, or with line breaks, is shorter by at
// least a block, so it fails that check. A panic is recovered as an invalid
// token.
const (
	fernetVersion = 0x80
	headerLen     = 1 + 8 + aes.BlockSize // version, timestamp, IV
	macSize       = sha256.Size
	// minTokenLen is the shortest valid decoded token: an empty plaintext
	// still pads to one block.
	minTokenLen = headerLen + aes.BlockSize + macSize
)

var (
	tokenEncoding = base64.URLEncoding
	minEncodedLen = tokenEncoding.EncodedLen(minTokenLen)
)

// paddedLen returns the length of the padded plaintext of a well-formed
// token as long as token, and false when no well-formed token is.
func paddedLen(token string) (int, bool) {
	n := len(token)
	if n%4 != 0 || n < minEncodedLen {
		return 0, false
	}
	size := n / 4 * 3
	if token[n-1] == '=' {
		size--
		if token[n-2] == '=' {
			size--
		}
	}
	padded := size - headerLen - macSize
	return padded, padded%aes.BlockSize == 0
}

// openWith opens token with the first of keys whose MAC matches and returns
// its plaintext; ok is false when none opens it or it is not a well-formed
// token (see above). It never panics.
func openWith(token string, keys []*fernet.Key) (msg []byte, ok bool) {
	padded, ok := paddedLen(token)
	if !ok {
		return nil, false
	}
	defer func() {
		if recover() != nil { // a token a key holder signed, too short for fernet-go
			msg, ok = nil, false
		}
	}()
	msg = fernet.VerifyAndDecrypt([]byte(token), 0, keys)
	if p := padded - len(msg); msg == nil || p < 1 || p > aes.BlockSize {
		return nil, false
	}
	return msg, true
}

// tokenTime returns the timestamp of a token openWith has accepted.
func tokenTime(token string) uint64 {
	var head [9]byte // version and timestamp: the first 12 characters
	if _, err := tokenEncoding.Decode(head[:], []byte(token[:12])); err != nil {
		return 0 // not reached: openWith accepts only what decodes
	}
	return binary.BigEndian.Uint64(head[1:])
}

// sealAt encrypts msg under key with a fresh IV and the timestamp ts.
func sealAt[M ~string | ~[]byte](key *fernet.Key, msg M, ts uint64) (string, error) {
	tok, err := fernet.EncryptAndSignAtTime([]byte(msg), key, time.Unix(int64(ts), 0))
	if err != nil {
		return "", errRandom
	}
	return bytesToString(tok), nil
}

// bytesToString returns b as a string without copying it. Only for a slice
// fernet-go has just returned: fernet-go allocates every token and
// plaintext it returns afresh and keeps no reference to it, and the caller
// never writes to it, so the string is as immutable as any other.
func bytesToString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
