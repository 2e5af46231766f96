package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/langflowdb"
	"github.com/keyflow-dev/keyflow/secrets"
	"github.com/keyflow-dev/keyflow/variables"
)

// import-langflow copies a Langflow database into keyflow's own database
// (docs/langflow-compatibility.md#moving-off-langflow):
//
//   - users, with their Langflow IDs (a user whose name keyflow already has,
//     such as the superuser "langflow", is that keyflow user); inactive users
//     are skipped, and so are their keys and variables;
//   - API keys as hashes only, with their names, dates, counters, is_active
//     and expiry: a plaintext row is hashed, a token row is decrypted with
//     Langflow's secret only to hash it, a row with api_key_hash keeps it.
//     Keys Langflow would refuse stay refused: deleted ones are not there,
//     inactive and expired ones are copied as such, and keys whose hash two
//     rows share are skipped;
//   - global variables, with their IDs, types, Apply-To fields and dates.
//     Credential values are re-encrypted under keyflow's current secret
//     (decrypted with Langflow's, then encrypted with keyflow's primary), so
//     that keyflow's rotate-secret manages them from then on; Generic values
//     encrypted by old Langflow versions are stored in clear, as Langflow
//     itself stores Generic values now.
//
// Every row is written on its own and identified by its Langflow ID, so a
// second run changes nothing and reports it, and a run cut short resumes
// where it stopped. Nothing is written to the Langflow database.

// importProgressMin is the number of rows from which a progress bar is shown.
const importProgressMin = 500

// importReport counts what an import did, per kind of row.
type importReport struct {
	imported map[string]int
	skipped  map[string]map[string]int // kind → reason → count
}

func newImportReport() *importReport {
	return &importReport{imported: map[string]int{}, skipped: map[string]map[string]int{}}
}

func (r *importReport) ok(kind string) { r.imported[kind]++ }

func (r *importReport) skip(kind, reason string) {
	if r.skipped[kind] == nil {
		r.skipped[kind] = map[string]int{}
	}
	r.skipped[kind][reason]++
}

// Reasons a row is skipped.
const (
	skipAlready       = "already imported"
	skipInactiveUser  = "the user is inactive in Langflow"
	skipNoOwner       = "its user was not imported"
	skipShared        = "its hash is shared with another key (Langflow refuses both)"
	skipUndecryptable = "its token does not decrypt with Langflow's secret"
	skipNameTaken     = "the user already has a variable of that name in keyflow"
	skipMerged        = "keyflow has a user of that name: its keys and variables go to that user"
)

func (r *importReport) write(w io.Writer) {
	for _, kind := range []string{"users", "api keys", "variables"} {
		skipped := 0
		for _, n := range r.skipped[kind] {
			skipped += n
		}
		fmt.Fprintf(w, "%-10s %d imported, %d skipped\n", kind+":", r.imported[kind], skipped)
		reasons := make([]string, 0, len(r.skipped[kind]))
		for reason := range r.skipped[kind] {
			reasons = append(reasons, reason)
		}
		slices.Sort(reasons)
		for _, reason := range reasons {
			fmt.Fprintf(w, "           %d: %s\n", r.skipped[kind][reason], reason)
		}
	}
}

