package secrets

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Environment variables and file names Load and DefaultConfigDir read.
const (
	EnvSecretKey          = "LANGFLOW_SECRET_KEY"          // the master secret (Langflow's name)
	EnvPreviousSecretKeys = "KEYFLOW_PREVIOUS_SECRET_KEYS" // comma-separated previous secrets (keyflow only)
	EnvConfigDir          = "LANGFLOW_CONFIG_DIR"          // where the secret file lives (Langflow's name)
	SecretFileName        = "secret_key"                   // the secret file in the config dir (Langflow's name)
)

// ErrNoConfigDir is returned by Load when there is no secret (neither
// LoadOptions.Secret nor LANGFLOW_SECRET_KEY) and no LoadOptions.ConfigDir to
// keep a generated one in. Langflow would use a random secret for this
// process only, which makes everything it encrypts unreadable after a
// restart; keyflow refuses instead.
var ErrNoConfigDir = errors.New("secrets: no secret and no config dir: set " + EnvSecretKey + " or a config dir")

// maxSecretFileSize bounds what ReadSecretFile reads, so a wrong path (a
// device, a huge file) cannot exhaust memory.
const maxSecretFileSize = 64 << 10

// LoadOptions tell Load where to find the master secret. The zero value
// reads only the environment.
type LoadOptions struct {
	Secret    string              // explicit value; wins when non-empty
	Previous  []string            // explicit previous secrets (decryption only), tried before KEYFLOW_PREVIOUS_SECRET_KEYS
	ConfigDir string              // where secret_key lives; required when the secret may be generated
	Getenv    func(string) string // nil: os.Getenv
}

// Load returns the Keyring of the master secret, taken from the first of:
//
//  1. opts.Secret, when non-empty;
//  2. LANGFLOW_SECRET_KEY, when non-empty (read with opts.Getenv);
//  3. the file secret_key in opts.ConfigDir, read verbatim as Langflow reads
//     it (no trimming: a newline added by hand is part of the secret);
//  4. a new secret — 32 random bytes, base64url without padding, like
//     Langflow's secrets.token_urlsafe(32) — written to
//     <ConfigDir>/secret_key, which later calls (and Langflow) reuse.
//
// The new file gets mode 0600 (a created directory 0700) and no trailing
// newline, and is written atomically: to a temporary file, synced, then
// hard-linked into place, which fails if another process created the file
// first — then that file is read instead. A crash never leaves a truncated
// secret, and concurrent first starts agree on one secret.
//
// An empty or unreadable secret_key is an error, never a reason to generate:
// Langflow regenerates over an empty file, but a secret file that exists
// and is empty or unreadable means the secret that encrypted the stored data
// is gone or out of reach, and silently encrypting new data under a new
// secret would hide that until nothing could be recovered. Remove the file
// to start afresh. Without any secret and with opts.ConfigDir "", Load
// returns ErrNoConfigDir.
//
// Unlike Langflow, Load never writes a secret it did not generate. Langflow
// copies LANGFLOW_SECRET_KEY into secret_key on every start, which (a)
// spreads a secret that the operator keeps in a secret manager or an
// orchestrator's secret store onto a disk, its backups and its volume
// snapshots, and (b) overwrites the secret generated earlier, often the only
// copy of the secret that encrypted the existing data. A secret from the
// environment therefore stays in the environment, and an existing
// secret_key is left as it is (pass its content as a previous secret to
// rotate away from it).
//
// Previous secrets (decryption only, see NewKeyring) are opts.Previous,
// then KEYFLOW_PREVIOUS_SECRET_KEYS split on commas, each entry trimmed of
// surrounding white space, empty entries ignored (a previous secret with
// surrounding white space must come through opts.Previous).
//
// Load logs nothing, and its errors name files, never a secret.
func Load(opts LoadOptions) (*Keyring, error) {
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	secret := opts.Secret
	if secret == "" {
		secret = getenv(EnvSecretKey)
	}
	if secret == "" {
		if opts.ConfigDir == "" {
			return nil, ErrNoConfigDir
		}
		var err error
		secret, err = ReadSecretFile(opts.ConfigDir)
		if errors.Is(err, fs.ErrNotExist) {
			secret, err = createSecretFile(opts.ConfigDir)
		}
		if err != nil {
			return nil, err
		}
	}
	previous := append([]string(nil), opts.Previous...)
	for _, p := range strings.Split(getenv(EnvPreviousSecretKeys), ",") {
		if p = strings.TrimSpace(p); p != "" {
			previous = append(previous, p)
		}
	}
	return NewKeyring(secret, previous...)
}

