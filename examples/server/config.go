package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/envbool"
	"github.com/keyflow-dev/keyflow/middleware"
	"github.com/keyflow-dev/keyflow/secrets"
	"github.com/keyflow-dev/keyflow/sqlitedb"
	"github.com/keyflow-dev/keyflow/variables/dotenv"
)

// config is everything the server and the CLI read from flags and the
// environment. Flags win over environment variables, which win over defaults.
type config struct {
	ConfigDir   string
	DatabaseURL string // "" until resolved; then sqlite:… or postgres://…
	Host        string
	Port        int
	LogLevel    slog.Level
	// AllowedHosts are the host names the server answers besides loopback
	// and Host (KEYFLOW_ALLOWED_HOSTS, --allowed-hosts; see hosts.go).
	AllowedHosts []string

	Auth                 middleware.Config // AutoLogin, SkipAuthAutoLogin, EnvKey
	DisableUsageTracking bool              // LANGFLOW_DISABLE_TRACK_APIKEY_USAGE
	FallbackToEnv        bool              // LANGFLOW_FALLBACK_TO_ENV_VAR
	StoreEnvVariables    bool              // LANGFLOW_STORE_ENVIRONMENT_VARIABLES

	// Schema is "langflow" to serve keys and variables from a Langflow
	// database's own tables (langflowdb.go), "keyflow" for keyflow's
	// tables, "" to detect it from the database.
	Schema string

	// Login and users (users.go, login.go).
	Superuser         string        // LANGFLOW_SUPERUSER; "langflow" under auto-login
	SuperuserPassword string        // LANGFLOW_SUPERUSER_PASSWORD; "" under auto-login
	NewUserIsActive   bool          // LANGFLOW_NEW_USER_IS_ACTIVE
	AccessTokenTTL    time.Duration // LANGFLOW_ACCESS_TOKEN_EXPIRE_SECONDS
	RefreshTokenTTL   time.Duration // LANGFLOW_REFRESH_TOKEN_EXPIRE_SECONDS
	// superuserCommand: the superuser subcommand runs, which may repair a
	// LANGFLOW_SUPERUSER that names a user who is not a superuser.
	superuserCommand bool

	// ChangeMaxLag bounds how late this instance sees API keys created,
	// revoked or disabled by other instances sharing the database (the
	// change feed of apikey/sqlstore); 0 turns the feed off.
	ChangeMaxLag time.Duration

	Getenv func(string) string // the environment with the server's defaults applied
}

// commonFlags are the flags every subcommand takes.
type commonFlags struct {
	configDir, databaseURL, envFile, logLevel, changeMaxLag, schema string
	defaultLevel                                                    string // when neither --log-level nor LANGFLOW_LOG_LEVEL is set
}

// newFlagSet returns the subcommand's flag set with the common flags. The
// server logs at info by default, the CLI subcommands only warnings. Its
// usage (on -h, or after a bad flag) names the subcommand, says what it
// does and lists the flags in the --name form the README uses.
func newFlagSet(name string, stderr io.Writer) (*flag.FlagSet, *commonFlags) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { printUsage(fs) }
	c := &commonFlags{defaultLevel: "warn"}
	if name == "run" {
		c.defaultLevel = "info"
	}
	fs.StringVar(&c.configDir, "config-dir", "", "the directory `DIR` holding secret_key and the SQLite database (env LANGFLOW_CONFIG_DIR; default: the user cache dir + /keyflow)")
	fs.StringVar(&c.databaseURL, "database-url", "", "the database `URL`: sqlite:///path/to.db or postgres://… (env LANGFLOW_DATABASE_URL; default: keyflow.db in the config dir)")
	fs.StringVar(&c.envFile, "env-file", "", "load the .env `FILE` first; its values override the process environment, as with langflow run --env-file")
	fs.StringVar(&c.changeMaxLag, "change-max-lag", "", "the longest this instance may take to see API keys revoked, disabled or created by other instances on the same database, a `DURATION` such as 1s or 500ms; 0 turns the change feed off (env KEYFLOW_CHANGE_MAX_LAG; default 1s)")
	fs.StringVar(&c.schema, "schema", "", "`SCHEMA`: langflow to serve on a Langflow database's own tables, keyflow for keyflow's tables (env KEYFLOW_SCHEMA; default: detected)")
	fs.StringVar(&c.logLevel, "log-level", "", "log `LEVEL`: debug, info, warning, error or critical (env LANGFLOW_LOG_LEVEL; default: info for run, warning otherwise)")
	return fs, c
}

