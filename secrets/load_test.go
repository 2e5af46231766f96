package secrets

import (
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// env returns a Getenv reading only vars.
func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// opensWith reports whether a token made by a opens with b: the two
// keyrings share their encryption key.
func opensWith(t testing.TB, a, b *Keyring) bool {
	t.Helper()
	tok, err := a.Encrypt("probe")
	require.NoError(t, err)
	_, err = b.Decrypt(tok)
	return err == nil
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

// Langflow's order (docs/langflow-compatibility.md#secret-key-loading): explicit > LANGFLOW_SECRET_KEY > <config dir>/secret_key
// > generated; an empty env value counts as unset. Unlike Langflow, a secret
// from the environment is never written to the file.
func TestLoadPrecedence(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, SecretFileName), []byte(testShort), 0o600))
	fileKR, envKR, explicitKR := mustKeyring(t, testShort), mustKeyring(t, testSecretB), mustKeyring(t, testSecretA)
	tests := []struct {
		name string
		opts LoadOptions
		want *Keyring
	}{
		{"explicit beats env and file", LoadOptions{Secret: testSecretA, ConfigDir: dir, Getenv: env(map[string]string{EnvSecretKey: testSecretB})}, explicitKR},
		{"env beats file", LoadOptions{ConfigDir: dir, Getenv: env(map[string]string{EnvSecretKey: testSecretB})}, envKR},
		{"empty env counts as unset", LoadOptions{ConfigDir: dir, Getenv: env(map[string]string{EnvSecretKey: ""})}, fileKR},
		{"file", LoadOptions{ConfigDir: dir, Getenv: env(nil)}, fileKR},
		{"env without config dir", LoadOptions{Getenv: env(map[string]string{EnvSecretKey: testSecretB})}, envKR},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := Load(tt.opts)
			require.NoError(t, err)
			assert.True(t, opensWith(t, k, tt.want) && opensWith(t, tt.want, k))
			assert.Equal(t, testShort, readFile(t, filepath.Join(dir, SecretFileName)), "the file is never rewritten")
		})
	}
}

func TestLoadUsesProcessEnvironmentByDefault(t *testing.T) {
	t.Setenv(EnvSecretKey, testSecretB)
	t.Setenv(EnvPreviousSecretKeys, testShort)
	k, err := Load(LoadOptions{})
	require.NoError(t, err)
	assert.True(t, opensWith(t, mustKeyring(t, testSecretB), k))
	assert.True(t, opensWith(t, mustKeyring(t, testShort), k))
}

// As Langflow (docs/langflow-compatibility.md#secret-key-loading): secrets.token_urlsafe(32), written without a newline,
// mode 0600, reused on the next start.
func TestLoadGeneratesPersistsAndReuses(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "config") // missing parents too
	k1, err := Load(LoadOptions{ConfigDir: dir, Getenv: env(nil)})
	require.NoError(t, err)
	assert.Equal(t, DerivationBase64, k1.Derivation(), "a generated secret is a Langflow-usable key")

	path := filepath.Join(dir, SecretFileName)
	secret := readFile(t, path)
	assert.Len(t, secret, 43, "token_urlsafe(32): 43 characters, no padding, no newline")
	raw, err := base64.RawURLEncoding.DecodeString(secret)
	require.NoError(t, err)
	assert.Len(t, raw, 32)
	assert.True(t, opensWith(t, k1, mustKeyring(t, secret)))

	if runtime.GOOS != "windows" {
		fi, err := os.Stat(path)
		require.NoError(t, err)
		assert.Equal(t, fs.FileMode(0o600), fi.Mode().Perm())
		di, err := os.Stat(dir)
		require.NoError(t, err)
		assert.Equal(t, fs.FileMode(0o700), di.Mode().Perm())
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file is left behind")

	k2, err := Load(LoadOptions{ConfigDir: dir, Getenv: env(nil)})
	require.NoError(t, err)
	assert.True(t, opensWith(t, k1, k2), "the next start reuses the secret")
	assert.True(t, readFile(t, path) == secret, "and does not rewrite it")
}

