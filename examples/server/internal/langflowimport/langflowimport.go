// Package langflowimport copies a Langflow database into keyflow's own
// database, for the import-langflow subcommand
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
package langflowimport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/examples/server/internal/accounts"
	"github.com/keyflow-dev/keyflow/langflowdb"
	"github.com/keyflow-dev/keyflow/secrets"
	"github.com/keyflow-dev/keyflow/variables"
)

// ProgressMin is the number of rows from which a progress bar is shown.
const ProgressMin = 500

// Report counts what an import did, per kind of row.
type Report struct {
	Imported map[string]int            // kind ("users", "api keys", "variables") → count
	Skipped  map[string]map[string]int // kind → reason (Skip…) → count
}

func newReport() *Report {
	return &Report{Imported: map[string]int{}, Skipped: map[string]map[string]int{}}
}

func (r *Report) ok(kind string) { r.Imported[kind]++ }

func (r *Report) skip(kind, reason string) {
	if r.Skipped[kind] == nil {
		r.Skipped[kind] = map[string]int{}
	}
	r.Skipped[kind][reason]++
}

// Reasons a row is skipped.
const (
	SkipAlready       = "already imported"
	SkipInactiveUser  = "the user is inactive in Langflow"
	SkipNoOwner       = "its user was not imported"
	SkipShared        = "its hash is shared with another key (Langflow refuses both)"
	SkipUndecryptable = "its token does not decrypt with Langflow's secret"
	SkipNameTaken     = "the user already has a variable of that name in keyflow"
	SkipMerged        = "keyflow has a user of that name: its keys and variables go to that user"
)

// Write prints the counts, and the reasons rows were skipped.
func (r *Report) Write(w io.Writer) {
	for _, kind := range []string{"users", "api keys", "variables"} {
		skipped := 0
		for _, n := range r.Skipped[kind] {
			skipped += n
		}
		fmt.Fprintf(w, "%-10s %d imported, %d skipped\n", kind+":", r.Imported[kind], skipped)
		reasons := make([]string, 0, len(r.Skipped[kind]))
		for reason := range r.Skipped[kind] {
			reasons = append(reasons, reason)
		}
		slices.Sort(reasons)
		for _, reason := range reasons {
			fmt.Fprintf(w, "           %d: %s\n", r.Skipped[kind][reason], reason)
		}
	}
}

// Target is keyflow's database the rows go to.
type Target struct {
	Users   *accounts.Store
	Keys    apikey.Store
	Vars    variables.Store
	Keyring *secrets.Keyring // keyflow's: Credential values are re-encrypted under its primary
}

// rows are what is read from Langflow.
type rows struct {
	users []langflowdb.User
	keys  []apikey.Record
	vars  []variables.Variable
}

// importer is one run of Run.
type importer struct {
	to       Target
	langflow *secrets.Keyring // opens Langflow's tokens
	rep      *Report
	step     func() error // advances the progress bar; ctx's error once a signal came
	// wctx writes rows: a signal does not cancel it, so that the row being
	// written when one comes is completed and counted; step stops before
	// the next.
	wctx  context.Context
	owner map[string]string // Langflow user ID → keyflow user ID
}

// Run copies users, keys and variables from ldb to t; langflowKeyring opens
// Langflow's tokens; bar is nil or where a progress bar is drawn (on large
// databases). The report says what was done so far, also on error or when
// ctx is cancelled (which stops it after the row being written).
func Run(ctx context.Context, t Target, ldb *langflowdb.DB, langflowKeyring *secrets.Keyring, bar io.Writer) (*Report, error) {
	rep := newReport()
	src, err := readRows(ctx, ldb)
	if err != nil {
		return rep, err
	}
	step, finish := progress(ctx, bar, len(src.users)+len(src.keys)+len(src.vars))
	defer finish()
	im := &importer{to: t, langflow: langflowKeyring, rep: rep, step: step,
		wctx: context.WithoutCancel(ctx), owner: map[string]string{}}
	if err := im.users(src.users); err != nil {
		return rep, err
	}
	if err := im.keys(src.keys); err != nil {
		return rep, err
	}
	return rep, im.variables(src.vars)
}

// readRows reads every user, key and variable of the Langflow database
// (a database without a variable table has none).
func readRows(ctx context.Context, ldb *langflowdb.DB) (rows, error) {
	var src rows
	var err error
	if src.users, err = ldb.Users(ctx); err != nil {
		return src, err
	}
	if src.keys, err = ldb.Keys().All(ctx); err != nil {
		return src, err
	}
	if vs, err := ldb.Variables(); err == nil {
		if src.vars, err = vs.All(ctx); err != nil {
			return src, err
		}
	}
	return src, nil
}