// commonFlagNames are the flags newFlagSet gives every subcommand.
var commonFlagNames = map[string]bool{"config-dir": true, "database-url": true, "env-file": true, "change-max-lag": true, "log-level": true}

// printUsage writes fs's usage: the command line, the subcommand's summary,
// its own flags, then the common ones, as --name VALUE with their help
// wrapped below.
func printUsage(fs *flag.FlagSet) {
	w := fs.Output()
	fmt.Fprintf(w, "usage: %s %s [flags]\n", progName(os.Args[0]), fs.Name())
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

// serverDefaults are the values the reference server assumes for unset
// variables where they differ from the library's zero values: Langflow's own
// defaults.
var serverDefaults = map[string]string{
	"LANGFLOW_AUTO_LOGIN":                  "true",
	"LANGFLOW_FALLBACK_TO_ENV_VAR":         "true",
	"LANGFLOW_STORE_ENVIRONMENT_VARIABLES": "true",
	"LANGFLOW_HOST":                        "127.0.0.1",
	"LANGFLOW_PORT":                        "7860",
}

// loadConfig loads the .env file (if any), then resolves every setting.
// host and port are the run subcommand's flags when given on the command
// line (nil otherwise).
func loadConfig(c *commonFlags, host *string, port *int) (config, error) {
	if c.envFile != "" {
		if err := dotenv.Load(c.envFile); err != nil {
			return config{}, fmt.Errorf("--env-file: %w", err)
		}
	}
	// lookup is the environment with the server's defaults for unset
	// variables; getenv is the same for readers that take no "unset".
	lookup := func(name string) (string, bool) {
		if v, ok := os.LookupEnv(name); ok {
			return v, true
		}
		v, ok := serverDefaults[name]
		return v, ok
	}
	getenv := func(name string) string {
		if v := os.Getenv(name); v != "" {
			return v
		}
		return serverDefaults[name]
	}
	cfg := config{Getenv: getenv}
	var errs []error

	dir := c.configDir
	if dir == "" {
		d, err := secrets.DefaultConfigDir(os.Getenv)
		if err != nil {
			return config{}, fmt.Errorf("config dir: %w (set --config-dir or LANGFLOW_CONFIG_DIR)", err)
		}
		dir = d
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return config{}, fmt.Errorf("config dir: %w", err)
	}
	cfg.ConfigDir = abs

	cfg.DatabaseURL = c.databaseURL
	if cfg.DatabaseURL == "" {
		cfg.DatabaseURL = os.Getenv("LANGFLOW_DATABASE_URL")
	}

	cfg.Host = getenv("LANGFLOW_HOST")
	if host != nil {
		cfg.Host = *host
	}
	if cfg.Port, err = strconv.Atoi(getenv("LANGFLOW_PORT")); err != nil || cfg.Port < 0 || cfg.Port > 65535 {
		errs = append(errs, fmt.Errorf("LANGFLOW_PORT must be a port number, got %q", getenv("LANGFLOW_PORT")))
	}
	if port != nil {
		if *port < 0 || *port > 65535 {
			errs = append(errs, fmt.Errorf("--port must be 0…65535, got %d", *port))
		}
		cfg.Port = *port
	}

	if cfg.AllowedHosts, err = parseAllowedHosts("KEYFLOW_ALLOWED_HOSTS", os.Getenv("KEYFLOW_ALLOWED_HOSTS")); err != nil {
		errs = append(errs, err)
	}

	level := c.logLevel
	if level == "" {
		level = os.Getenv("LANGFLOW_LOG_LEVEL")
	}
	if level == "" {
		level = c.defaultLevel
	}
	if cfg.LogLevel, err = parseLevel(level); err != nil {
		errs = append(errs, err)
	}

	if cfg.Schema, err = parseSchema(c.schema, os.Getenv("KEYFLOW_SCHEMA")); err != nil {
		errs = append(errs, err)
	}

	lag := c.changeMaxLag
	if lag == "" {
		lag = os.Getenv("KEYFLOW_CHANGE_MAX_LAG")
	}
	cfg.ChangeMaxLag = apikey.DefaultChangesMaxLag
	if lag != "" {
		if d, err := time.ParseDuration(lag); err == nil && d >= 0 && (d == 0 || d >= 50*time.Millisecond) {
			cfg.ChangeMaxLag = d
		} else {
			errs = append(errs, fmt.Errorf("change max lag must be 0 or a duration of at least 50ms, got %q", lag))
		}
	}

	if cfg.Auth, err = middleware.ConfigFromEnv(lookup); err != nil {
		errs = append(errs, err)
	}
	if err := loginSettings(&cfg, getenv); err != nil {
		errs = append(errs, err)
	}
	for _, b := range []struct {
		name string
		dst  *bool
	}{
		{"LANGFLOW_DISABLE_TRACK_APIKEY_USAGE", &cfg.DisableUsageTracking},
		{"LANGFLOW_FALLBACK_TO_ENV_VAR", &cfg.FallbackToEnv},
		{"LANGFLOW_STORE_ENVIRONMENT_VARIABLES", &cfg.StoreEnvVariables},
	} {
		// Unset: the server's default (serverDefaults), else false.
		if *b.dst, err = envbool.Lookup(lookup, b.name, false); err != nil {
			errs = append(errs, err)
		}
	}
	return cfg, errors.Join(errs...)
}

// parseLevel accepts slog's level names and Langflow's (warning, and
// critical, which logs errors only: keyflow has no level above error).
func parseLevel(v string) (slog.Level, error) {
	switch strings.ToLower(v) {
	case "warning":
		return slog.LevelWarn, nil
	case "critical":
		return slog.LevelError, nil
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(v)); err != nil {
		return 0, fmt.Errorf("log level must be debug, info, warning, error or critical, got %q", v)
	}
	return l, nil
}

// database is a resolved --database-url.
type database struct {
	driver string // "sqlite" or "pgx"
	dsn    string
	// postgres reports whether the SQL dialect is PostgreSQL.
	postgres bool
	// display is the URL without a password, for logs.
	display string
}

// parseDatabaseURL understands Langflow's forms: "" (an SQLite file in the
// config dir), sqlite:///relative.db, sqlite:////absolute.db (SQLAlchemy's),
// and postgres:// or postgresql:// (also postgresql+psycopg://).
func parseDatabaseURL(raw, configDir string) (database, error) {
	if raw == "" {
		raw = "sqlite:///" + filepath.Join(configDir, "keyflow.db")
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		// Not echoed: without "://" a password cannot be told apart.
		return database{}, errors.New("database URL: want sqlite:///path or postgres://…")
	}
	scheme, _, _ = strings.Cut(strings.ToLower(scheme), "+") // postgresql+psycopg → postgresql
	switch scheme {
	case "sqlite":
		path := strings.TrimPrefix(rest, "/") // sqlite:///a.db → a.db; sqlite:////abs → /abs
		path, _, _ = strings.Cut(path, "?")
		if path == "" || path == ":memory:" {
			return database{}, errors.New("database URL: an SQLite URL needs a file path (sqlite:///path/to.db)")
		}
		return database{driver: sqlitedb.Driver, dsn: sqlitedb.DSN(path), display: "sqlite:///" + path}, nil
	case "postgres", "postgresql":
		dsn := "postgres://" + rest
		return database{driver: "pgx", dsn: dsn, postgres: true, display: redactURL(dsn)}, nil
	}
	return database{}, fmt.Errorf("database URL: unsupported scheme %q (want sqlite or postgres)", scheme)
}

// redactURL hides a password in a URL for logs and errors: the user info's,
// and a password query parameter (which pgx also reads).
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}
