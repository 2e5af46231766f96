package flows

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestApplyTweaksOrder: tweaks for the component by id and by display name
// apply in the request's order, then field tweaks.
func TestApplyTweaksOrder(t *testing.T) {
	t.Parallel()
	f := Flow{ID: "0123456789abcdef", Name: "Echo", Fields: map[string]Field{"a": {Variable: "V"}}}
	parse := func(s string) []tweakEntry {
		tw, err := parseTweaks(json.RawMessage(s))
		require.NoError(t, err)
		return tw
	}
	assert.Equal(t, "2", applyTweaks(f, parse(`{"Echo":{"a":"1"},"Echo-01234":{"a":"2"}}`))["a"].Value)
	assert.Equal(t, "1", applyTweaks(f, parse(`{"Echo-01234":{"a":"2"},"Echo":{"a":"1"}}`))["a"].Value)
	assert.Equal(t, "3", applyTweaks(f, parse(`{"a":"3","Echo":{"a":"1"}}`))["a"].Value)
	assert.Equal(t, Field{Variable: "V"}, f.Fields["a"], "the flow itself is unchanged")
}

// FuzzParseTweaks: any tweaks value is parsed or refused, never a panic.
func FuzzParseTweaks(f *testing.F) {
	for _, s := range []string{`{}`, `null`, `{"a":1,"B":{"c":null}}`, `[1]`, `{"a":[`, `{"a":{"b":{}}}`, `"x"`} {
		f.Add(s)
	}
	fl := Flow{ID: "0123456789abcdef", Name: "Echo", Fields: map[string]Field{"a": {}, "c": {Value: "v"}}}
	f.Fuzz(func(t *testing.T, s string) {
		tw, err := parseTweaks(json.RawMessage(s))
		if err == nil {
			_ = applyTweaks(fl, tw)
		}
	})
}
