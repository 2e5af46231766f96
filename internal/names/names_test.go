package names_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"

	"github.com/keyflow-dev/keyflow/internal/names"
)

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		want error
	}{
		{"OPENAI_API_KEY", nil},
		{"My key", nil},
		{"café-κλειδί-鍵", nil},
		{"emoji 🔑", nil},
		{strings.Repeat("a", names.MaxLen), nil},
		{"", nil}, // emptiness is the caller's rule
		{strings.Repeat("a", names.MaxLen+1), names.ErrTooLong},
		{"a\x00b", names.ErrInvalid},
		{"a\x1bb", names.ErrInvalid},
		{"a\x7fb", names.ErrInvalid},
		{"a\u0085b", names.ErrInvalid},
		{"a\tb", names.ErrInvalid},
		{"a\nb", names.ErrInvalid},
		{"OPENAI_API_KEY\u200b", names.ErrInvalid}, // zero-width space
		{"OPENAI\u200d_API_KEY", names.ErrInvalid}, // zero-width joiner
		{"\u202eYEK_IPA_IANEPO", names.ErrInvalid}, // right-to-left override
		{"a\u2066b\u2069", names.ErrInvalid},       // isolates
		{"\ufeffKEY", names.ErrInvalid},            // byte-order mark
		{"KEY\ufe0f", names.ErrInvalid},            // variation selector
		{"KEY\u3164", names.ErrInvalid},            // Hangul filler
		{"a\u2028b", names.ErrInvalid},             // line separator
		{"a\ufffdb", names.ErrInvalid},             // what "\ud800" decodes to
		{"a\xffb", names.ErrInvalid},               // invalid UTF-8
		{"a\xed\xa0\x80b", names.ErrInvalid},       // an encoded surrogate
		{"a\ufdd0b", names.ErrInvalid},             // noncharacter
		{"a\U0010fffe", names.ErrInvalid},          // noncharacter
	} {
		assert.Equal(t, tc.want, names.Check(tc.name), "%q", tc.name)
	}
}

func FuzzNames(f *testing.F) {
	for _, s := range []string{"OPENAI_API_KEY", "a\x00b", "\u202e", " x", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := names.Check(s)
		if err != nil {
			return
		}
		// What Check accepts is storable and printable.
		if len(s) > names.MaxLen || !utf8.ValidString(s) || strings.ContainsAny(s, "\x00\x1b\x7f\ufffd\u200b\u202e") {
			t.Fatalf("accepted %q", s)
		}
	})
}
