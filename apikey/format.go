package apikey

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"hash/crc32"
	"strings"
)

// MaxKeyLength is the longest key, in bytes, that any format and the Manager
// accept. Longer input is rejected before anything else is done with it.
const MaxKeyLength = 256

// Format generates keys of one shape and recognises them.
//
// Implementations must be safe for concurrent use. Check must reject, without
// I/O and without hashing, anything that Generate cannot have produced; it
// returns an error wrapping [ErrInvalid] with a reason that never contains
// the key. Check is on the verification hot path, so it should not allocate.
type Format interface {
	// Generate returns a new random key.
	Generate() (string, error)
	// Check returns nil if key is well-formed, or an error wrapping
	// ErrInvalid. It does no I/O and no hashing.
	Check(key string) error
}

// Langflow is Langflow's key format (docs/langflow-compatibility.md#api-key-format): "sk-" followed by
// Python's secrets.token_urlsafe(32), that is 32 random bytes in base64url
// without padding, 46 characters in all. Check accepts exactly that: the
// prefix, the length, the base64url alphabet, and the canonical encoding of
// the last character (its two unused low bits are zero, as every encoder
// writes them).
var Langflow Format = langflowFormat{}

const (
	langflowPrefix = "sk-"
	langflowLen    = len(langflowPrefix) + 43 // base64url of 32 bytes, unpadded
)

// b64url maps a byte to its value in the base64url alphabet, or 0xff.
var b64url = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = byte(i)
	}
	return t
}()

type langflowFormat struct{}

func (langflowFormat) Generate() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return langflowPrefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

func (langflowFormat) Check(key string) error {
	switch {
	case key == "":
		return errEmpty
	case len(key) > MaxKeyLength:
		return errTooLong
	case !strings.HasPrefix(key, langflowPrefix):
		return errPrefix
	case len(key) != langflowLen:
		return errLength
	}
	if !inAlphabet(&b64url, key[len(langflowPrefix):]) {
		return errAlphabet
	}
	// 43 characters carry 258 bits for 256: the last character's two low
	// bits are padding and are zero in every canonical encoding.
	if b64url[key[len(key)-1]]&3 != 0 {
		return errNonCanonical
	}
	return nil
}

func (langflowFormat) String() string { return "langflow (sk-…, 46 characters)" }

// The checksum format: prefix, 43 random base62 characters (256 bits), and
// the CRC32 (IEEE) of everything before it as 6 zero-padded base62 digits.
const (
	base62         = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	ckBodyLen      = 43
	ckSumLen       = 6
	maxPrefixLen   = 16
	ckSeparator    = '_'
	ckRejectAbove  = 256 - 256%62 // bytes ≥ 248 are redrawn, so every digit is uniform
	errPrefixShape = "apikey: checksum prefix must be 1 to 16 letters, digits or underscores, starting with a letter"
)

// b62 maps a byte to its base62 value, or 0xff.
var b62 = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i := 0; i < len(base62); i++ {
		t[base62[i]] = byte(i)
	}
	return t
}()

type checksumFormat struct {
	prefix string // ends with '_'
	length int
}

// NewChecksumFormat returns an opt-in key format in the style of GitHub's
// tokens: prefix, then 43 random base62 characters (256 bits), then the CRC32
// (IEEE) of everything before it as 6 base62 digits, for example
// "acme_4Qh…Xw0b2Kc1". A unique prefix lets secret scanners find leaked keys,
// and the checksum lets Check reject mistyped or made-up keys without I/O.
//
// prefix is 1 to 16 ASCII letters, digits or underscores, starting with a
// letter; an underscore is appended when it does not end with one, so "acme"
// and "acme_" give the same format. Check accepts only keys with this exact
// prefix, length, alphabet and checksum.
//
// Keys of this format are longer than Langflow's; use [Config.AcceptFormats]
// to accept both while migrating.
func NewChecksumFormat(prefix string) (Format, error) {
	if len(prefix) == 0 || len(prefix) > maxPrefixLen {
		return nil, errors.New(errPrefixShape)
	}
	for i := 0; i < len(prefix); i++ {
		c := prefix[i]
		letter := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
		if i == 0 && !letter || !letter && c != ckSeparator && !('0' <= c && c <= '9') {
			return nil, errors.New(errPrefixShape)
		}
	}
	if prefix[len(prefix)-1] != ckSeparator {
		prefix += string(ckSeparator)
	}
	return &checksumFormat{prefix: prefix, length: len(prefix) + ckBodyLen + ckSumLen}, nil
}

func (f *checksumFormat) Generate() (string, error) {
	out := make([]byte, 0, f.length)
	out = append(out, f.prefix...)
	var buf [64]byte
	for len(out) < len(f.prefix)+ckBodyLen {
		if _, err := rand.Read(buf[:]); err != nil {
			return "", err
		}
		for _, b := range buf {
			if b < ckRejectAbove && len(out) < len(f.prefix)+ckBodyLen {
				out = append(out, base62[b%62])
			}
		}
	}
	sum := crc32.ChecksumIEEE(out)
	var digits [ckSumLen]byte
	for i := ckSumLen - 1; i >= 0; i-- {
		digits[i] = base62[sum%62]
		sum /= 62
	}
	out = append(out, digits[:]...)
	return string(out), nil
}

func (f *checksumFormat) Check(key string) error {
	switch {
	case key == "":
		return errEmpty
	case len(key) > MaxKeyLength:
		return errTooLong
	case !strings.HasPrefix(key, f.prefix):
		return errPrefix
	case len(key) != f.length:
		return errLength
	}
	if !inAlphabet(&b62, key[len(f.prefix):]) {
		return errAlphabet
	}
	var want uint64
	for i := len(key) - ckSumLen; i < len(key); i++ {
		want = want*62 + uint64(b62[key[i]])
	}
	if want != uint64(crc32String(key[:len(key)-ckSumLen])) {
		return errChecksum
	}
	return nil
}

func (f *checksumFormat) String() string { return "checksum (" + f.prefix + "…)" }

// inAlphabet reports whether every byte of s has a value (not 0xff) in table.
// Two accumulators and no early exit: about twice as fast as the plain loop.
func inAlphabet(table *[256]byte, s string) bool {
	var a, b byte
	i := 0
	for ; i+1 < len(s); i += 2 {
		a |= table[s[i]]
		b |= table[s[i+1]]
	}
	if i < len(s) {
		a |= table[s[i]]
	}
	return (a|b)&0xc0 == 0 // values are < 64; 0xff marks bytes outside
}

// crc32String is crc32.ChecksumIEEE of a string, without copying it.
func crc32String(s string) uint32 { return crc32.ChecksumIEEE(readOnlyBytes(s)) }
