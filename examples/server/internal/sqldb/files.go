package sqldb

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// PrepareSQLiteFile makes sure an SQLite database file is created readable
// by its owner only: it creates a missing parent directory with mode 0700
// and a missing database file with mode 0600 before SQLite opens it; SQLite
// then creates the -wal and -shm files with the database file's mode. The
// database holds key hashes, Credential tokens and Generic values in clear,
// so it is kept like the secret_key file next to it.
//
// An existing database file (or -wal, -shm) that others may read is left as
// it is (it may be shared on purpose), with a warning naming it. Other
// databases (PostgreSQL) are not files: nothing to do.
func PrepareSQLiteFile(dbc Address, log *slog.Logger) error {
	if dbc.Driver != "sqlite" {
		return nil
	}
	path, _, _ := strings.Cut(strings.TrimPrefix(dbc.DSN, "file:"), "?")
	if _, err := os.Stat(filepath.Dir(path)); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return fmt.Errorf("database directory: %w", err)
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("database file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("database file: %w", err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if st, err := os.Stat(p); err == nil && st.Mode().Perm()&0o077 != 0 {
			log.Warn("the database file can be read by other users; keyflow creates it with mode 0600 (chmod 600 it unless it is shared on purpose)",
				"file", p, "mode", fmt.Sprintf("%04o", st.Mode().Perm()))
		}
	}
	return nil
}
