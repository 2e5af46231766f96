// Package secretfile reads and writes the master secret's files in the
// config dir: secret_key, and secret_key.new, where rotate-secret keeps the
// new secret of a rotation until it is finished.
package secretfile

import (
	"os"
	"path/filepath"

	"github.com/keyflow-dev/keyflow/secrets"
)

// PendingName is the file of an unfinished rotation's new secret.
const PendingName = secrets.SecretFileName + ".new"

// Read returns the file's content verbatim (Langflow's format: no trailing
// newline), or "" when it is missing or unreadable.
func Read(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(b)
}

// Pending returns the secret an unfinished rotate-secret saved, so the
// server can read values already re-encrypted under it.
func Pending(configDir string) []string {
	if s := Read(filepath.Join(configDir, PendingName)); s != "" {
		return []string{s}
	}
	return nil
}

// Write replaces path atomically (temporary file, fsync, rename) with mode
// 0600.
func Write(path, secret string) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".secret_key-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op after the rename
	if err := writeAndSync(f, secret); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// writeAndSync gives f mode 0600, writes secret, syncs and closes f.
func writeAndSync(f *os.File, secret string) error {
	if err := f.Chmod(0o600); err != nil {
		_ = f.Close()
		return err
	}
	if _, err := f.WriteString(secret); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
