package secretfile

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secret_key")
	require.NoError(t, Write(path, "first"))
	require.NoError(t, Write(path, "second"))
	assert.Equal(t, "second", Read(path), "replaced verbatim, no newline")
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	entries, _ := os.ReadDir(filepath.Dir(path))
	assert.Len(t, entries, 1, "no temporary file left behind")
	assert.Equal(t, "", Read(path+".missing"))
}
