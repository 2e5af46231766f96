package cli

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/keyflow-dev/keyflow/examples/server/internal/config"
)

// newFlagSet returns the subcommand's flag set with the common flags. The
// server logs at info by default, the CLI subcommands only warnings. Its
// usage (on -h, or after a bad flag) names the subcommand, says what it
// does and lists the flags in the --name form the README uses.
func newFlagSet(name string, stderr io.Writer) (*flag.FlagSet, *config.Flags) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { printUsage(fs) }
	c := &config.Flags{DefaultLevel: "warn"}
	if name == "run" {
		c.DefaultLevel = "info"
	}
	fs.StringVar(&c.ConfigDir, "config-dir", "", "the directory `DIR` holding secret_key and the SQLite database (env LANGFLOW_CONFIG_DIR; default: the user cache dir + /keyflow)")
	fs.StringVar(&c.DatabaseURL, "database-url", "", "the database `URL`: sqlite:///path/to.db or postgres://… (env LANGFLOW_DATABASE_URL; default: keyflow.db in the config dir)")
	fs.StringVar(&c.EnvFile, "env-file", "", "load the .env `FILE` first; its values override the process environment, as with langflow run --env-file")
	fs.StringVar(&c.ChangeMaxLag, "change-max-lag", "", "the longest this instance may take to see API keys revoked, disabled or created, variables changed and flows created by other instances on the same database, a `DURATION` such as 1s or 500ms; 0 turns the change feeds and caches off (env KEYFLOW_CHANGE_MAX_LAG; default 1s)")
	fs.StringVar(&c.Schema, "schema", "", "`SCHEMA`: langflow to serve on a Langflow database's own tables, keyflow for keyflow's tables (env KEYFLOW_SCHEMA; default: detected)")
	fs.StringVar(&c.LogLevel, "log-level", "", "log `LEVEL`: debug, info, warning, error or critical (env LANGFLOW_LOG_LEVEL; default: info for run, warning otherwise)")
	return fs, c
}

// commonFlagNames are the flags newFlagSet gives every subcommand.
var commonFlagNames = map[string]bool{"config-dir": true, "database-url": true, "env-file": true, "change-max-lag": true, "log-level": true}

// printUsage writes fs's usage: the command line, the subcommand's summary,
// its own flags, then the common ones, as --name VALUE with their help
// wrapped below.
func printUsage(fs *flag.FlagSet) {
	w := fs.Output()
	fmt.Fprintf(w, "usage: %s %s [flags]\n", config.Command(os.Args[0]), fs.Name())
	if c, ok := findCommand(fs.Name()); ok {
		fmt.Fprintf(w, "\n%s\n", c.summary)
	}
	for _, common := range []bool{false, true} {
		title := "\nflags:\n"
		if common {
			title = "\nflags of every subcommand:\n"
		}
		fs.VisitAll(func(f *flag.Flag) {
			if commonFlagNames[f.Name] != common {
				return
			}
			fmt.Fprint(w, title)
			title = ""
			value, help := flag.UnquoteUsage(f)
			line := "  --" + f.Name
			if value != "" {
				line += " " + value
			}
			if f.DefValue != "" && f.DefValue != "false" && !strings.Contains(help, "default") {
				help += " (default " + f.DefValue + ")"
			}
			fmt.Fprintf(w, "%s\n%s", line, wrap(help, "      ", 80))
		})
	}
}

// wrap breaks text into lines of at most width columns (longer words stay
// whole), each starting with indent and ending with a newline.
func wrap(text, indent string, width int) string {
	var b strings.Builder
	line := indent
	for _, word := range strings.Fields(text) {
		if line != indent && len([]rune(line))+1+len([]rune(word)) > width {
			b.WriteString(line + "\n")
			line = indent
		}
		if line != indent {
			line += " "
		}
		line += word
	}
	b.WriteString(line + "\n")
	return b.String()
}
