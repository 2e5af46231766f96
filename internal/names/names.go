// Package names checks the names people give things in keyflow and the
// reference server (API keys, variables, flows, flow fields): names that
// are stored in SQL text columns, shown in lists next to each other and
// written to logs.
//
// A name must be valid UTF-8 of at most MaxLen bytes, must not begin or end
// with a space, and may hold only characters that print as themselves:
// no control characters (NUL, ESC, ...), no format or other
// default-ignorable characters (zero-width spaces and joiners,
// bidirectional controls such as U+202E, the byte-order mark, variation
// selectors, Hangul fillers), no space other than U+0020, no line or
// paragraph separators, no noncharacters, and no U+FFFD (what a JSON decoder
// makes of a lone surrogate such as "\ud800": the name stored would not be
// the name sent). Such characters let two different names look identical
// ("OPENAI_API_KEY" and "OPENAI_API_KEY\u200b"), reorder what a log line
// shows, or (NUL) fail in PostgreSQL.
package names

import (
	"errors"
	"unicode"
	"unicode/utf8"
)

// MaxLen is the longest name accepted, in bytes.
const MaxLen = 255

// Errors of Check. Their messages never repeat the name.
var (
	// ErrEmpty: the name is "".
	ErrEmpty = errors.New("name is empty")
	// ErrTooLong: the name is longer than MaxLen bytes.
	ErrTooLong = errors.New("name is longer than 255 bytes")
	// ErrInvalid: the name is not valid UTF-8, begins or ends with a space,
	// or holds a character that does not print as itself (see the package
	// documentation).
	ErrInvalid = errors.New("name must be valid UTF-8 without control, invisible or look-alike space characters, and must not begin or end with a space")
)

// Check reports whether name is acceptable: nil, ErrEmpty, ErrTooLong or
// ErrInvalid. It allocates nothing and is safe for concurrent use.
func Check(name string) error {
	switch {
	case name == "":
		return ErrEmpty
	case len(name) > MaxLen:
		return ErrTooLong
	case name[0] == ' ' || name[len(name)-1] == ' ':
		return ErrInvalid
	}
	for _, r := range name {
		if !Printable(r) {
			return ErrInvalid
		}
	}
	return nil
}

// Printable reports whether r may appear in a name (see the package
// documentation). utf8.RuneError (U+FFFD, also what ranging over invalid
// UTF-8 yields) is not.
func Printable(r rune) bool {
	switch {
	case r == ' ':
		return true
	case r < ' ' || r == utf8.RuneError:
		return false
	case r >= 0xFDD0 && r <= 0xFDEF, r&0xFFFE == 0xFFFE:
		return false // noncharacters
	case r < 0x7F:
		return true
	}
	return !unicode.In(r, unicode.Cc, unicode.Cf, unicode.Cs, unicode.Co, unicode.Zs, unicode.Zl, unicode.Zp,
		unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector)
}