func cmdImportLangflow(args []string, stdout, stderr io.Writer) error {
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
	if common.schema == "" {
		common.schema = "keyflow" // the target is keyflow's own database
	}
	// Ctrl-C or SIGTERM stops after the row being written: the summary of
	// what was done is printed, and the same command resumes.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a, err := setup(ctx, common, nil, nil, stderr)
	if err != nil {
		return err
	}
	defer a.Close()
	if a.langflow != nil {
		return errors.New("--database-url is a Langflow database: import-langflow copies into keyflow's own database")
	}

	src, err := parseDatabaseURL(*from, a.cfg.ConfigDir)
	if err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	dst, _ := parseDatabaseURL(a.cfg.DatabaseURL, a.cfg.ConfigDir)
	if src.dsn == dst.dsn {
		return errors.New("--from names keyflow's own database")
	}
	keyring := a.keyring
	if *secretFile != "" {
		b, err := os.ReadFile(*secretFile)
		if err != nil {
			return fmt.Errorf("--from-secret-key-file: %w", err)
		}
		// Langflow reads the file verbatim (no trimming).
		if keyring, err = secrets.NewKeyring(string(b)); err != nil {
			return fmt.Errorf("--from-secret-key-file: %w", err)
		}
	}
	db, err := sql.Open(src.driver, src.dsn)
	if err != nil {
		return fmt.Errorf("open %s: %w", src.display, err)
	}
	defer db.Close()
	if err := db.PingContext(ctx); err != nil {
		return fmt.Errorf("connect to %s: %w", src.display, err)
	}
	ldb, err := langflowdb.Open(ctx, db, langflowdb.Config{Dialect: langflowDialect(src), Keyring: keyring, Logger: a.log})
	if err != nil {
		return fmt.Errorf("%s: %w", src.display, err)
	}
	fmt.Fprintf(stdout, "import-langflow: from %s (%s)\n", src.display, ldb.Schema().Generation())

	rep, err := importLangflow(ctx, a, ldb, keyring, progressWriter(stderr, *noProgress))
	rep.write(stdout)
	if ctx.Err() != nil {
		return errImportInterrupted
	}
	return err
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

// importLangflow copies users, keys and variables; bar is nil or where a
// progress bar is drawn (on large databases).
func importLangflow(ctx context.Context, a *app, ldb *langflowdb.DB, keyring *secrets.Keyring, bar io.Writer) (*importReport, error) {
	rep := newImportReport()
	users, err := ldb.Users(ctx)
	if err != nil {
		return rep, err
	}
	keys, err := ldb.Keys().All(ctx)
	if err != nil {
		return rep, err
	}
	var vars []variables.Variable
	if vs, err := ldb.Variables(); err == nil {
		if vars, err = vs.All(ctx); err != nil {
			return rep, err
		}
	}
	total := int64(len(users) + len(keys) + len(vars))
	var pb *progressbar.ProgressBar
	if bar != nil && total >= importProgressMin {
		pb = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(bar),
			progressbar.OptionSetDescription("import-langflow"),
			progressbar.OptionSetWidth(30),
			progressbar.OptionShowCount(),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish())
		defer func() { _ = pb.Finish() }()
	}
	step := func() error {
		if pb != nil {
			_ = pb.Add(1)
		}
		return ctx.Err()
	}

	// Rows are written with a context a signal does not cancel, so that the
	// row being written when one comes is completed and counted; step
	// stops before the next.
	wctx := context.WithoutCancel(ctx)
	owner := map[string]string{} // Langflow user ID → keyflow user ID
	for _, u := range users {
		if err := step(); err != nil {
			return rep, err
		}
		if !u.IsActive {
			rep.skip("users", skipInactiveUser)
			continue
		}
		id, created, err := a.store.importUser(wctx, u)
		if err != nil {
			return rep, err
		}
		owner[u.ID] = id
		switch {
		case created:
			rep.ok("users")
		case id == u.ID:
			rep.skip("users", skipAlready)
		default:
			rep.skip("users", skipMerged)
		}
	}

	// Keys whose hash two active rows share: Langflow refuses them.
	active := map[apikey.Hash]int{}
	for _, k := range keys {
		if k.Active && k.Hash != (apikey.Hash{}) {
			active[k.Hash]++
		}
	}
	for _, k := range keys {
		if err := step(); err != nil {
			return rep, err
		}
		to, ok := owner[k.UserID]
		switch {
		case !ok:
			rep.skip("api keys", skipNoOwner)
			continue
		case k.Hash == (apikey.Hash{}):
			rep.skip("api keys", skipUndecryptable)
			continue
		case active[k.Hash] > 1:
			rep.skip("api keys", skipShared)
			continue
		}
		k.UserID = to
		err := a.keyStore.Insert(wctx, k)
		switch {
		case errors.Is(err, apikey.ErrDuplicate):
			rep.skip("api keys", skipAlready)
		case err != nil:
			return rep, fmt.Errorf("import key %s: %w", k.ID, err)
		default:
			rep.ok("api keys")
		}
	}

	for _, v := range vars {
		if err := step(); err != nil {
			return rep, err
		}
		to, ok := owner[v.UserID]
		if !ok {
			rep.skip("variables", skipNoOwner)
			continue
		}
		value := v.Value
		if secrets.IsEncrypted(value) {
			plain, err := keyring.Decrypt(value)
			if err != nil {
				rep.skip("variables", skipUndecryptable)
				continue
			}
			value = plain
		}
		if v.Type == variables.Credential {
			if value, err = a.keyring.Encrypt(value); err != nil {
				return rep, err
			}
		}
		v.UserID, v.Value, v.Origin = to, value, variables.OriginUser
		if v.CreatedAt.IsZero() {
			v.CreatedAt = time.Now().UTC().Truncate(time.Microsecond)
		}
		err := a.varStore.Create(wctx, v)
		switch {
		case errors.Is(err, variables.ErrDuplicate):
			if _, gerr := a.varStore.Get(wctx, to, v.ID); gerr == nil {
				rep.skip("variables", skipAlready)
			} else {
				rep.skip("variables", skipNameTaken)
			}
		case err != nil:
			return rep, fmt.Errorf("import variable %s: %w", v.ID, err)
		default:
			rep.ok("variables")
		}
	}
	return rep, nil
}

// importUser writes a Langflow user with its ID and bcrypt password hash
// (the user then logs in to keyflow with the Langflow password) unless
// keyflow has a user of that name, and returns the keyflow user's ID and
// whether it was created.
func (s *store) importUser(ctx context.Context, u langflowdb.User) (string, bool, error) {
	now := time.Now().UTC()
	res, err := s.db.ExecContext(ctx, s.q(`INSERT INTO users (id, username, is_superuser, created_at, password, is_active, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`),
		u.ID, u.Username, u.IsSuperuser, u.CreatedAt.UTC(), nullString(u.PasswordHash), true, now)
	if err != nil {
		return "", false, fmt.Errorf("import user %s: %w", u.Username, err)
	}
	n, _ := res.RowsAffected()
	var id string
	err = s.db.QueryRowContext(ctx, s.q(`SELECT id FROM users WHERE username = ?`), u.Username).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, fmt.Errorf("import user %s: its Langflow ID is another keyflow user's", u.Username)
	}
	if err != nil {
		return "", false, fmt.Errorf("import user %s: %w", u.Username, err)
	}
	return id, n == 1, nil
}
