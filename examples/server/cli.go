package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/atotto/clipboard"
	"github.com/charmbracelet/lipgloss"
	"golang.org/x/term"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/secrets"
)

// cmdAPIKey is `langflow api-key`: a new key named "CLI" for the superuser
// (or --username, created when missing), shown once on stdout: at a terminal
// in a box, copied to the clipboard when there is one; into a pipe or a file
// (or with --quiet) as the key alone on one line, for scripts.
// Unlike Langflow it does not delete one of the user's existing keys first,
// and it works with LANGFLOW_AUTO_LOGIN off: whoever can run it can already
// read the database (docs/langflow-compatibility.md#command-line).
func cmdAPIKey(args []string, stdout, stderr io.Writer) error {
	fs, common := newFlagSet("api-key", stderr)
	username := fs.String("username", "", "the `NAME` of the user the key belongs to; the user is created when missing (default: the superuser, LANGFLOW_SUPERUSER)")
	name := fs.String("name", "CLI", "the key's `NAME`")
	quiet := fs.Bool("quiet", false, "print only the key, on one line, without the box and the clipboard (the default when stdout is not a terminal)")
	if err := fs.Parse(args); err != nil {
		return errFlagParse
	}
	ctx := context.Background()
	a, err := setup(ctx, common, nil, nil, stderr)
	if err != nil {
		return err
	}
	defer a.Close()

	u := a.superuser
	if *username != "" && *username != u.Username {
		if u, err = a.ensureUser(ctx, *username, false); err != nil {
			return err
		}
	}
	key, rec, err := a.keys.Create(ctx, u.ID, *name, apikey.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create API key: %w", err)
	}
	a.log.Info("created API key", "username", u.Username, "key_id", rec.ID, "name", rec.Name)
	if *quiet || !isTerminal(stdout) {
		_, err = fmt.Fprintln(stdout, key)
		return err
	}
	_, err = io.WriteString(stdout, apiKeyBox(key, copyToClipboard(key), runtime.GOOS))
	return err
}

// isTerminal reports whether w is a terminal. A variable so that tests can
// pretend.
var isTerminal = func(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// copyToClipboard copies s when the system has a clipboard, and reports
// whether it did. A variable so that tests never touch the real clipboard.
var copyToClipboard = func(s string) bool {
	if clipboard.Unsupported {
		return false
	}
	return clipboard.WriteAll(s) == nil
}

// apiKeyBox renders Langflow's "API Key Created Successfully" panel.
func apiKeyBox(key string, copied bool, goos string) string {
	lines := []string{
		"API Key Created Successfully:",
		"",
		key,
		"",
		"This is the only time the API key will be displayed.",
		"Make sure to store it in a secure location.",
	}
	if copied {
		mod := "Ctrl"
		if goos == "darwin" {
			mod = "Cmd"
		}
		lines = append(lines, "", "The API key has been copied to your clipboard. "+mod+" + V to paste it.")
	}
	box := lipgloss.NewStyle().Border(lipgloss.RoundedBorder()).Padding(0, 1)
	return box.Render(strings.Join(lines, "\n")) + "\n"
}

// maxStdin bounds what encrypt and decrypt read.
const maxStdin = 16 << 20

// setupWithStdin is the start of encrypt and decrypt: it parses the flags,
// opens the app and reads stdin (at most maxStdin bytes).
func setupWithStdin(name string, args []string, stdin io.Reader, stderr io.Writer) (*app, string, error) {
	fs, common := newFlagSet(name, stderr)
	if err := fs.Parse(args); err != nil {
		return nil, "", errFlagParse
	}
	a, err := setup(context.Background(), common, nil, nil, stderr)
	if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(io.LimitReader(stdin, maxStdin+1))
	switch {
	case err != nil:
		err = fmt.Errorf("read stdin: %w", err)
	case len(b) > maxStdin:
		err = fmt.Errorf("stdin is larger than %d bytes", maxStdin)
	}
	if err != nil {
		_ = a.Close()
		return nil, "", err
	}
	return a, string(b), nil
}

// cmdEncrypt writes one Fernet token for stdin (without one trailing
// newline, so `echo value | server encrypt` encrypts "value").
func cmdEncrypt(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	a, in, err := setupWithStdin("encrypt", args, stdin, stderr)
	if err != nil {
		return err
	}
	defer a.Close()
	in = strings.TrimSuffix(strings.TrimSuffix(in, "\n"), "\r")
	token, err := a.keyring.Encrypt(in)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, token)
	return err
}

