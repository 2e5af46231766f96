package ids

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestNewIsValidAndUnique(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := New()
		assert.True(t, Valid(id), id)
		assert.Equal(t, byte('4'), id[14], "version nibble")
		assert.Contains(t, "89ab", string(id[19]), "variant")
		assert.False(t, seen[id], "duplicate %s", id)
		seen[id] = true
	}
}

func TestValid(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"8f14e45f-ceea-467f-9ed4-6f1a2c3b4d5e", true},
		{"8F14E45F-CEEA-467F-9ED4-6F1A2C3B4D5E", true},
		{"", false},
		{"not-a-uuid", false},
		{"8f14e45fceea467f9ed46f1a2c3b4d5e", false},
		{"8f14e45f-ceea-467f-9ed4-6f1a2c3b4d5g", false},
		{"8f14e45f-ceea-467f-9ed4_6f1a2c3b4d5e", false},
		{"8f14e45f-ceea-467f-9ed4-6f1a2c3b4d5e0", false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, Valid(tt.in), tt.in)
	}
}
