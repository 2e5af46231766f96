package names_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/names"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"", "OPENAI_API_KEY", "my key", "clé café", "ключ", "鍵", "emoji 🔑", "a-b.c_d:e/f", strings.Repeat("x", names.MaxLen)} {
		assert.NoError(t, names.Check(ok), "%q", ok)
	}
	for name, bad := range map[string]string{
		"NUL":                    "a\x00b",
		"ESC":                    "\x1b[31mred",
		"newline":                "a\nb",
		"tab":                    "a\tb",
		"DEL":                    "a\x7f",
		"C1 control":             "a\u0085",
		"invalid UTF-8":          "a\xffb",
		"encoded surrogate":      "a\xed\xa0\x80",
		"U+FFFD (from \\ud800)":  "a\ufffdb",
		"zero-width space":       "OPENAI\u200B_API_KEY",
		"zero-width joiner":      "a\u200db",
		"word joiner":            "a\u2060",
		"BOM":                    "\ufeffOPENAI_API_KEY",
		"right-to-left override": "OPENAI_\u202eYEK_IPA",
		"bidi isolate":           "a\u2066b",
		"LRM":                    "a\u200e",
		"soft hyphen":            "OPENAI\u00ad_API_KEY",
		"Hangul filler":          "a\u3164",
		"variation selector":     "a\ufe0f",
		"line separator":         "a\u2028b",
		"noncharacter":           "a\uffff",
		"too long":               strings.Repeat("x", names.MaxLen+1),
	} {
		err := names.Check(bad)
		require.Error(t, err, name)
		assert.ErrorIs(t, err, names.ErrInvalid, name)
		assert.NotContains(t, err.Error(), bad, "the name is never echoed")
	}
}

func TestCheckList(t *testing.T) {
	t.Parallel()
	assert.NoError(t, names.CheckList(nil, 2))
	assert.NoError(t, names.CheckList([]string{"OpenAI", "api_key"}, 2))
	assert.NoError(t, names.CheckList(make([]string, 0, 100), -1))
	for name, bad := range map[string][]string{
		"too many":    {"a", "b", "c"},
		"empty entry": {"a", ""},
		"NUL entry":   {"a\x00"},
		"long entry":  {strings.Repeat("x", names.MaxLen+1)},
		"bidi entry":  {"ok", "\u202e"},
	} {
		err := names.CheckList(bad, 2)
		require.Error(t, err, name)
		assert.ErrorIs(t, err, names.ErrInvalid, name)
	}
	assert.ErrorContains(t, names.CheckList([]string{"a", "b\x1b"}, 5), "entry 1")
}

func FuzzCheck(f *testing.F) {
	for _, s := range []string{"", "OPENAI_API_KEY", "a\x00", "\u202e", "\xff", "\ufffd"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := names.Check(s)
		if err != nil {
			if s != "" && strings.Contains(err.Error(), s) && len(s) > 3 {
				t.Fatalf("error %q echoes the name", err)
			}
			return
		}
		// Accepted: valid UTF-8, short, nothing refused.
		if len(s) > names.MaxLen {
			t.Fatal("too long accepted")
		}
		for _, r := range s {
			if names.Refused(r) {
				t.Fatalf("refused rune %U accepted", r)
			}
		}
	})
}
