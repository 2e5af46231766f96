package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/keyflow-dev/keyflow/examples/server/internal/config"
	"github.com/keyflow-dev/keyflow/examples/server/internal/secretfile"
	"github.com/keyflow-dev/keyflow/examples/server/internal/sqldb"
	"github.com/keyflow-dev/keyflow/examples/server/internal/startup"
	"github.com/keyflow-dev/keyflow/secrets"
)

// rotateSecret re-encrypts every stored Credential variable under a new
// master secret. The new secret is, in order: --new-secret; else
// LANGFLOW_SECRET_KEY (the sequence "set LANGFLOW_SECRET_KEY=new and
// KEYFLOW_PREVIOUS_SECRET_KEYS=old, run rotate-secret"); else the pending
// secret of an unfinished run (secret_key.new); else a new random one. The
// old secrets are the one in <config-dir>/secret_key, the pending one, the
// current LANGFLOW_SECRET_KEY when --new-secret replaces it, and
// KEYFLOW_PREVIOUS_SECRET_KEYS.
//
// No sequence of kills, reruns and concurrent keyflow processes loses a
// value (TestRotateSecretKilledAnywhere, TestRotateSecretWhileServing):
//
//   - It holds the database-use lock exclusively for its whole run, and
//     refuses to start while a server or another command uses the database
//     (see sqldb.LockForUse); servers and commands refuse to start while it
//     runs. It reads the secret files only once it holds the lock.
//   - A new secret is saved to secret_key.new (atomically, fsynced) before
//     any value is re-encrypted under it, and servers read that file as a
//     previous secret. A different pending secret is never overwritten:
//     --new-secret is refused until the unfinished rotation is finished by
//     a plain rerun.
//   - secret_key keeps the old secret until a full pass finds every value
//     under the new one (the pass after the one that re-encrypted anything
//     is a verification pass); only then is it replaced, atomically, and
//     secret_key.new removed. A kill at any point leaves every value
//     opening with secret_key and secret_key.new; rerun to finish.
func rotateSecret(args []string, stdout, stderr io.Writer) error {
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
	cfg, err := config.Load(*common, nil, nil)
	if err != nil {
		return err
	}
	ctx := context.Background()
	log := newLogger(stderr, cfg.LogLevel)
	unlock, err := lockExclusive(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer unlock()
	// Read the secret files under the lock, and before opening the app,
	// which generates secret_key in a fresh config dir.
	p, err := planRotation(cfg, *newSecret)
	if err != nil {
		return err
	}
	a, err := startup.Open(ctx, cfg, log, startup.Options{LockHeld: true})
	if err != nil {
		return err
	}
	defer a.Close()
	keyring, err := p.start(log)
	if err != nil {
		return err
	}
	rep, err := reencryptAll(ctx, keyring, a.VarStore, *batch, stderr)
	fmt.Fprintf(stdout, "rotate-secret: %d re-encrypted, %d already current, %d failed\n", rep.Rotated, rep.Current, rep.Failed)
	if err != nil {
		return fmt.Errorf("%w; %s is unchanged", err, p.file)
	}
	return p.finish(stderr)
}

// lockExclusive takes the database-use lock exclusively (creating the
// config dir first), warning where the platform cannot lock.
func lockExclusive(ctx context.Context, cfg config.Config, log *slog.Logger) (func(), error) {
	if err := os.MkdirAll(cfg.ConfigDir, 0o700); err != nil {
		return nil, fmt.Errorf("config dir: %w", err)
	}
	addr, err := sqldb.ParseURL(cfg.DatabaseURL, cfg.ConfigDir)
	if err != nil {
		return nil, err
	}
	unlock, locked, err := sqldb.LockForUse(ctx, addr, true)
	if err != nil {
		return nil, err
	}
	if !locked {
		log.Warn("this system cannot lock an SQLite database file: make sure no server uses the database while rotate-secret runs")
	}
	return unlock, nil
}

// rotation is what rotate-secret found in the config dir and the
// environment, and the secret it rotates to.
type rotation struct {
	file       string // <config-dir>/secret_key
	fileSecret string // its content, "" when missing
	pending    string // secret_key.new's content
	envSecret  string // LANGFLOW_SECRET_KEY
	next       string // the new secret
	fromEnv    bool   // next is LANGFLOW_SECRET_KEY: it is never written to disk
	old        []string
}

// planRotation chooses the new secret and lists the old ones, refusing a
// --new-secret while an unfinished rotation's secret is pending.
func planRotation(cfg config.Config, newSecret string) (*rotation, error) {
	file := filepath.Join(cfg.ConfigDir, secrets.SecretFileName)
	p := &rotation{file: file, fileSecret: secretfile.Read(file), pending: secretfile.Read(file + ".new"),
		envSecret: cfg.Getenv(secrets.EnvSecretKey), next: newSecret}
	p.old = []string{p.fileSecret, p.pending}
	switch {
	case p.next != "":
		if p.pending != "" && p.pending != p.next && p.pending != p.fileSecret {
			return nil, fmt.Errorf("%s.new holds the new secret of an unfinished rotation, and values may already be encrypted under it: "+
				"finish that rotation first (run rotate-secret without --new-secret%s), then rotate to the secret you want; nothing was changed",
				file, unsetEnvHint(p.envSecret))
		}
		p.old = append(p.old, p.envSecret)
	case p.envSecret != "":
		p.next, p.fromEnv = p.envSecret, true
	case p.pending != "":
		p.next = p.pending
	default:
		p.next = secrets.GenerateSecret()
	}
	p.old = append(p.old, splitSecrets(cfg.Getenv(secrets.EnvPreviousSecretKeys))...)
	return p, nil
}

// start returns the keyring of the rotation (the app is open) and saves the
// new secret to secret_key.new before anything is re-encrypted under it.
func (p *rotation) start(log *slog.Logger) (*secrets.Keyring, error) {
	if p.fileSecret == "" { // a fresh config dir: opening the app has just generated one
		p.old = append(p.old, secretfile.Read(p.file))
	}
	keyring, err := secrets.NewKeyring(p.next, previousSecrets(p.next, p.old)...)
	if err != nil {
		return nil, fmt.Errorf("new secret: %w", err)
	}
	if keyring.Derivation() == secrets.DerivationSHA256 {
		log.Warn("the new master secret is shorter than 32 characters: short secrets are not recommended for production")
	}
	if !p.fromEnv && p.next != p.pending {
		if err := secretfile.Write(p.file+".new", p.next); err != nil {
			return nil, fmt.Errorf("save the new secret before re-encrypting: %w", err)
		}
	}
	return keyring, nil
}

// finish retires the old secret once every value is under the new one:
// secret_key replaced and secret_key.new removed, or (a secret in the
// environment) what to do next said.
func (p *rotation) finish(stderr io.Writer) error {
	if p.fromEnv {
		// The secret lives in the environment; keyflow never copies it to
		// disk (see secrets.Load). A secret_key left from before is stale.
		if p.fileSecret != "" && p.fileSecret != p.next {
			fmt.Fprintf(stderr, "rotate-secret: done; %s still holds an old secret, unused while LANGFLOW_SECRET_KEY is set: delete it once you no longer need it\n", p.file)
		} else {
			fmt.Fprintln(stderr, "rotate-secret: done; restart the servers with the new LANGFLOW_SECRET_KEY")
		}
		return nil
	}
	if err := secretfile.Write(p.file, p.next); err != nil {
		return fmt.Errorf("write the new secret (every value is already re-encrypted under it, and it is also in %s.new): %w", p.file, err)
	}
	if err := os.Remove(p.file + ".new"); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if p.envSecret != "" {
		fmt.Fprintf(stderr, "rotate-secret: done; %s holds the new secret, but LANGFLOW_SECRET_KEY still holds the old one and wins: set it to the new one (or unset it), then restart the servers\n", p.file)
	} else {
		fmt.Fprintf(stderr, "rotate-secret: done; %s holds the new secret; start the servers\n", p.file)
	}
	return nil
}

// unsetEnvHint is the part of the unfinished-rotation message about
// LANGFLOW_SECRET_KEY, which would otherwise be the rerun's target.
func unsetEnvHint(envSecret string) string {
	if envSecret == "" {
		return ""
	}
	return " and with LANGFLOW_SECRET_KEY unset"
}

// maxRotatePasses bounds reencryptAll's passes. With the database-use lock
// held, the second pass finds everything current; more passes are needed
// only when something outside keyflow writes the variable table meanwhile.
const maxRotatePasses = 5

// reencryptAll runs secrets.Reencrypt until a full pass finds every value
// under the new secret (nothing re-encrypted, nothing skipped), printing
// progress to stderr: the pass after one that re-encrypted anything
// verifies it, so a value written under an old secret behind the first
// pass's back is found before the old secret is retired. It fails when a
// value opens with none of the keyring's secrets, and after
// maxRotatePasses passes that still found work. The report's Current is the
// first pass's: the values that were current before this run.
func reencryptAll(ctx context.Context, k *secrets.Keyring, s secrets.CiphertextStore, batch int, stderr io.Writer) (secrets.ReencryptReport, error) {
	var total secrets.ReencryptReport
	for pass := 1; ; pass++ {
		rotatedBefore := total.Rotated
		rep, err := secrets.Reencrypt(ctx, k, s, secrets.ReencryptOptions{
			BatchSize: batch,
			Progress: func(r secrets.ReencryptReport) {
				fmt.Fprintf(stderr, "rotate-secret: pass %d: %d values checked (%d re-encrypted, %d already current, %d failed)\n",
					pass, r.Rotated+r.Current+r.Failed+r.Skipped, rotatedBefore+r.Rotated, r.Current, r.Failed)
			},
		})
		total.Rotated += rep.Rotated
		total.Failed = rep.Failed
		if pass == 1 {
			total.Current = rep.Current
		}
		switch {
		case err != nil:
			return total, fmt.Errorf("re-encrypt: %w", err)
		case rep.Failed > 0:
			return total, fmt.Errorf("%d values open with none of the known secrets: add the secret they were written with to KEYFLOW_PREVIOUS_SECRET_KEYS and run rotate-secret again", rep.Failed)
		case rep.Rotated == 0 && rep.Skipped == 0:
			return total, nil
		case pass == maxRotatePasses:
			return total, fmt.Errorf("values keep changing while rotating (%d in the last pass): stop whatever writes the variable table and run rotate-secret again", rep.Rotated+rep.Skipped)
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