// cmdDecrypt writes the plaintext (and a newline) of the one token on stdin.
func cmdDecrypt(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	a, in, err := setupWithStdin("decrypt", args, stdin, stderr)
	if err != nil {
		return err
	}
	defer a.Close()
	token := strings.TrimSpace(in)
	if token == "" {
		return errors.New("no token on stdin")
	}
	if !secrets.IsEncrypted(token) {
		return errors.New("stdin is not a Fernet token (it should start with gAAAAA)")
	}
	plain, err := a.keyring.Decrypt(token)
	if errors.Is(err, secrets.ErrInvalidToken) {
		return fmt.Errorf("the token does not open with the master secret (LANGFLOW_SECRET_KEY, else %s) nor any previous secret (KEYFLOW_PREVIOUS_SECRET_KEYS), or it is damaged",
			filepath.Join(a.cfg.ConfigDir, "secret_key"))
	}
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, plain)
	return err
}

// cmdRotateSecret re-encrypts every stored Credential variable under a new
// master secret. The new secret is, in order: --new-secret; else
// LANGFLOW_SECRET_KEY (the sequence "set LANGFLOW_SECRET_KEY=new and
// KEYFLOW_PREVIOUS_SECRET_KEYS=old, run rotate-secret"); else a new random
// one. The old secrets are the one in <config-dir>/secret_key, the current
// LANGFLOW_SECRET_KEY when --new-secret replaces it, and
// KEYFLOW_PREVIOUS_SECRET_KEYS.
//
// A generated or given new secret is first saved to secret_key.new, so an
// interrupted run loses nothing (a rerun resumes with it, and the server
// reads it as a previous secret); secret_key is replaced, atomically, only
// after every value has been re-encrypted. Stop the servers first: a server
// still running with the old secret cannot read re-encrypted values.
func cmdRotateSecret(args []string, stdout, stderr io.Writer) error {
	fs, common := newFlagSet("rotate-secret", stderr)
	newSecret := fs.String("new-secret", "", "the new master `SECRET` (default: LANGFLOW_SECRET_KEY if set, else generated)")
	batch := fs.Int("batch-size", 500, "re-encrypt `N` values per batch")
	if err := fs.Parse(args); err != nil {
		return errFlagParse
	}
	if *batch < 1 {
		fmt.Fprintf(stderr, "invalid value %d for flag -batch-size: want at least 1\n", *batch)
		return errFlagParse
	}
	cfg, err := loadConfig(common, nil, nil)
	if err != nil {
		return err
	}
	// Read the secret files before opening the app, which generates
	// secret_key in a fresh config dir.
	file := filepath.Join(cfg.ConfigDir, "secret_key")
	fileSecret := readSecretFile(file)
	pending := readSecretFile(file + ".new")
	envSecret := os.Getenv("LANGFLOW_SECRET_KEY")

	next, fromEnv := *newSecret, false
	old := []string{fileSecret, pending}
	switch {
	case next != "":
		old = append(old, envSecret)
	case envSecret != "":
		next, fromEnv = envSecret, true
	case pending != "":
		next = pending
	default:
		next = secrets.GenerateSecret()
	}
	old = append(old, splitSecrets(os.Getenv("KEYFLOW_PREVIOUS_SECRET_KEYS"))...)

	ctx := context.Background()
	log := newLogger(stderr, cfg.LogLevel)
	a, err := openApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	if fileSecret == "" { // a fresh config dir: openApp has just generated one
		old = append(old, readSecretFile(file))
	}
	keyring, err := secrets.NewKeyring(next, previousSecrets(next, old)...)
	if err != nil {
		return fmt.Errorf("new secret: %w", err)
	}
	if !fromEnv && next != pending {
		if err := writeSecretFile(file+".new", next); err != nil {
			return fmt.Errorf("save the new secret before re-encrypting: %w", err)
		}
	}

	rep, err := reencryptAll(ctx, keyring, a.varStore, *batch, stderr)
	fmt.Fprintf(stdout, "rotate-secret: %d re-encrypted, %d already current, %d failed\n", rep.Rotated, rep.Current, rep.Failed)
	if err != nil {
		return fmt.Errorf("%w; %s is unchanged", err, file)
	}
	if fromEnv {
		// The secret lives in the environment; keyflow never copies it to
		// disk (see secrets.Load). A secret_key left from before is stale.
		if fileSecret != "" && fileSecret != next {
			fmt.Fprintf(stderr, "rotate-secret: done; %s still holds an old secret, unused while LANGFLOW_SECRET_KEY is set: delete it once you no longer need it\n", file)
		} else {
			fmt.Fprintln(stderr, "rotate-secret: done; restart the servers with the new LANGFLOW_SECRET_KEY")
		}
		return nil
	}
	if err := writeSecretFile(file, next); err != nil {
		return fmt.Errorf("write the new secret (every value is already re-encrypted under it, and it is also in %s.new): %w", file, err)
	}
	if err := os.Remove(file + ".new"); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if envSecret != "" {
		fmt.Fprintf(stderr, "rotate-secret: done; %s holds the new secret, but LANGFLOW_SECRET_KEY still holds the old one and wins: set it to the new one (or unset it), then restart the servers\n", file)
	} else {
		fmt.Fprintf(stderr, "rotate-secret: done; %s holds the new secret; restart the servers\n", file)
	}
	return nil
}

