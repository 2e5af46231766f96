// Package config resolves the reference server's settings: the common flags
// of every subcommand, then Langflow's environment variables, then the
// server's defaults (Langflow's own). Flags win over the environment, which
// wins over the defaults.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/envbool"
	"github.com/keyflow-dev/keyflow/examples/server/internal/httpguard"
	"github.com/keyflow-dev/keyflow/middleware"
	"github.com/keyflow-dev/keyflow/observe"
	"github.com/keyflow-dev/keyflow/secrets"
	"github.com/keyflow-dev/keyflow/variables/dotenv"
)

// Config is everything the server and the CLI read from flags and the
// environment.
type Config struct {
	ConfigDir   string
	DatabaseURL string // "" until resolved; then sqlite:… or postgres://…
	Host        string
	Port        int
	LogLevel    slog.Level
	// AllowedHosts are the host names the server answers besides loopback
	// and Host (KEYFLOW_ALLOWED_HOSTS, --allowed-hosts; see package
	// httpguard).
	AllowedHosts []string

	Auth                 middleware.Config // AutoLogin, SkipAuthAutoLogin, EnvKey
	DisableUsageTracking bool              // LANGFLOW_DISABLE_TRACK_APIKEY_USAGE
	FallbackToEnv        bool              // LANGFLOW_FALLBACK_TO_ENV_VAR
	StoreEnvVariables    bool              // LANGFLOW_STORE_ENVIRONMENT_VARIABLES

	// VariableStore is where variables are kept: VariableStoreDB or
	// VariableStoreKubernetes (LANGFLOW_VARIABLE_STORE), with Kubernetes'
	// settings.
	VariableStore string
	Kubernetes    Kubernetes

	// Schema is "langflow" to serve keys and variables from a Langflow
	// database's own tables, "keyflow" for keyflow's tables, "" to detect
	// it from the database.
	Schema string

	// Login and users (packages accounts and login).
	Superuser         string        // LANGFLOW_SUPERUSER; "langflow" under auto-login
	SuperuserPassword string        // LANGFLOW_SUPERUSER_PASSWORD; "" under auto-login
	NewUserIsActive   bool          // LANGFLOW_NEW_USER_IS_ACTIVE
	AccessTokenTTL    time.Duration // LANGFLOW_ACCESS_TOKEN_EXPIRE_SECONDS
	RefreshTokenTTL   time.Duration // LANGFLOW_REFRESH_TOKEN_EXPIRE_SECONDS
	// SuperuserCommand: the superuser subcommand runs, which may repair a
	// LANGFLOW_SUPERUSER that names a user who is not a superuser.
	SuperuserCommand bool

	// ChangeMaxLag bounds how late this instance sees API keys created,
	// revoked or disabled, variables changed and flows created by other
	// instances sharing the database (the change feeds of apikey/sqlstore
	// and variables/sqlstore, the flows cache's lifetime); 0 turns the
	// feeds and those caches off.
	ChangeMaxLag time.Duration

	// Limiter counts the rate limits of limited API keys (KEYFLOW_LIMITER,
	// --limiter): LimiterMemory, LimiterDatabase, or a redis:// URL; ""
	// is the default (see ParseLimiter).
	Limiter string

	Getenv func(string) string // the environment with the server's defaults applied

	// Hooks receives the Manager's, the middleware's and the variables
	// Service's events (metrics, traces); set by the run subcommand from
	// package telemetry, nil otherwise.
	Hooks observe.Hooks
}

// HostCheckEnabled reports whether the Host check applies: while auto-login
// can act as the superuser, or when allowed hosts are configured.
func (c Config) HostCheckEnabled() bool { return c.Auth.AutoLogin || len(c.AllowedHosts) > 0 }

// Flags are the values of the flags every subcommand takes ("" when not
// given).
type Flags struct {
	ConfigDir, DatabaseURL, EnvFile, LogLevel, ChangeMaxLag, Schema string
	Limiter                                                         string // run's --limiter
	DefaultLevel                                                    string // when neither --log-level nor LANGFLOW_LOG_LEVEL is set
}

