// Command server is keyflow's reference server: a Langflow-shaped API with
// per-user API keys, Fernet-encrypted global variables and a small web UI,
// on an embedded SQLite database (or PostgreSQL), plus Langflow's CLI.
//
//	go run ./examples/server                 # serve on http://127.0.0.1:7860
//	go run ./examples/server api-key         # a key for the superuser, in a box
//	go run ./examples/server superuser --username admin --password '…'
//	echo -n secret | go run ./examples/server encrypt
//	go run ./examples/server decrypt < token.txt
//	go run ./examples/server rotate-secret   # re-encrypt under a new master secret
//
// Every subcommand takes --config-dir, --database-url, --env-file,
// --log-level and --change-max-lag, and creates the database, its schema and
// the superuser (LANGFLOW_SUPERUSER, default "langflow") when they are
// missing, so the CLI and a running server share one database from the
// first command on. Logs go to stderr.
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	_ "modernc.org/sqlite"             // registers the "sqlite" driver

	"github.com/keyflow-dev/keyflow/apikey"
	keysql "github.com/keyflow-dev/keyflow/apikey/sqlstore"
	"github.com/keyflow-dev/keyflow/apikey/sqlstore/pgnotify"
	"github.com/keyflow-dev/keyflow/secrets"
	"github.com/keyflow-dev/keyflow/sqldialect"
	"github.com/keyflow-dev/keyflow/variables"
	varsql "github.com/keyflow-dev/keyflow/variables/sqlstore"
)

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

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
			return cmdRun(args, stderr)
		})},
		{"api-key", "create an API key for the superuser (or --username NAME) and print it once", noStdin(cmdAPIKey)},
		{"superuser", "create a superuser, or reset one's password (--username, --password)", cmdSuperuser},
		{"encrypt", "read a value on stdin, print one Fernet token under the master secret", cmdEncrypt},
		{"decrypt", "read one Fernet token on stdin, print the value", cmdDecrypt},
		{"rotate-secret", "re-encrypt stored Credential variables under a new master secret", noStdin(cmdRotateSecret)},
		{"import-langflow", "copy a Langflow database's users, API keys and variables (--from URL)", noStdin(cmdImportLangflow)},
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
	prog := progName(os.Args[0])
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