// reencryptAll runs secrets.Reencrypt until a pass finds nothing changed
// behind its back (values a running server rewrote meanwhile are Skipped and
// picked up by the next pass), printing progress to stderr. It fails when a
// value opens with none of the keyring's secrets.
func reencryptAll(ctx context.Context, k *secrets.Keyring, s secrets.CiphertextStore, batch int, stderr io.Writer) (secrets.ReencryptReport, error) {
	var total secrets.ReencryptReport
	for pass := 1; ; pass++ {
		rep, err := secrets.Reencrypt(ctx, k, s, secrets.ReencryptOptions{
			BatchSize: batch,
			Progress: func(r secrets.ReencryptReport) {
				fmt.Fprintf(stderr, "rotate-secret: %d values checked (%d re-encrypted, %d already current, %d failed)\n",
					r.Rotated+r.Current+r.Failed+r.Skipped, total.Rotated+r.Rotated, r.Current, r.Failed)
			},
		})
		total.Rotated += rep.Rotated
		total.Current, total.Failed = rep.Current, rep.Failed
		switch {
		case err != nil:
			return total, fmt.Errorf("re-encrypt: %w", err)
		case rep.Failed > 0:
			return total, fmt.Errorf("%d values open with none of the known secrets: add the secret they were written with to KEYFLOW_PREVIOUS_SECRET_KEYS and run rotate-secret again", rep.Failed)
		case rep.Skipped == 0:
			return total, nil
		case pass == 3:
			return total, fmt.Errorf("%d values keep changing while rotating: stop the servers and run rotate-secret again", rep.Skipped)
		}
	}
}

// previousSecrets drops empty and duplicate entries and the primary.
func previousSecrets(primary string, candidates []string) []string {
	seen := map[string]bool{primary: true, "": true}
	var out []string
	for _, s := range candidates {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// splitSecrets splits KEYFLOW_PREVIOUS_SECRET_KEYS on commas, trimming spaces.
func splitSecrets(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// readSecretFile returns the file's content verbatim (Langflow's format: no
// trailing newline), or "" when it is missing or unreadable.
func readSecretFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(b)
}

// pendingSecret returns the secret an unfinished rotate-secret saved, so the
// server can read values already re-encrypted under it.
func pendingSecret(configDir string) []string {
	if s := readSecretFile(filepath.Join(configDir, "secret_key.new")); s != "" {
		return []string{s}
	}
	return nil
}

// writeSecretFile replaces path atomically (temporary file, fsync, rename)
// with mode 0600.
func writeSecretFile(path, secret string) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".secret_key-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op after the rename
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
	if err := f.Close(); err != nil {
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