func TestLoadDoesNotWriteEnvironmentSecret(t *testing.T) {
	dir := t.TempDir()
	_, err := Load(LoadOptions{ConfigDir: dir, Getenv: env(map[string]string{EnvSecretKey: testSecretA})})
	require.NoError(t, err)
	_, err = Load(LoadOptions{Secret: testSecretB, ConfigDir: dir})
	require.NoError(t, err)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, entries)
}

func TestLoadReadsFileVerbatim(t *testing.T) {
	dir := t.TempDir()
	// As Langflow: a newline added by hand is part of the secret.
	require.NoError(t, os.WriteFile(filepath.Join(dir, SecretFileName), []byte(testSecretA+"\n"), 0o600))
	k, err := Load(LoadOptions{ConfigDir: dir, Getenv: env(nil)})
	require.NoError(t, err)
	assert.True(t, opensWith(t, k, mustKeyring(t, testSecretA+"\n")))
}

// Langflow regenerates over an empty file (docs/langflow-compatibility.md#secret-key-loading); keyflow reports
// it, and an unreadable file, as errors and leaves the file alone (see Load).
func TestLoadEmptyOrUnreadableSecretFile(t *testing.T) {
	t.Run("empty file is an error and stays", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, SecretFileName)
		require.NoError(t, os.WriteFile(path, nil, 0o600))
		_, err := Load(LoadOptions{ConfigDir: dir, Getenv: env(nil)})
		require.ErrorIs(t, err, ErrEmptySecret)
		assert.Contains(t, err.Error(), path)
		assert.Empty(t, readFile(t, path), "not regenerated")
	})
	t.Run("directory in its place", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, os.Mkdir(filepath.Join(dir, SecretFileName), 0o700))
		_, err := Load(LoadOptions{ConfigDir: dir, Getenv: env(nil)})
		require.Error(t, err)
		assert.NotErrorIs(t, err, fs.ErrNotExist)
	})
	t.Run("no read permission", func(t *testing.T) {
		if runtime.GOOS == "windows" || os.Geteuid() == 0 {
			t.Skip("file modes do not restrict this user")
		}
		dir := t.TempDir()
		path := filepath.Join(dir, SecretFileName)
		require.NoError(t, os.WriteFile(path, []byte(testSecretA), 0o000))
		_, err := Load(LoadOptions{ConfigDir: dir, Getenv: env(nil)})
		require.ErrorIs(t, err, fs.ErrPermission)
		assert.NotContains(t, err.Error(), testSecretA)
	})
	t.Run("too large", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, SecretFileName), make([]byte, maxSecretFileSize+1), 0o600))
		_, err := Load(LoadOptions{ConfigDir: dir, Getenv: env(nil)})
		require.Error(t, err)
	})
}

func TestLoadWithoutSecretOrConfigDir(t *testing.T) {
	_, err := Load(LoadOptions{Getenv: env(nil)})
	assert.ErrorIs(t, err, ErrNoConfigDir)
}

func TestLoadPreviousSecrets(t *testing.T) {
	third := "third-secret"
	k, err := Load(LoadOptions{
		Secret:   testSecretA,
		Previous: []string{testShort},
		Getenv:   env(map[string]string{EnvPreviousSecretKeys: " " + testSecretB + " ,, " + third + ","}),
	})
	require.NoError(t, err)
	for _, prev := range []string{testShort, testSecretB, third} {
		assert.True(t, opensWith(t, mustKeyring(t, prev), k), "previous secret %q", prev)
		assert.False(t, opensWith(t, k, mustKeyring(t, prev)), "encryption uses the primary only")
	}
	_, err = Load(LoadOptions{Secret: testSecretA, Previous: []string{""}})
	assert.ErrorIs(t, err, ErrEmptySecret)
}

