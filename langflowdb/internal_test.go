package langflowdb

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestCanonicalID(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"0123456789abcdef0123456789ABCDEF", "01234567-89ab-cdef-0123-456789abcdef"},
		{"01234567-89AB-cdef-0123-456789abcdef", "01234567-89ab-cdef-0123-456789abcdef"},
		{"01234567-89ab-cdef-0123-456789abcde", ""},
		{"0123456789ab-cdef-0123-456789abcdef", ""},
		{"01234567x89ab-cdef-0123-456789abcdef", ""},
		{"g1234567-89ab-cdef-0123-456789abcdef", ""},
		{"", ""},
		{"user-a", ""},
	} {
		got, err := canonicalID(tc.in)
		if tc.want == "" {
			assert.Error(t, err, tc.in)
			continue
		}
		assert.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got)
	}
}

// FuzzCanonicalID: any input either fails or gives a canonical UUID that
// maps to itself.
func FuzzCanonicalID(f *testing.F) {
	f.Add("0123456789abcdef0123456789abcdef")
	f.Add("01234567-89ab-cdef-0123-456789abcdef")
	f.Add("--------------------------------0000")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := canonicalID(s)
		if err != nil {
			return
		}
		again, err := canonicalID(c)
		if err != nil || again != c || len(c) != 36 {
			t.Fatalf("canonicalID(%q) = %q, not canonical", s, c)
		}
	})
}
