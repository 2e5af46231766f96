package ids_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/keyflow-dev/keyflow/examples/internal/ids"
)

func TestValidAcceptsOnlyTheCanonicalForm(t *testing.T) {
	id := ids.New()
	assert.True(t, ids.Valid(id), id)
	assert.NotEqual(t, id, ids.New())
	assert.True(t, ids.Valid("8F14E45F-CEEA-467F-9ED4-6F1A2C3B4D5E"))
	for _, s := range []string{
		"", "not-a-uuid",
		"8f14e45fceea467f9ed46f1a2c3b4d5e",              // no dashes
		"{8f14e45f-ceea-467f-9ed4-6f1a2c3b4d5e}",        // braces
		"urn:uuid:8f14e45f-ceea-467f-9ed4-6f1a2c3b4d5e", // URN
		"8f14e45f-ceea-467f-9ed4-6f1a2c3b4d5g",
	} {
		assert.False(t, ids.Valid(s), s)
	}
}