// SuperuserName is Langflow's default superuser, which auto-login acts as.
const SuperuserName = "langflow"

// LegacyDefaultPassword is the password Langflow ≤ 1.10 gave its default
// superuser. Langflow 1.11 refuses it with auto-login off, and so do we.
const LegacyDefaultPassword = "langflow"

// MaxPasswordBytes is bcrypt's input limit; longer passwords are refused
// when set (bcrypt would otherwise ignore the rest).
const MaxPasswordBytes = 72

// ErrPasswordTooLong refuses a password over MaxPasswordBytes.
var ErrPasswordTooLong = fmt.Errorf("a password must be at most %d bytes", MaxPasswordBytes)

// Langflow's default login token lifetimes.
const (
	DefaultAccessTTL  = time.Hour
	DefaultRefreshTTL = 7 * 24 * time.Hour
)

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

// lookupEnv is the environment with the server's defaults for unset
// variables.
func lookupEnv(name string) (string, bool) {
	if v, ok := os.LookupEnv(name); ok {
		return v, true
	}
	v, ok := serverDefaults[name]
	return v, ok
}

// getenv is lookupEnv for readers that take no "unset".
func getenv(name string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return serverDefaults[name]
}

// Load loads the .env file (if any), then resolves every setting. host and
// port are the serve subcommand's flags when given on the command line (nil
// otherwise). Every setting that is wrong is named in the error.
func Load(f Flags, host *string, port *int) (Config, error) {
	if f.EnvFile != "" {
		if err := dotenv.Load(f.EnvFile); err != nil {
			return Config{}, fmt.Errorf("--env-file: %w", err)
		}
	}
	cfg := Config{Getenv: getenv}
	dir, err := configDir(f.ConfigDir)
	if err != nil {
		return Config{}, err
	}
	cfg.ConfigDir = dir
	cfg.DatabaseURL = f.DatabaseURL
	if cfg.DatabaseURL == "" {
		cfg.DatabaseURL = os.Getenv("LANGFLOW_DATABASE_URL")
	}
	errs := []error{listenAddress(&cfg, host, port)}
	if cfg.AllowedHosts, err = httpguard.ParseAllowedHosts("KEYFLOW_ALLOWED_HOSTS", os.Getenv("KEYFLOW_ALLOWED_HOSTS")); err != nil {
		errs = append(errs, err)
	}
	if cfg.LogLevel, err = ParseLevel(firstSet(f.LogLevel, os.Getenv("LANGFLOW_LOG_LEVEL"), f.DefaultLevel)); err != nil {
		errs = append(errs, err)
	}
	if cfg.Schema, err = ParseSchema(f.Schema, os.Getenv("KEYFLOW_SCHEMA")); err != nil {
		errs = append(errs, err)
	}
	if cfg.ChangeMaxLag, err = changeMaxLag(firstSet(f.ChangeMaxLag, os.Getenv("KEYFLOW_CHANGE_MAX_LAG"))); err != nil {
		errs = append(errs, err)
	}
	if cfg.Limiter, err = ParseLimiter(firstSet(f.Limiter, os.Getenv("KEYFLOW_LIMITER"))); err != nil {
		errs = append(errs, err)
	}
	if cfg.Auth, err = middleware.ConfigFromEnv(lookupEnv); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, superuserSettings(&cfg, getenv), tokenSettings(&cfg, getenv), switches(&cfg))
	errs = append(errs, variableStore(&cfg, getenv))
	return cfg, errors.Join(errs...)
}

