package isnil_test

import (
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/keyflow-dev/keyflow/internal/isnil"
)

func TestValue(t *testing.T) {
	t.Parallel()
	var r io.Reader
	assert.True(t, isnil.Value(nil))
	assert.True(t, isnil.Value(r))
	assert.True(t, isnil.Value((*strings.Reader)(nil)))
	assert.True(t, isnil.Value(io.Reader((*strings.Reader)(nil))))
	assert.True(t, isnil.Value((func())(nil)))
	assert.True(t, isnil.Value(map[string]int(nil)))
	assert.False(t, isnil.Value(strings.NewReader("")))
	assert.False(t, isnil.Value(0))
	assert.False(t, isnil.Value(""))
	assert.False(t, isnil.Value(struct{}{}))
}
