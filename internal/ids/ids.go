// Package ids makes and checks the random (version 4) UUIDs that keyflow uses
// as record IDs. It exists so that library packages need no UUID dependency.
package ids

import (
	"crypto/rand"
	"encoding/hex"
)

// New returns a new random UUID (RFC 9562 version 4) in its canonical
// lower-case 36-character form.
func New() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+).
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}

// Valid reports whether s is a UUID in the canonical 8-4-4-4-12 hexadecimal
// form (either case). It does not check the version or variant, so UUIDs made
// by Langflow (Python's uuid4) and by other systems are accepted.
func Valid(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}
