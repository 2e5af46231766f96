package dotenv_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/variables/dotenv"
)

// TestLoad documents the override semantics: the file wins over the process
// environment (Langflow's load_dotenv(override=True), docs/langflow-compatibility.md#env-files), later
// files win over earlier ones, errors name the path and never a value.
func TestLoad(t *testing.T) {
	dir := t.TempDir()
	first := filepath.Join(dir, "first.env")
	second := filepath.Join(dir, "second.env")
	bad := filepath.Join(dir, "bad.env")
	require.NoError(t, os.WriteFile(first, []byte("KF_TEST_A=from-first\nKF_TEST_B=from-first\n"), 0o600))
	require.NoError(t, os.WriteFile(second, []byte("KF_TEST_B=from-second\n"), 0o600))
	require.NoError(t, os.WriteFile(bad, []byte("KF_TEST_C=ok\nthis is not valid s3cr3t-line\n"), 0o600))
	t.Setenv("KF_TEST_A", "from-process")
	t.Setenv("KF_TEST_B", "from-process")
	t.Setenv("KF_TEST_C", "") // restored after the test

	require.NoError(t, dotenv.Load(first, second))
	assert.Equal(t, "from-first", os.Getenv("KF_TEST_A"), "the file overrides the process environment")
	assert.Equal(t, "from-second", os.Getenv("KF_TEST_B"), "later files override earlier ones")

	err := dotenv.Load(filepath.Join(dir, "missing.env"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "missing.env")
	err = dotenv.Load(bad)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "s3cr3t")
	assert.Empty(t, os.Getenv("KF_TEST_C"), "a malformed file sets nothing, not even its valid lines")
}

func TestLoadDefaultsToDotEnvInWorkingDir(t *testing.T) {
	t.Chdir(t.TempDir())
	require.NoError(t, os.WriteFile(".env", []byte("KF_TEST_D=here\n"), 0o600))
	t.Setenv("KF_TEST_D", "")
	require.NoError(t, dotenv.Load())
	assert.Equal(t, "here", os.Getenv("KF_TEST_D"))
}
