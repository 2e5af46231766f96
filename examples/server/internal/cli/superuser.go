package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/keyflow-dev/keyflow/envbool"
	"github.com/keyflow-dev/keyflow/examples/server/internal/accounts"
	"github.com/keyflow-dev/keyflow/examples/server/internal/config"
	"github.com/keyflow-dev/keyflow/examples/server/internal/startup"
)

// superuser is `langflow superuser`: --username and --password create a
// superuser, or make an existing user a superuser (active) with that
// password. The username defaults to LANGFLOW_SUPERUSER (else "langflow"),
// the password to LANGFLOW_SUPERUSER_PASSWORD; without either it is asked
// for at a terminal (twice, not echoed) or read as one line from stdin.
// Like Langflow, it refuses when LANGFLOW_ENABLE_SUPERUSER_CLI is false.
func superuser(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs, common := newFlagSet("superuser", stderr)
	username := fs.String("username", "", "the superuser's name (default: LANGFLOW_SUPERUSER, else langflow)")
	password := fs.String("password", "", "its password (default: LANGFLOW_SUPERUSER_PASSWORD, else asked for or read from stdin)")
	if err := fs.Parse(args); err != nil {
		return errFlagParse
	}
	enabled, err := envbool.Lookup(os.LookupEnv, "LANGFLOW_ENABLE_SUPERUSER_CLI", true)
	if err != nil {
		return err
	}
	if !enabled {
		return errors.New("superuser creation via the CLI is disabled (LANGFLOW_ENABLE_SUPERUSER_CLI=false)")
	}
	ctx := context.Background()
	cfg, err := config.Load(*common, nil, nil)
	if err != nil {
		return err
	}
	cfg.SuperuserCommand = true
	a, err := startup.Open(ctx, cfg, newLogger(stderr, cfg.LogLevel), startup.Options{})
	if err != nil {
		return err
	}
	defer a.Close()
	if a.Langflow != nil {
		return errSuperuserLangflow
	}
	name, hash, err := superuserCredentials(*username, *password, stdin, stderr)
	if err != nil {
		return err
	}
	return saveSuperuser(ctx, a, name, hash, stdout)
}

// errSuperuserLangflow: on a Langflow database, users and passwords are
// Langflow's (the server only mirrors them).
var errSuperuserLangflow = errors.New("superuser does not run on a Langflow database: manage users and passwords in Langflow (`langflow superuser`); this server mirrors them at start")

// superuserCredentials returns the superuser's name and the hash of its
// password, from the flags, else the environment, else (the password)
// stdin.
func superuserCredentials(username, password string, stdin io.Reader, stderr io.Writer) (name, hash string, err error) {
	name = strings.TrimSpace(username)
	if name == "" {
		name = strings.TrimSpace(os.Getenv("LANGFLOW_SUPERUSER"))
	}
	if name == "" {
		name = config.SuperuserName
	}
	pw := password
	if pw == "" {
		pw = os.Getenv("LANGFLOW_SUPERUSER_PASSWORD")
	}
	if pw == "" {
		if pw, err = readNewPassword(stdin, stderr); err != nil {
			return "", "", err
		}
	}
	if pw == "" {
		return "", "", errors.New("the password cannot be empty")
	}
	if pw == config.LegacyDefaultPassword {
		return "", "", errors.New("the password cannot be Langflow's legacy default password")
	}
	hash, err = accounts.HashPassword(pw)
	return name, hash, err
}

// saveSuperuser creates the superuser name with the password hash, or makes
// the existing user of that name an active superuser with it (which logs it
// out everywhere).
func saveSuperuser(ctx context.Context, a *startup.App, name, hash string, stdout io.Writer) error {
	u, err := a.Users.Store.ByName(ctx, name)
	switch {
	case errors.Is(err, accounts.ErrNotFound):
		created, err := a.Users.Store.Create(ctx, name, hash, true, true)
		if errors.Is(err, accounts.ErrUsernameTaken) { // created meanwhile: reset it below
			if u, err = a.Users.Store.ByName(ctx, name); err != nil {
				return err
			}
			break
		}
		if err != nil {
			return err
		}
		if err := a.ImportEnv(ctx, created.ID, created.Username); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "Superuser created successfully.")
		return nil
	case err != nil:
		return err
	}
	if err := a.Users.Store.SetPassword(ctx, u.ID, hash, true); err != nil {
		return err
	}
	// A new password logs the user out everywhere.
	if err := a.Tokens.RevokeUser(ctx, u.ID); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Superuser %s updated: password reset.\n", u.Username)
	return nil
}

// readNewPassword asks for a password twice at a terminal (not echoed), or
// reads one line from stdin otherwise.
func readNewPassword(stdin io.Reader, stderr io.Writer) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(stderr, "Password: ")
		first, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", err
		}
		fmt.Fprint(stderr, "Repeat for confirmation: ")
		second, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", err
		}
		if string(first) != string(second) {
			return "", errors.New("the two passwords differ")
		}
		return string(first), nil
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the password from stdin: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}
