package main

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
)

// cmdSuperuser is `langflow superuser`: --username and --password create a
// superuser, or make an existing user a superuser (active) with that
// password. The username defaults to LANGFLOW_SUPERUSER (else "langflow"),
// the password to LANGFLOW_SUPERUSER_PASSWORD; without either it is asked
// for at a terminal (twice, not echoed) or read as one line from stdin.
// Like Langflow, it refuses when LANGFLOW_ENABLE_SUPERUSER_CLI is false.
func cmdSuperuser(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
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
	cfg, err := loadConfig(common, nil, nil)
	if err != nil {
		return err
	}
	cfg.superuserCommand = true
	a, err := openApp(ctx, cfg, newLogger(stderr, cfg.LogLevel))
	if err != nil {
		return err
	}
	defer a.Close()
	if a.langflow != nil {
		return errSuperuserLangflow // langflowdb.go
	}

	name := strings.TrimSpace(*username)
	if name == "" {
		name = strings.TrimSpace(os.Getenv("LANGFLOW_SUPERUSER"))
	}
	if name == "" {
		name = superuserName
	}
	pw := *password
	if pw == "" {
		pw = os.Getenv("LANGFLOW_SUPERUSER_PASSWORD")
	}
	if pw == "" {
		if pw, err = readNewPassword(stdin, stderr); err != nil {
			return err
		}
	}
	if pw == "" {
		return errors.New("the password cannot be empty")
	}
	if pw == legacyDefaultPassword {
		return errors.New("the password cannot be Langflow's legacy default password")
	}
	h, err := hashPassword(pw)
	if err != nil {
		return err
	}
	acct, err := a.store.accountByName(ctx, name)
	switch {
	case errors.Is(err, errUserNotFound):
		created, err := a.store.createAccount(ctx, name, h, true, true)
		if errors.Is(err, errUsernameTaken) { // created meanwhile: reset it below
			acct, err = a.store.accountByName(ctx, name)
			if err != nil {
				return err
			}
			break
		}
		if err != nil {
			return err
		}
		if err := a.importEnv(ctx, created.user); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "Superuser created successfully.")
		return nil
	case err != nil:
		return err
	}
	if err := a.store.setPassword(ctx, acct.ID, h, true); err != nil {
		return err
	}
	// A new password logs the user out everywhere.
	if err := a.store.revokeUserTokens(ctx, acct.ID); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Superuser %s updated: password reset.\n", acct.Username)
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
