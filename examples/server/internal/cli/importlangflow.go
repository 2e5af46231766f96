package cli

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/keyflow-dev/keyflow/examples/server/internal/langflowimport"
	"github.com/keyflow-dev/keyflow/examples/server/internal/sqldb"
	"github.com/keyflow-dev/keyflow/examples/server/internal/startup"
	"github.com/keyflow-dev/keyflow/langflowdb"
	"github.com/keyflow-dev/keyflow/secrets"
)

// importLangflow is the import-langflow subcommand: it copies a Langflow
// database's users, API keys and variables into keyflow's own database
// (package langflowimport) and prints what it did.
func importLangflow(args []string, stdout, stderr io.Writer) error {
	fs, common := newFlagSet("import-langflow", stderr)
	from := fs.String("from", "", "the Langflow database URL to copy from (sqlite:///path/langflow.db or postgres://…); required")
	secretFile := fs.String("from-secret-key-file", "", "Langflow's secret_key file, when Langflow's secret is not keyflow's (default: keyflow's own secrets, e.g. a shared LANGFLOW_SECRET_KEY)")
	noProgress := fs.Bool("no-progress", false, "no progress bar")
	if err := fs.Parse(args); err != nil {
		return errFlagParse
	}
	if *from == "" {
		fmt.Fprintln(stderr, "import-langflow: --from is required")
		fs.Usage()
		return errFlagParse
	}
	if common.Schema == "" {
		common.Schema = "keyflow" // the target is keyflow's own database
	}
	// Ctrl-C or SIGTERM stops after the row being written: the summary of
	// what was done is printed, and the same command resumes.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a, err := open(ctx, common, nil, nil, stderr)
	if err != nil {
		return err
	}
	defer a.Close()
	if a.Langflow != nil {
		return errors.New("--database-url is a Langflow database: import-langflow copies into keyflow's own database")
	}
	return importFrom(ctx, a, *from, *secretFile, progressWriter(stderr, *noProgress), stdout)
}

// importFrom imports the Langflow database at fromURL into a, printing
// where from and the report to stdout.
func importFrom(ctx context.Context, a *startup.App, fromURL, secretFile string, bar, stdout io.Writer) error {
	src, err := sqldb.ParseURL(fromURL, a.Config.ConfigDir)
	if err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	if src.DSN == a.Address.DSN {
		return errors.New("--from names keyflow's own database")
	}
	keyring, err := langflowKeyring(a.Keyring, secretFile)
	if err != nil {
		return err
	}
	db, err := sql.Open(src.Driver, src.DSN)
	if err != nil {
		return fmt.Errorf("open %s: %w", src.Display, err)
	}
	defer db.Close()
	if err := db.PingContext(ctx); err != nil {
		return fmt.Errorf("connect to %s: %w", src.Display, err)
	}
	ldb, err := langflowdb.Open(ctx, db, langflowdb.Config{Dialect: src.Dialect(), Keyring: keyring, Logger: a.Log})
	if err != nil {
		return fmt.Errorf("%s: %w", src.Display, err)
	}
	fmt.Fprintf(stdout, "import-langflow: from %s (%s)\n", src.Display, ldb.Schema().Generation())
	to := langflowimport.Target{Users: a.Users.Store, Keys: a.KeyStore, Vars: a.VarStore, Keyring: a.Keyring}
	rep, err := langflowimport.Run(ctx, to, ldb, keyring, bar)
	rep.Write(stdout)
	if ctx.Err() != nil {
		return errImportInterrupted
	}
	return err
}

// langflowKeyring is the keyring that opens Langflow's tokens: keyflow's
// own, unless --from-secret-key-file names Langflow's secret_key file.
func langflowKeyring(own *secrets.Keyring, secretFile string) (*secrets.Keyring, error) {
	if secretFile == "" {
		return own, nil
	}
	b, err := os.ReadFile(secretFile)
	if err != nil {
		return nil, fmt.Errorf("--from-secret-key-file: %w", err)
	}
	// Langflow reads the file verbatim (no trimming).
	k, err := secrets.NewKeyring(string(b))
	if err != nil {
		return nil, fmt.Errorf("--from-secret-key-file: %w", err)
	}
	return k, nil
}

// errImportInterrupted: the import stopped on a signal; every row written
// is complete, and a second run skips them.
var errImportInterrupted = errors.New("interrupted; run the same command again to import the rest (what is imported already is skipped)")

// progressWriter is where the progress bar goes: stderr, unless turned off.
func progressWriter(stderr io.Writer, off bool) io.Writer {
	if off {
		return nil
	}
	return stderr
}
