package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/keyflow-dev/keyflow/examples/server/internal/startup"
	"github.com/keyflow-dev/keyflow/secrets"
)

// maxStdin bounds what encrypt and decrypt read.
const maxStdin = 16 << 20

// openWithStdin is the start of encrypt and decrypt: it parses the flags,
// opens the app and reads stdin (at most maxStdin bytes).
func openWithStdin(name string, args []string, stdin io.Reader, stderr io.Writer) (*startup.App, string, error) {
	fs, common := newFlagSet(name, stderr)
	if err := fs.Parse(args); err != nil {
		return nil, "", errFlagParse
	}
	a, err := open(context.Background(), common, nil, nil, stderr)
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

// encrypt writes one Fernet token for stdin (without one trailing
// newline, so `echo value | server encrypt` encrypts "value").
func encrypt(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	a, in, err := openWithStdin("encrypt", args, stdin, stderr)
	if err != nil {
		return err
	}
	defer a.Close()
	in = strings.TrimSuffix(strings.TrimSuffix(in, "\n"), "\r")
	token, err := a.Keyring.Encrypt(in)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, token)
	return err
}

// decrypt writes the plaintext (and a newline) of the one token on stdin.
func decrypt(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	a, in, err := openWithStdin("decrypt", args, stdin, stderr)
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
	plain, err := a.Keyring.Decrypt(token)
	if errors.Is(err, secrets.ErrInvalidToken) {
		return fmt.Errorf("the token does not open with the master secret (LANGFLOW_SECRET_KEY, else %s) nor any previous secret (KEYFLOW_PREVIOUS_SECRET_KEYS), or it is damaged",
			filepath.Join(a.Config.ConfigDir, "secret_key"))
	}
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, plain)
	return err
}