// progName is how the user started this program, for help texts and the
// commands the server suggests: "go run ./examples/server" when arg0 is a
// binary that go run (or go test) built in its temporary directory, else
// arg0 as typed.
func progName(arg0 string) string {
	if strings.Contains(filepath.ToSlash(arg0), "/go-build") {
		return "go run ./examples/server"
	}
	return arg0
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

// realMain runs one subcommand and returns the process exit code. Help that
// was asked for (-h, --help, help) goes to stdout with exit status 0; a
// usage error goes to stderr with exit status 2.
func realMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
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

// app is what every subcommand opens: the database, keyflow's services on
// it, and the superuser.
type app struct {
	cfg       config
	log       *slog.Logger
	db        *sql.DB
	store     *store
	keyring   *secrets.Keyring
	varStore  variables.Store
	keyStore  apikey.Store
	langflow  *langflowConn // non-nil when serving on a Langflow database (langflowdb.go)
	keys      *apikey.Manager
	notify    *pgnotify.Listener // nil: not PostgreSQL, or no change feed
	vars      *variables.Service
	resolver  *variables.Resolver
	superuser user
	dbDisplay string // the database URL without a password, for logs
	// startupFile is, on SQLite, the file whose lock serialises the
	// start-up of processes sharing the database file (startupLock); "" on
	// PostgreSQL.
	startupFile string
	throttle    *loginThrottle
	active      activeUsers // users found active recently (accounts.go)
	dummyHash   []byte      // made by serve before it listens; nil: made on first use (dummyHash)
	unlock      func()      // releases the database-use lock (lockDatabase)
}

// openApp creates the config dir, takes the database-use lock (shared, see
// lockDatabase), loads (or generates) the master secret, opens the database,
// creates every schema, and creates the superuser when it is missing. Close
// it.
func openApp(ctx context.Context, cfg config, log *slog.Logger) (*app, error) {
	return openAppWith(ctx, cfg, log, false)
}

// openAppWith is openApp; lockHeld says the caller holds the database-use
// lock already (rotate-secret, exclusively), so it is not taken again.
func openAppWith(ctx context.Context, cfg config, log *slog.Logger, lockHeld bool) (*app, error) {
	if err := os.MkdirAll(cfg.ConfigDir, 0o700); err != nil {
		return nil, fmt.Errorf("config dir: %w", err)
	}
	dbc, err := parseDatabaseURL(cfg.DatabaseURL, cfg.ConfigDir)
	if err != nil {
		return nil, err
	}
	if err := prepareSQLiteFile(dbc, log); err != nil { // dbfiles.go: 0600, in a 0700 dir
		return nil, err
	}
	// The lock comes before the secret is read, so that a rotate-secret
	// that finishes meanwhile is either waited out or fully seen.
	unlock := func() {}
	if !lockHeld {
		if unlock, _, err = lockDatabase(ctx, dbc, false); err != nil {
			return nil, err
		}
	}
	keyring, err := secrets.Load(secrets.LoadOptions{
		ConfigDir: cfg.ConfigDir,
		Previous:  pendingSecret(cfg.ConfigDir),
		Getenv:    cfg.Getenv,
	})
	if err != nil {
		unlock()
		return nil, fmt.Errorf("master secret: %w", err)
	}
	warnShortSecret(log, keyring, cfg.Getenv(secrets.EnvSecretKey) != "")
	db, err := sql.Open(dbc.driver, dbc.dsn)
	if err != nil {
		unlock()
		return nil, fmt.Errorf("open %s: %w", dbc.display, err)
	}
	if dbc.postgres {
		// database/sql keeps only 2 idle connections by default, so a busy
		// server would reconnect to PostgreSQL all the time (tens of
		// milliseconds each). Keep them, and bound them so that several
		// instances fit in PostgreSQL's max_connections (100 by default).
		db.SetMaxOpenConns(maxPostgresConns)
		db.SetMaxIdleConns(maxPostgresConns)
		db.SetConnMaxIdleTime(5 * time.Minute)
	}
	a := &app{cfg: cfg, log: log, db: db, keyring: keyring, dbDisplay: dbc.display, throttle: newLoginThrottle(), unlock: unlock}
	if !dbc.postgres {
		a.startupFile = sqlitePath(dbc) + "-keyflow-startup.lock"
	}
	open, err := a.chooseSchema(ctx, dbc)
	if err == nil {
		err = open(ctx, dbc)
	}
	if err != nil {
		if a.keys != nil {
			_ = a.keys.Close()
		}
		if a.notify != nil {
			_ = a.notify.Close()
		}
		_ = db.Close()
		_ = a.closeLangflow()
		unlock()
		return nil, err
	}
	log.Debug("database ready", "url", dbc.display)
	return a, nil
}

// shortSecretWarning is logged when the master secret is shorter than 32
// characters, as Langflow ≥ 1.11.3 warns
// (docs/langflow-compatibility.md#a-short-master-secret). It names neither
// the secret nor its length.
const shortSecretWarning = "the master secret is shorter than 32 characters: short secrets are not recommended for production. " +
	"Keep it unchanged while upgrading from Langflow, so Credential values encrypted before Langflow 1.10.1 still open, " +
	"then replace it with a generated one: rotate-secret re-encrypts every value under the new secret"

// warnShortSecret logs shortSecretWarning once when the primary secret of
// k is shorter than 32 characters (Python's len, in code points: the secrets
// Langflow hashes into a key), with where the secret came from. Generated
// secrets are 43 characters and never warn.
func warnShortSecret(log *slog.Logger, k *secrets.Keyring, fromEnv bool) {
	if k.Derivation() != secrets.DerivationSHA256 {
		return
	}
	source := secrets.SecretFileName + " in the config dir"
	if fromEnv {
		source = secrets.EnvSecretKey
	}
	log.Warn(shortSecretWarning, "source", source)
}

// maxPostgresConns bounds each instance's PostgreSQL connections.
const maxPostgresConns = 16

// open connects and builds the stores and services on a.db.
func (a *app) open(ctx context.Context, dbc database) error {
	if err := a.db.PingContext(ctx); err != nil {
		return fmt.Errorf("connect to %s: %w", dbc.display, err)
	}
	keyDialect, varDialect := sqldialect.SQLite, sqldialect.SQLite
	if dbc.postgres {
		keyDialect, varDialect = sqldialect.Postgres, sqldialect.Postgres
	}
	// Several instances may start together on one fresh PostgreSQL
	// database: create the schemas (and the superuser) one instance at a
	// time.
	unlock, err := a.startupLock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if a.store, err = newStore(ctx, a.db, dbc.postgres); err != nil {
		return err
	}
	if err := a.store.migrateUsers(ctx); err != nil {
		return err
	}
	keyStore, err := keysql.New(ctx, a.db, keysql.Config{Dialect: keyDialect})
	if err != nil {
		return fmt.Errorf("api key store: %w", err)
	}
	varStore, err := varsql.New(ctx, a.db, varsql.Config{Dialect: varDialect})
	if err != nil {
		return fmt.Errorf("variable store: %w", err)
	}
	a.varStore, a.keyStore = varStore, keyStore
	keyCfg := apikey.Config{
		Store:                keyStore,
		DisableUsageTracking: a.cfg.DisableUsageTracking,
		Logger:               a.log,
	}
	if a.cfg.ChangeMaxLag > 0 {
		// Keys revoked, disabled or created by other instances on this
		// database are seen within ChangeMaxLag (the change log that
		// keysql's triggers write).
		keyCfg.Changes, keyCfg.ChangesMaxLag = keyStore, a.cfg.ChangeMaxLag
		if dbc.postgres {
			// On PostgreSQL they are pushed too (LISTEN/NOTIFY, on a
			// connection of its own): seen in milliseconds.
			channel, payload := keyStore.Notification()
			a.notify, err = pgnotify.New(pgnotify.Config{ConnString: dbc.dsn, Channel: channel, Payload: payload, Logger: a.log})
			if err != nil {
				return err
			}
			keyCfg.ChangesNotifier = a.notify
		}
	}
	if a.keys, err = apikey.NewManager(keyCfg); err != nil {
		return err
	}
	if a.vars, err = variables.NewService(variables.ServiceConfig{Store: a.varStore, Keyring: a.keyring, Logger: a.log}); err != nil {
		return err
	}
	fallback := variables.EnvFallbackOff
	if a.cfg.FallbackToEnv {
		fallback = variables.EnvFallbackOn
	}
	if a.resolver, err = variables.NewResolver(variables.ResolverConfig{Service: a.vars, EnvFallback: fallback}); err != nil {
		return err
	}
	a.superuser, err = a.setupSuperuser(ctx)
	return err
}

// startupLockSQL takes the PostgreSQL advisory lock that serialises the
// start-up of instances sharing a database schema (schema creation, the
// superuser, the demo flow); instances on other schemas do not wait.
const startupLockSQL = "SELECT pg_advisory_lock(hashtext('keyflow-startup:' || current_schema()))"

// startupLock takes the start-up lock and returns its release. On
// PostgreSQL it is a session lock held on one connection of a.db, which the
// other statements do not use. On SQLite it is flock(2) on a.startupFile
// beside the database file: SQLite serialises each write, but not a
// migration's "is the column there? then add it", which two processes
// starting together on a fresh file would both run (systems without flock
// have no lock).
func (a *app) startupLock(ctx context.Context) (func(), error) {
	if a.startupFile != "" {
		release, err := waitLockFile(ctx, a.startupFile)
		if err != nil {
			return nil, fmt.Errorf("start-up lock: %w", err)
		}
		return release, nil
	}
	conn, err := a.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("start-up lock: %w", err)
	}
	if _, err := conn.ExecContext(ctx, startupLockSQL); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("start-up lock: %w", err)
	}
	return func() {
		_, _ = conn.ExecContext(context.Background(), "SELECT pg_advisory_unlock(hashtext('keyflow-startup:' || current_schema()))")
		_ = conn.Close()
	}, nil
}