// progress returns the step to call before each row, and what ends the
// bar: a bar on bar from ProgressMin rows on, else nothing drawn.
func progress(ctx context.Context, bar io.Writer, total int) (step func() error, finish func()) {
	if bar == nil || total < ProgressMin {
		return ctx.Err, func() {}
	}
	pb := progressbar.NewOptions64(int64(total),
		progressbar.OptionSetWriter(bar),
		progressbar.OptionSetDescription("import-langflow"),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowCount(),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish())
	return func() error {
		_ = pb.Add(1)
		return ctx.Err()
	}, func() { _ = pb.Finish() }
}

// users imports the active users; a user whose name keyflow has already is
// that keyflow user.
func (im *importer) users(users []langflowdb.User) error {
	for _, u := range users {
		if err := im.step(); err != nil {
			return err
		}
		if !u.IsActive {
			im.rep.skip("users", SkipInactiveUser)
			continue
		}
		id, created, err := im.to.Users.Import(im.wctx, u)
		if err != nil {
			return err
		}
		im.owner[u.ID] = id
		switch {
		case created:
			im.rep.ok("users")
		case id == u.ID:
			im.rep.skip("users", SkipAlready)
		default:
			im.rep.skip("users", SkipMerged)
		}
	}
	return nil
}

// keys imports the keys of imported users, as hashes, except those
// Langflow would refuse.
func (im *importer) keys(keys []apikey.Record) error {
	// Keys whose hash two active rows share: Langflow refuses them.
	active := map[apikey.Hash]int{}
	for _, k := range keys {
		if k.Active && k.Hash != (apikey.Hash{}) {
			active[k.Hash]++
		}
	}
	for _, k := range keys {
		if err := im.step(); err != nil {
			return err
		}
		to, ok := im.owner[k.UserID]
		switch {
		case !ok:
			im.rep.skip("api keys", SkipNoOwner)
			continue
		case k.Hash == (apikey.Hash{}):
			im.rep.skip("api keys", SkipUndecryptable)
			continue
		case active[k.Hash] > 1:
			im.rep.skip("api keys", SkipShared)
			continue
		}
		k.UserID = to
		err := im.to.Keys.Insert(im.wctx, k)
		switch {
		case errors.Is(err, apikey.ErrDuplicate):
			im.rep.skip("api keys", SkipAlready)
		case err != nil:
			return fmt.Errorf("import key %s: %w", k.ID, err)
		default:
			im.rep.ok("api keys")
		}
	}
	return nil
}

// variables imports the variables of imported users.
func (im *importer) variables(vars []variables.Variable) error {
	for _, v := range vars {
		if err := im.step(); err != nil {
			return err
		}
		if err := im.variable(v); err != nil {
			return err
		}
	}
	return nil
}

// variable imports one variable: its value opened with Langflow's secret,
// a Credential re-encrypted under keyflow's.
func (im *importer) variable(v variables.Variable) error {
	to, ok := im.owner[v.UserID]
	if !ok {
		im.rep.skip("variables", SkipNoOwner)
		return nil
	}
	value := v.Value
	if secrets.IsEncrypted(value) {
		plain, err := im.langflow.Decrypt(value)
		if err != nil {
			im.rep.skip("variables", SkipUndecryptable)
			return nil
		}
		value = plain
	}
	if v.Type == variables.Credential {
		var err error
		if value, err = im.to.Keyring.Encrypt(value); err != nil {
			return err
		}
	}
	v.UserID, v.Value, v.Origin = to, value, variables.OriginUser
	if v.CreatedAt.IsZero() {
		v.CreatedAt = time.Now().UTC().Truncate(time.Microsecond)
	}
	err := im.to.Vars.Create(im.wctx, v)
	switch {
	case errors.Is(err, variables.ErrDuplicate):
		if _, gerr := im.to.Vars.Get(im.wctx, to, v.ID); gerr == nil {
			im.rep.skip("variables", SkipAlready)
		} else {
			im.rep.skip("variables", SkipNameTaken)
		}
	case err != nil:
		return fmt.Errorf("import variable %s: %w", v.ID, err)
	default:
		im.rep.ok("variables")
	}
	return nil
}
