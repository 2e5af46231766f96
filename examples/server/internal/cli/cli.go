// Package cli is the reference server's command line: the subcommands
// (serve, which is "run", api-key, superuser, encrypt, decrypt,
// rotate-secret, import-langflow), their flags and help, and Main, which
// runs one and returns the exit code.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/keyflow-dev/keyflow/examples/server/internal/config"
	"github.com/keyflow-dev/keyflow/examples/server/internal/startup"
)

// command is one subcommand of the CLI.
type command struct {
	name    string
	summary string // one line, for the usage text and the subcommand's -h
	run     func(args []string, stdin io.Reader, stdout, stderr io.Writer) error
}

// subcommands lists the CLI's subcommands, in the order the usage shows them;
// the first is the default.
func subcommands() []command {
	return []command{
		{"run", "serve the API and the web UI (the default subcommand)", noStdin(func(args []string, _, stderr io.Writer) error {
			return serve(args, stderr)
		})},
		{"api-key", "create an API key for the superuser (or --username NAME) and print it once", noStdin(apiKey)},
		{"superuser", "create a superuser, or reset one's password (--username, --password)", superuser},
		{"encrypt", "read a value on stdin, print one Fernet token under the master secret", encrypt},
		{"decrypt", "read one Fernet token on stdin, print the value", decrypt},
		{"rotate-secret", "re-encrypt stored Credential variables under a new master secret", noStdin(rotateSecret)},
		{"import-langflow", "copy a Langflow database's users, API keys and variables (--from URL)", noStdin(importLangflow)},
	}
}

// noStdin adapts a subcommand that reads no stdin to command.run.
func noStdin(f func(args []string, stdout, stderr io.Writer) error) func([]string, io.Reader, io.Writer, io.Writer) error {
	return func(args []string, _ io.Reader, stdout, stderr io.Writer) error { return f(args, stdout, stderr) }
}

// findCommand returns the subcommand called name.
func findCommand(name string) (command, bool) {
	for _, c := range subcommands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// usage is the help the program prints for -h, --help and help.
func usage() string {
	var b strings.Builder
	prog := config.Command(os.Args[0])
	fmt.Fprintf(&b, "keyflow's reference server: Langflow's API keys, global variables and API, with a web UI.\n\n")
	fmt.Fprintf(&b, "usage: %s [subcommand] [flags]\n\nsubcommands:\n", prog)
	for _, c := range subcommands() {
		fmt.Fprintf(&b, "  %-15s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(&b, "  %-15s %s\n", "help", "print this help, or a subcommand's flags: help SUBCOMMAND")
	fmt.Fprintf(&b, "\nEvery subcommand takes --config-dir, --database-url, --env-file, --log-level,\n"+
		"--change-max-lag and --schema. Run \"%s SUBCOMMAND -h\" for a subcommand's flags.\n", prog)
	return b.String()
}

// isHelp reports whether args ask for help (-h, -help or --help before a
// "--"), which the flag package would answer on stderr with exit status 2.
func isHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help", "--h":
			return true
		}
	}
	return false
}

// Main runs one subcommand and returns the process exit code. Help that
// was asked for (-h, --help, help) goes to stdout with exit status 0; a
// usage error goes to stderr with exit status 2.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	name := "run"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		name, args = args[0], args[1:]
	} else if len(args) > 0 && isHelp(args[:1]) {
		name = "help"
	}
	if name == "help" {
		if len(args) > 0 {
			if c, ok := findCommand(args[0]); ok {
				_ = c.run([]string{"-h"}, stdin, stdout, stdout)
				return 0
			}
		}
		fmt.Fprint(stdout, usage())
		return 0
	}
	c, ok := findCommand(name)
	if !ok {
		fmt.Fprintf(stderr, "server: unknown subcommand %q\n\n%s", name, usage())
		return 2
	}
	if isHelp(args) {
		// The subcommand's flag set prints its usage and stops at -h.
		_ = c.run([]string{"-h"}, stdin, stdout, stdout)
		return 0
	}
	err := c.run(args, stdin, stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errFlagParse):
		return 2
	default:
		fmt.Fprintf(stderr, "server %s: %v\n", name, err)
		return 1
	}
}

// errFlagParse: the flag package has already said what was wrong.
var errFlagParse = errors.New("bad flags")

// newLogger writes text logs to stderr.
func newLogger(stderr io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
}

// open resolves the configuration and opens the app: the start of every
// subcommand but rotate-secret (which locks the database first) and
// superuser (which may repair the superuser). host and port are nil except
// for serve.
func open(ctx context.Context, flags *config.Flags, host *string, port *int, stderr io.Writer) (*startup.App, error) {
	cfg, err := config.Load(*flags, host, port)
	if err != nil {
		return nil, err
	}
	return startup.Open(ctx, cfg, newLogger(stderr, cfg.LogLevel), startup.Options{})
}