// ensureUser returns the named user, creating it when missing; a new user
// gets the environment's variables imported at once.
func (a *app) ensureUser(ctx context.Context, username string, superuser bool) (user, error) {
	if a.langflow != nil {
		return a.langflowUser(ctx, username) // Langflow owns its users
	}
	u, created, err := a.store.ensureUser(ctx, username, superuser)
	if err != nil {
		return user{}, err
	}
	if created {
		a.log.Info("created user", "username", u.Username, "superuser", u.IsSuperuser)
		if err := a.importEnv(ctx, u); err != nil {
			return user{}, err
		}
	}
	return u, nil
}

// importEnv copies the provider keys found in the environment (and .env) into
// u's Credential variables, unless LANGFLOW_STORE_ENVIRONMENT_VARIABLES=false.
func (a *app) importEnv(ctx context.Context, u user) error {
	if !a.cfg.StoreEnvVariables {
		return nil
	}
	rep, err := a.vars.ImportEnv(ctx, u.ID, variables.EnvImportOptions{})
	if err != nil {
		return fmt.Errorf("import environment variables for %s: %w", u.Username, err)
	}
	a.log.Debug("imported environment variables", "username", u.Username, "report", fmt.Sprintf("%+v", rep))
	return nil
}

// shutdownFlushTimeout bounds the usage flush in Close, so that a database
// that stopped answering cannot keep the process from stopping.
var shutdownFlushTimeout = 10 * time.Second