// DefaultConfigDir returns LANGFLOW_CONFIG_DIR (made absolute) when set,
// else os.UserCacheDir()/keyflow. getenv nil means os.Getenv; the user cache
// dir itself comes from the process environment ($XDG_CACHE_HOME, $HOME).
// It creates nothing.
func DefaultConfigDir(getenv func(string) string) (string, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if dir := getenv(EnvConfigDir); dir != "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return "", fmt.Errorf("secrets: %s: %w", EnvConfigDir, err)
		}
		return abs, nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("secrets: no config dir (set %s): %w", EnvConfigDir, err)
	}
	return filepath.Join(cache, "keyflow"), nil
}

// GenerateSecret returns a new master secret: 32 bytes from crypto/rand,
// base64url without padding (43 characters), like Langflow's
// secrets.token_urlsafe(32). Langflow reads it as a Fernet key directly.
func GenerateSecret() string {
	var b [32]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ReadSecretFile returns the content of <dir>/secret_key verbatim. A missing
// file is an error matching fs.ErrNotExist, an empty one ErrEmptySecret;
// errors name the file, never its content.
func ReadSecretFile(dir string) (string, error) {
	path := filepath.Join(dir, SecretFileName)
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("secrets: read secret file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFileSize+1))
	switch {
	case err != nil:
		return "", fmt.Errorf("secrets: read secret file %s: %w", path, err)
	case len(b) > maxSecretFileSize:
		return "", fmt.Errorf("secrets: secret file %s is larger than %d bytes", path, maxSecretFileSize)
	case len(b) == 0:
		return "", fmt.Errorf("secrets: secret file %s is empty; the secret that encrypted existing data is lost — "+
			"restore the file, or remove it to generate a new secret: %w", path, ErrEmptySecret)
	}
	return string(b), nil
}

// WriteSecretFile replaces <dir>/secret_key with secret, atomically
// (temporary file, sync, rename), mode 0600, no trailing newline, creating
// dir with mode 0700 if needed. It is for deliberate rotation: replace the
// file only after Reencrypt has moved the stored data to the new secret, and
// keep the old secret until then (KEYFLOW_PREVIOUS_SECRET_KEYS).
func WriteSecretFile(dir, secret string) error {
	if secret == "" {
		return ErrEmptySecret
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("secrets: create config dir: %w", err)
	}
	tmp, err := writeTemp(dir, secret)
	if err != nil {
		return err
	}
	defer os.Remove(tmp) // no-op once renamed
	path := filepath.Join(dir, SecretFileName)
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("secrets: write secret file: %w", err)
	}
	syncDir(dir)
	return nil
}

// testHookBeforePublish, when set by a test, runs between writing the
// temporary file and linking it into place; an error aborts there, as a
// crash would.
var testHookBeforePublish func(tmp string) error

// createSecretFile generates a secret and publishes it as <dir>/secret_key
// unless the file appears meanwhile, in which case it returns that file's
// secret.
func createSecretFile(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("secrets: create config dir: %w", err)
	}
	secret := GenerateSecret()
	tmp, err := writeTemp(dir, secret)
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp)
	if testHookBeforePublish != nil {
		if err := testHookBeforePublish(tmp); err != nil {
			return "", err
		}
	}
	path := filepath.Join(dir, SecretFileName)
	err = os.Link(tmp, path) // atomic create-if-absent with complete content
	switch {
	case errors.Is(err, fs.ErrExist):
		return ReadSecretFile(dir) // another process was first: use its secret
	case err != nil:
		// No hard links on this file system: rename is still atomic, but
		// could replace a file a concurrent process published a moment ago,
		// so look first.
		if _, statErr := os.Lstat(path); statErr == nil {
			return ReadSecretFile(dir)
		}
		if err := os.Rename(tmp, path); err != nil {
			return "", fmt.Errorf("secrets: write secret file: %w", err)
		}
	}
	syncDir(dir)
	return secret, nil
}

// writeTemp writes secret to a new temporary file in dir with mode 0600,
// syncs and closes it, and returns its path.
func writeTemp(dir, secret string) (string, error) {
	f, err := os.CreateTemp(dir, "."+SecretFileName+"-*.tmp") // mode 0600
	if err != nil {
		return "", fmt.Errorf("secrets: write secret file: %w", err)
	}
	tmp := f.Name()
	err = f.Chmod(0o600) // CreateTemp's mode already; explicit against surprises
	if err == nil {
		_, err = f.WriteString(secret)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("secrets: write secret file: %w", err)
	}
	return tmp, nil
}

// syncDir makes a rename or link in dir durable where the platform allows;
// failures are ignored (some systems cannot sync a directory).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
