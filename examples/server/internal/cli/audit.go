package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/user"
	"strings"

	"github.com/keyflow-dev/keyflow/audit"
	"github.com/keyflow-dev/keyflow/examples/server/internal/auditing"
	"github.com/keyflow-dev/keyflow/examples/server/internal/startup"
)

// auditCmd is the audit subcommand: `audit verify` walks the audit trail's
// chain; exit status 0 when it is intact, 1 naming the first broken event.
func auditCmd(args []string, stdout, stderr io.Writer) error {
	fs, common := newFlagSet("audit", stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: audit verify [flags]\n\n")
		printUsage(fs)
	}
	// The action comes first (audit verify --config-dir DIR) or after the
	// flags (audit --config-dir DIR verify).
	action := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		action, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return errFlagParse
	}
	if action == "" && fs.NArg() > 0 {
		action = fs.Arg(0)
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return errFlagParse
		}
	}
	if action != "verify" || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "audit: the one action is verify: audit verify [flags]")
		return errFlagParse
	}
	ctx := context.Background()
	a, err := open(ctx, common, nil, nil, stderr)
	if err != nil {
		return err
	}
	defer a.Close()
	switch auditing.Verify(ctx, a.Audit, stdout, stderr) {
	case 0:
		return nil
	case 1:
		return errAuditBroken
	}
	return errAuditUnreadable
}

// cliActor is who acts from the command line: the operating system's user,
// through the CLI.
func cliActor() audit.Actor {
	a := audit.Actor{Session: "cli"}
	if u, err := user.Current(); err == nil {
		a.Username = u.Username
	}
	return a
}

// record records a CLI action in a's audit trail; a failure to record it
// fails the command (the caller records before acting, or takes the action
// back).
func record(a *startup.App, e audit.Event) error {
	e.Actor = cliActor()
	if err := a.Auditor.Record(nil, e); err != nil {
		return fmt.Errorf("audit trail: %w", err)
	}
	return nil
}

// recordFailure records that an action recorded beforehand failed.
func recordFailure(a *startup.App, e audit.Event) {
	e.Outcome, e.Reason = audit.Failure, "failed"
	_ = record(a, e) // logged by the Auditor; the command fails anyway
}

var (
	errAuditBroken     = errors.New("the audit trail is broken (see above)")
	errAuditUnreadable = errors.New("the audit trail could not be read")
)