// Close flushes pending API-key usage (for at most shutdownFlushTimeout),
// stops the Manager, closes the database and then releases the
// database-use lock.
func (a *app) Close() error {
	if a.unlock != nil {
		defer a.unlock()
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownFlushTimeout)
	defer cancel()
	if err := a.keys.Flush(ctx); err != nil {
		// Close the database first, so that the Manager's own final flush
		// (which has no deadline) fails at once instead of waiting again.
		dbErr := a.db.Close()
		_ = a.keys.Close()
		a.closeNotify()
		return errors.Join(fmt.Errorf("write API-key usage: %w", err), dbErr, a.closeLangflow())
	}
	err := a.keys.Close()
	a.closeNotify()
	return errors.Join(err, a.db.Close(), a.closeLangflow())
}

func (a *app) closeNotify() {
	if a.notify != nil {
		_ = a.notify.Close()
	}
}

// newLogger writes text logs to stderr.
func newLogger(stderr io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
}

// setup resolves the configuration and opens the app: the common start of
// every subcommand. host and port are nil except for run.
func setup(ctx context.Context, c *commonFlags, host *string, port *int, stderr io.Writer) (*app, error) {
	cfg, err := loadConfig(c, host, port)
	if err != nil {
		return nil, err
	}
	return openApp(ctx, cfg, newLogger(stderr, cfg.LogLevel))
}

func cmdRun(args []string, stderr io.Writer) error {
	fs, common := newFlagSet("run", stderr)
	host := fs.String("host", "127.0.0.1", "the `ADDRESS` to listen on (env LANGFLOW_HOST; default 127.0.0.1)")
	port := fs.Int("port", 7860, "the `PORT` to listen on, 0 for any free port (env LANGFLOW_PORT; default 7860)")
	allowedHosts := fs.String("allowed-hosts", "", "the `HOSTS` the server answers besides localhost, loopback addresses and --host, comma-separated: name, .domain (with its subdomains) or * (env KEYFLOW_ALLOWED_HOSTS; enforced while LANGFLOW_AUTO_LOGIN is on, or when set)")
	if err := fs.Parse(args); err != nil {
		return errFlagParse
	}
	// Flags given on the command line win over the environment.
	explicit := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
	if !explicit["host"] {
		host = nil
	}
	if !explicit["port"] {
		port = nil
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C ends the process at once
	}()

	hosts, err := parseAllowedHosts("--allowed-hosts", *allowedHosts)
	if err != nil {
		return err
	}
	a, err := setup(ctx, common, host, port, stderr)
	if err != nil {
		return err
	}
	if explicit["allowed-hosts"] {
		a.cfg.AllowedHosts = hosts
	}
	// Close writes the usage counters; if it cannot, the exit code says so.
	return errors.Join(a.serve(ctx), a.Close())
}

