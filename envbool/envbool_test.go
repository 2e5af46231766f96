package envbool_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/envbool"
)

func TestParse(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"1", "true", "TRUE", "True", "t", "T", "yes", "Yes", "y", "on", "ON"} {
		got, err := envbool.Parse("X", v)
		require.NoError(t, err, v)
		assert.True(t, got, v)
	}
	for _, v := range []string{"0", "false", "False", "f", "no", "NO", "n", "off", "Off"} {
		got, err := envbool.Parse("X", v)
		require.NoError(t, err, v)
		assert.False(t, got, v)
	}
	// pydantic's bool parsing: no trimming, no other spellings, and an empty
	// value is not a boolean.
	for _, v := range []string{"", " true", "true ", "2", "-1", "enabled", "truee", "00"} {
		_, err := envbool.Parse("LANGFLOW_X", v)
		require.Error(t, err, "%q", v)
		assert.Contains(t, err.Error(), "LANGFLOW_X")
	}
}

func TestLookup(t *testing.T) {
	t.Parallel()
	env := map[string]string{"EMPTY": "", "ON": "on", "BAD": "maybe"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }

	got, err := envbool.Lookup(lookup, "UNSET", true)
	require.NoError(t, err)
	assert.True(t, got, "unset: the default")
	got, err = envbool.Lookup(lookup, "UNSET", false)
	require.NoError(t, err)
	assert.False(t, got)

	got, err = envbool.Lookup(lookup, "ON", false)
	require.NoError(t, err)
	assert.True(t, got)

	_, err = envbool.Lookup(lookup, "EMPTY", true)
	require.ErrorContains(t, err, "EMPTY is set but empty")
	_, err = envbool.Lookup(lookup, "BAD", true)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "maybe", "the value is not echoed")
}