// firstSet returns the first value that is not "".
func firstSet(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

// configDir is --config-dir (or LANGFLOW_CONFIG_DIR, else the user cache
// dir + /keyflow), made absolute.
func configDir(flagValue string) (string, error) {
	dir := flagValue
	if dir == "" {
		d, err := secrets.DefaultConfigDir(os.Getenv)
		if err != nil {
			return "", fmt.Errorf("config dir: %w (set --config-dir or LANGFLOW_CONFIG_DIR)", err)
		}
		dir = d
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("config dir: %w", err)
	}
	return abs, nil
}

// listenAddress reads the host and port: LANGFLOW_HOST and LANGFLOW_PORT,
// unless the flags were given.
func listenAddress(cfg *Config, host *string, port *int) error {
	var errs []error
	cfg.Host = getenv("LANGFLOW_HOST")
	if host != nil {
		cfg.Host = *host
	}
	var err error
	if cfg.Port, err = strconv.Atoi(getenv("LANGFLOW_PORT")); err != nil || cfg.Port < 0 || cfg.Port > 65535 {
		errs = append(errs, fmt.Errorf("LANGFLOW_PORT must be a port number, got %q", getenv("LANGFLOW_PORT")))
	}
	if port != nil {
		if *port < 0 || *port > 65535 {
			errs = append(errs, fmt.Errorf("--port must be 0…65535, got %d", *port))
		}
		cfg.Port = *port
	}
	return errors.Join(errs...)
}

// changeMaxLag reads --change-max-lag (or KEYFLOW_CHANGE_MAX_LAG): 0, or a
// duration of at least 50ms; "" is the library's default.
func changeMaxLag(v string) (time.Duration, error) {
	if v == "" {
		return apikey.DefaultChangesMaxLag, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 && (d == 0 || d >= 50*time.Millisecond) {
		return d, nil
	}
	return apikey.DefaultChangesMaxLag, fmt.Errorf("change max lag must be 0 or a duration of at least 50ms, got %q", v)
}

// switches reads the boolean settings; unset, each is the server's default
// (serverDefaults), else false.
func switches(cfg *Config) error {
	var errs []error
	for _, b := range []struct {
		name string
		dst  *bool
	}{
		{"LANGFLOW_DISABLE_TRACK_APIKEY_USAGE", &cfg.DisableUsageTracking},
		{"LANGFLOW_FALLBACK_TO_ENV_VAR", &cfg.FallbackToEnv},
		{"LANGFLOW_STORE_ENVIRONMENT_VARIABLES", &cfg.StoreEnvVariables},
	} {
		var err error
		if *b.dst, err = envbool.Lookup(lookupEnv, b.name, false); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ParseLevel accepts slog's level names and Langflow's (warning, and
// critical, which logs errors only: keyflow has no level above error).
func ParseLevel(v string) (slog.Level, error) {
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

// ParseSchema reads --schema (or KEYFLOW_SCHEMA).
func ParseSchema(flagValue, envValue string) (string, error) {
	v := flagValue
	if v == "" {
		v = envValue
	}
	switch v = strings.ToLower(strings.TrimSpace(v)); v {
	case "", "keyflow", "langflow":
		return v, nil
	}
	return "", fmt.Errorf("--schema must be langflow or keyflow, got %q", v)
}

// The limiters of KEYFLOW_LIMITER besides redis:// URLs.
const (
	LimiterMemory   = "memory"   // in process: exact for one instance
	LimiterDatabase = "database" // the key database's rate table: shared by the instances on it
)

// ParseLimiter reads --limiter (or KEYFLOW_LIMITER): "memory", "database",
// or a Redis URL (redis://[user:password@]host:port[/db], or rediss:// for
// TLS); "" is the default: "database" on PostgreSQL, "memory" on SQLite.
func ParseLimiter(v string) (string, error) {
	switch {
	case v == "", v == LimiterMemory, v == LimiterDatabase:
		return v, nil
	case strings.HasPrefix(v, "redis://"), strings.HasPrefix(v, "rediss://"):
		return v, nil
	}
	return "", fmt.Errorf("limiter must be memory, database or a redis:// URL, got %q", v)
}
