// Package names validates the names users give things in keyflow: API key
// names, variable names, a variable's default_fields entries, and (in the
// reference server) flow names and fields. One rule set, so that a name that
// is refused in one place is refused everywhere, and so that no name can
// pass for another one on screen. Langflow checks none of this (see
// docs/langflow-compatibility.md#names).
//
// A name is refused when it is longer than MaxLen bytes, is not valid UTF-8,
// or holds a character that is invisible or that changes how the text
// around it is shown:
//
//   - control characters (Unicode Cc: NUL, ESC, DEL, C1 controls…), which
//     PostgreSQL refuses (NUL) or terminals interpret (ESC);
//   - U+FFFD, the replacement character: what a decoder makes of invalid
//     input, such as a JSON "\ud800" escape (an unpaired surrogate);
//   - format characters (Unicode Cf): zero-width characters (U+200B…U+200D,
//     U+2060, U+FEFF), bidirectional controls (U+202A…U+202E,
//     U+2066…U+2069, U+200E, U+200F), the soft hyphen…;
//   - other default-ignorable characters (Hangul fillers, U+034F…) and
//     variation selectors;
//   - line and paragraph separators (U+2028, U+2029) and noncharacters
//     (U+FFFE, U+FFFF…).
//
// Emptiness is the caller's rule: Langflow lets an API key have no name but
// not a variable. The functions are safe for concurrent use and allocate
// only for the error they return, whose message never contains the name.
package names

import (
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// MaxLen is the longest name accepted, in bytes.
const MaxLen = 255

// ErrInvalid matches (errors.Is) every error of this package.
var ErrInvalid = errors.New("names: invalid name")

// Error says why a name was refused. Reason is safe to show to a client: it
// names the offending character's code point, never the name.
type Error struct{ Reason string }

// Error returns Reason.
func (e *Error) Error() string { return e.Reason }

// Is makes every *Error match ErrInvalid.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// Check returns nil if name is acceptable (see the package documentation),
// and an *Error otherwise, whose Reason starts with "name". The empty name is
// acceptable here.
func Check(name string) error {
	if reason := check(name); reason != "" {
		return &Error{"name " + reason}
	}
	return nil
}

// check returns why s is refused, or "".
func check(s string) string {
	if len(s) > MaxLen {
		return fmt.Sprintf("is longer than %d bytes", MaxLen)
	}
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return "is not valid UTF-8"
			}
			return "holds U+FFFD, the replacement character (an unpaired surrogate escape or invalid input)"
		}
		if Refused(r) {
			return fmt.Sprintf("holds the invisible or control character %U", r)
		}
	}
	return ""
}

// CheckList checks a list of names, such as a variable's default_fields: at
// most maxItems entries (maxItems < 0: no limit), each non-empty and accepted
// by Check. The error names the entry's position, never its content.
func CheckList(items []string, maxItems int) error {
	if maxItems >= 0 && len(items) > maxItems {
		return &Error{fmt.Sprintf("more than %d entries", maxItems)}
	}
	for i, s := range items {
		if s == "" {
			return &Error{fmt.Sprintf("entry %d is empty", i)}
		}
		if reason := check(s); reason != "" {
			return &Error{fmt.Sprintf("entry %d %s", i, reason)}
		}
	}
	return nil
}

// Refused reports whether r may not appear in a name: a control, format,
// default-ignorable, variation-selector, line- or paragraph-separator
// character, U+FFFD or a noncharacter.
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
