package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	"github.com/atotto/clipboard"
	"github.com/charmbracelet/lipgloss"
	"golang.org/x/term"

	"github.com/keyflow-dev/keyflow/apikey"
)

// apiKey is `langflow api-key`: a new key named "CLI" for the superuser
// (or --username, created when missing), shown once on stdout: at a terminal
// in a box, copied to the clipboard when there is one; into a pipe or a file
// (or with --quiet) as the key alone on one line, for scripts.
// Unlike Langflow it does not delete one of the user's existing keys first,
// and it works with LANGFLOW_AUTO_LOGIN off: whoever can run it can already
// read the database (docs/langflow-compatibility.md#command-line).
func apiKey(args []string, stdout, stderr io.Writer) error {
	fs, common := newFlagSet("api-key", stderr)
	username := fs.String("username", "", "the `NAME` of the user the key belongs to; the user is created when missing (default: the superuser, LANGFLOW_SUPERUSER)")
	name := fs.String("name", "CLI", "the key's `NAME`")
	quiet := fs.Bool("quiet", false, "print only the key, on one line, without the box and the clipboard (the default when stdout is not a terminal)")
	var lf limitFlags
	fs.Var(&lf.rate, "rate-limit", "a rate limit `N/DURATION`: N requests per window, e.g. 100/1m or 10000/24h; repeat the flag for several (e.g. per minute and per day)")
	fs.Func("quota", "a quota of `N` uses; with --refill, the uses of the first period", lf.setQuota)
	fs.Func("refill", "refill the quota to `N/PERIOD` at the start of every period (UTC): hour, day, week (from Monday) or month (on the 1st), e.g. 10000/month", lf.setRefill)
	if err := fs.Parse(args); err != nil {
		return errFlagParse
	}
	limits, err := lf.limits()
	if err != nil {
		return err
	}
	ctx := context.Background()
	a, err := open(ctx, common, nil, nil, stderr)
	if err != nil {
		return err
	}
	defer a.Close()

	u := a.Superuser
	if *username != "" && *username != u.Username {
		if u, err = a.Users.Ensure(ctx, *username, false); err != nil {
			return err
		}
	}
	key, rec, err := a.Keys.Create(ctx, u.ID, *name, apikey.CreateOptions{Limits: limits})
	if err != nil {
		return fmt.Errorf("create API key: %w", err)
	}
	a.Log.Info("created API key", "username", u.Username, "key_id", rec.ID, "name", rec.Name)
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