// serve imports the environment for every user, makes sure the demo flow
// exists, and serves until ctx is cancelled (SIGINT/SIGTERM), then shuts down
// gracefully. The caller's Close then writes the usage counters.
func (a *app) serve(ctx context.Context) error {
	users, err := a.store.users(ctx)
	if err != nil {
		return err
	}
	for _, u := range users {
		if err := a.importEnv(ctx, u); err != nil {
			return err
		}
	}
	unlock, err := a.startupLock(ctx) // one demo flow, however many instances start
	if err != nil {
		return err
	}
	echo, created, err := a.echoFlow(ctx)
	unlock()
	if err != nil {
		return err
	}
	a.warnIfNoLogin(ctx)
	// The dummy bcrypt hash that logins of unknown users are compared
	// against is made now, so that the first such login does not take the
	// time of two bcrypt runs where a wrong password takes one.
	a.dummyHash = dummyHash()

	h, err := a.handler()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(a.cfg.Host, strconv.Itoa(a.cfg.Port)))
	if err != nil {
		return err
	}
	if ip := net.ParseIP(a.cfg.Host); a.cfg.Auth.AutoLogin && (ip == nil || !ip.IsLoopback()) {
		a.log.Warn("LANGFLOW_AUTO_LOGIN is on and the server listens beyond loopback: anyone who can open the web UI manages the superuser's keys and variables")
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	a.logGuide(ln.Addr(), echo, created)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	a.log.Info("keyflow listening on http://" + ln.Addr().String())

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	a.log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// logGuide logs, before the ready line, what a first run needs to know:
// where the data is, the demo flow, how to make a key, where the UI is.
// Only what this start created is logged as created.
func (a *app) logGuide(addr net.Addr, echo flow, created bool) {
	a.log.Info("config directory", "path", a.cfg.ConfigDir)
	a.log.Info("database", "url", a.dbDisplay)
	if created {
		a.log.Info("created demo flow", "name", echo.Name, "id", echo.ID)
	} else {
		a.log.Info("demo flow", "name", echo.Name, "id", echo.ID)
	}
	a.log.Info("make an API key", "command", a.apiKeyCommand())
	a.log.Info("web UI", "url", browseURL(addr))
}

// apiKeyCommand is the command line that makes an API key in this server's
// database: the program as it was started, api-key, and the --config-dir and
// --database-url that lead to the same data (without a password).
func (a *app) apiKeyCommand() string {
	args := []string{progName(os.Args[0]), "api-key"}
	if def, err := secrets.DefaultConfigDir(func(string) string { return "" }); err != nil || def != a.cfg.ConfigDir {
		args = append(args, "--config-dir", shellQuote(a.cfg.ConfigDir))
	}
	if a.cfg.DatabaseURL != "" {
		args = append(args, "--database-url", shellQuote(a.dbDisplay))
	}
	return strings.Join(args, " ")
}

// browseURL is the web UI's address for a browser: a wildcard listen address
// (0.0.0.0, ::) is shown as localhost.
func browseURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String() + "/"
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
}

// shellQuote quotes s for a POSIX shell when it holds anything but letters,
// digits and -_./:=@%+,.
func shellQuote(s string) string {
	safe := s != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=@%+,", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// ensureEchoFlow gives the superuser the demo flow "Echo" (endpoint name
// "echo"), whose field api_key is bound to the global variable
// OPENAI_API_KEY.
func (a *app) ensureEchoFlow(ctx context.Context) (flow, error) {
	f, _, err := a.echoFlow(ctx)
	return f, err
}

// echoFlow is ensureEchoFlow, and reports whether it created the flow.
func (a *app) echoFlow(ctx context.Context) (f flow, created bool, err error) {
	flows, err := a.store.flowsByUser(ctx, a.superuser.ID)
	if err != nil {
		return flow{}, false, err
	}
	for _, f := range flows {
		if f.Name == "Echo" {
			return f, false, nil
		}
	}
	f, err = a.store.createNamedFlow(ctx, a.superuser.ID, "Echo", "echo", map[string]flowField{
		"api_key": {Variable: "OPENAI_API_KEY"},
	})
	return f, err == nil, err
}