// A crash between writing the secret and publishing it leaves no
// secret_key (so no truncated one); the next start generates a complete one.
func TestLoadCrashBeforePublish(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, SecretFileName)
	crash := errors.New("simulated crash")
	var sawTemp bool
	testHookBeforePublish = func(tmp string) error {
		_, err := os.Stat(path)
		assert.ErrorIs(t, err, fs.ErrNotExist, "nothing published before the temp file is complete")
		assert.Len(t, readFile(t, tmp), 43, "the temp file is complete before publishing")
		if runtime.GOOS != "windows" {
			fi, err := os.Stat(tmp)
			require.NoError(t, err)
			assert.Equal(t, fs.FileMode(0o600), fi.Mode().Perm())
		}
		sawTemp = true
		return crash
	}
	t.Cleanup(func() { testHookBeforePublish = nil })
	_, err := Load(LoadOptions{ConfigDir: dir, Getenv: env(nil)})
	require.ErrorIs(t, err, crash)
	require.True(t, sawTemp)
	_, err = os.Stat(path)
	require.ErrorIs(t, err, fs.ErrNotExist)

	// A leftover partial temp file of a real crash is ignored.
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".secret_key-123.tmp"), []byte("dBuu"), 0o600))
	testHookBeforePublish = nil
	k, err := Load(LoadOptions{ConfigDir: dir, Getenv: env(nil)})
	require.NoError(t, err)
	assert.Len(t, readFile(t, path), 43)
	assert.True(t, opensWith(t, k, mustKeyring(t, readFile(t, path))))
}

// Another process publishing first wins; this one adopts its secret.
func TestLoadLosesRaceToAnotherProcess(t *testing.T) {
	dir := t.TempDir()
	testHookBeforePublish = func(string) error {
		return os.WriteFile(filepath.Join(dir, SecretFileName), []byte(testSecretB), 0o600)
	}
	t.Cleanup(func() { testHookBeforePublish = nil })
	k, err := Load(LoadOptions{ConfigDir: dir, Getenv: env(nil)})
	require.NoError(t, err)
	assert.True(t, opensWith(t, k, mustKeyring(t, testSecretB)))
	assert.Equal(t, testSecretB, readFile(t, filepath.Join(dir, SecretFileName)))
}

func TestLoadConcurrentFirstStart(t *testing.T) {
	dir := t.TempDir()
	const n = 8
	keyrings := make([]*Keyring, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			k, err := Load(LoadOptions{ConfigDir: dir, Getenv: env(nil)})
			assert.NoError(t, err)
			keyrings[i] = k
		})
	}
	wg.Wait()
	file := mustKeyring(t, readFile(t, filepath.Join(dir, SecretFileName)))
	for _, k := range keyrings {
		require.NotNil(t, k)
		assert.True(t, opensWith(t, k, file), "every start agrees on the published secret")
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1)
}

func TestWriteAndReadSecretFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cfg")
	_, err := ReadSecretFile(dir)
	assert.ErrorIs(t, err, fs.ErrNotExist)

	require.NoError(t, WriteSecretFile(dir, testSecretA))
	got, err := ReadSecretFile(dir)
	require.NoError(t, err)
	assert.Equal(t, testSecretA, got)
	require.NoError(t, WriteSecretFile(dir, testSecretB), "replaces")
	got, err = ReadSecretFile(dir)
	require.NoError(t, err)
	assert.Equal(t, testSecretB, got)
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(filepath.Join(dir, SecretFileName))
		require.NoError(t, err)
		assert.Equal(t, fs.FileMode(0o600), fi.Mode().Perm())
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1)
	assert.ErrorIs(t, WriteSecretFile(dir, ""), ErrEmptySecret)
}

func TestGenerateSecret(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		s := GenerateSecret()
		require.Len(t, s, 43)
		raw, err := base64.RawURLEncoding.DecodeString(s)
		require.NoError(t, err)
		require.Len(t, raw, 32)
		require.False(t, seen[s])
		seen[s] = true
		require.Equal(t, DerivationBase64, mustKeyring(t, s).Derivation())
	}
}

func TestDefaultConfigDir(t *testing.T) {
	got, err := DefaultConfigDir(env(map[string]string{EnvConfigDir: "rel/dir"}))
	require.NoError(t, err)
	assert.True(t, filepath.IsAbs(got))
	assert.True(t, strings.HasSuffix(got, filepath.Join("rel", "dir")))

	cache, err := os.UserCacheDir()
	if err != nil {
		t.Skip("no user cache dir here")
	}
	got, err = DefaultConfigDir(env(nil))
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(cache, "keyflow"), got)

	t.Setenv(EnvConfigDir, "/from/env")
	got, err = DefaultConfigDir(nil)
	require.NoError(t, err)
	assert.Equal(t, filepath.Clean("/from/env"), got)
}
