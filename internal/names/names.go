// Package names checks the names people give things in the reference
// server (API keys, flows, flow fields): names that are stored in SQL text
// columns, shown in lists next to each other and written to logs.
//
// A name is refused when it is longer than MaxLen bytes, is not valid UTF-8,
// or holds a character that is invisible or changes how the text around it
// is shown: control characters (NUL, ESC, DEL, C1 controls), format
// characters (zero-width spaces and joiners, bidirectional controls such as
// U+202E, the byte-order mark), other default-ignorable characters (Hangul
// fillers, U+034F) and variation selectors, line and paragraph separators,
// noncharacters, and U+FFFD (what a JSON decoder makes of a lone surrogate
// such as "\ud800", so the name stored would not be the name sent). Such
// characters let two different names look identical ("OPENAI_API_KEY" and
// "OPENAI_API_KEY\u200b"), reorder what a log line shows, or (NUL) fail in
// PostgreSQL. Emptiness is the caller's rule.
//
// The rules are those of the library's name check for API keys and
// variables, which is being added at the same time; once it is available,
// this package gives way to it.
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
	// ErrTooLong: the name is longer than MaxLen bytes.
	ErrTooLong = errors.New("name is longer than 255 bytes")
	// ErrInvalid: the name is not valid UTF-8 or holds a refused character
	// (see the package documentation).
	ErrInvalid = errors.New("name must be valid UTF-8 without control or invisible characters")
)

// Check reports whether name is acceptable: nil (also for ""), ErrTooLong or
// ErrInvalid. It allocates nothing and is safe for concurrent use.
func Check(name string) error {
	if len(name) > MaxLen {
		return ErrTooLong
	}
	for _, r := range name {
		if Refused(r) {
			return ErrInvalid
		}
	}
	return nil
}

// Refused reports whether r may not appear in a name (see the package
// documentation). utf8.RuneError (U+FFFD, also what ranging over invalid
// UTF-8 yields) is refused.
func Refused(r rune) bool {
	switch {
	case r < 0x20 || r == 0x7f:
		return true
	case r < 0x80:
		return false
	case r == utf8.RuneError, r&0xfffe == 0xfffe, r >= 0xfdd0 && r <= 0xfdef:
		return true
	}
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp,
		unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector)
}
