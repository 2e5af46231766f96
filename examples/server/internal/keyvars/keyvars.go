// Package keyvars wires keyflow itself into the reference server: the
// API-key store and Manager, the variable store, Service and Resolver, on
// keyflow's own tables (with the change feed, pushed by PostgreSQL's
// LISTEN/NOTIFY) or on a Langflow database's tables (package langflowdb);
// with LANGFLOW_VARIABLE_STORE=kubernetes the variables are kept in
// Kubernetes Secrets instead (package kubestore).
// Everything else in the server reaches keyflow through it.
package keyvars

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/keyflow-dev/keyflow/apikey"
	keysql "github.com/keyflow-dev/keyflow/apikey/sqlstore"
	"github.com/keyflow-dev/keyflow/apikey/sqlstore/pgnotify"
	"github.com/keyflow-dev/keyflow/audit"
	"github.com/keyflow-dev/keyflow/examples/server/internal/auditing"
	"github.com/keyflow-dev/keyflow/examples/server/internal/config"
	"github.com/keyflow-dev/keyflow/examples/server/internal/sqldb"
	"github.com/keyflow-dev/keyflow/langflowdb"
	"github.com/keyflow-dev/keyflow/secrets"
	"github.com/keyflow-dev/keyflow/variables"
	varsql "github.com/keyflow-dev/keyflow/variables/sqlstore"
)

// Services are keyflow's services on one database. Close them.
type Services struct {
	KeyStore apikey.Store
	Keys     *apikey.Manager
	VarStore variables.Store
	Vars     *variables.Service
	Resolver *variables.Resolver

	// Auditor records the variables the environment import creates or
	// refreshes (set by package startup); nil: none.
	Auditor *auditing.Auditor

	notify *pgnotify.Listener // nil: not PostgreSQL, or no change feed
	// notifyVars pushes the variable store's changes (PostgreSQL with the
	// change feed); nil otherwise.
	notifyVars *pgnotify.Listener
	closeLim   func() // releases the rate limiter's connections; nil: none
	storeEnv   bool   // LANGFLOW_STORE_ENVIRONMENT_VARIABLES
	log        *slog.Logger
}

// Open builds the services on keyflow's own tables in db (at addr),
// creating them when missing: run it under the start-up lock. The Manager
// follows the change feed when cfg.ChangeMaxLag > 0.
func Open(ctx context.Context, db *sql.DB, addr sqldb.Address, keyring *secrets.Keyring, cfg config.Config, log *slog.Logger) (*Services, error) {
	keyStore, err := keysql.New(ctx, db, keysql.Config{Dialect: addr.Dialect()})
	if err != nil {
		return nil, fmt.Errorf("api key store: %w", err)
	}
	var varStore variables.Store
	if cfg.VariableStore == config.VariableStoreKubernetes {
		varStore, err = kubernetesVariables(cfg, keyring, log)
	} else {
		varStore, err = varsql.New(ctx, db, varsql.Config{Dialect: addr.Dialect()})
	}
	if err != nil {
		return nil, fmt.Errorf("variable store: %w", err)
	}
	s := &Services{KeyStore: keyStore, VarStore: varStore, storeEnv: cfg.StoreEnvVariables, log: log}
	keyCfg := apikey.Config{Store: keyStore, DisableUsageTracking: cfg.DisableUsageTracking, Logger: log, Hooks: cfg.Hooks}
	if keyCfg.Limiter, s.closeLim, err = newLimiter(cfg, addr, keyStore); err != nil {
		return nil, err
	}
	if cfg.ChangeMaxLag > 0 {
		if err := s.followChanges(&keyCfg, keyStore, addr, cfg.ChangeMaxLag); err != nil {
			return nil, err
		}
	}
	if s.Keys, err = apikey.NewManager(keyCfg); err != nil {
		s.Close()
		return nil, err
	}
	varCfg := variables.ServiceConfig{Hooks: cfg.Hooks}
	// Kubernetes Secrets have no change log here: every run reads them.
	if sqlVars, ok := varStore.(*varsql.Store); ok && cfg.ChangeMaxLag > 0 {
		if err := s.followVariables(&varCfg, sqlVars, addr, cfg.ChangeMaxLag); err != nil {
			s.Close()
			return nil, err
		}
	}
	if err := s.openVariables(varCfg, varStore, keyring, cfg.FallbackToEnv); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// followVariables caches each user's variables for the run API, kept right
// by the variable store's change log as keys are by theirs: a variable
// changed through this instance is seen at once, one changed by another
// instance (or the CLI, or SQL) within maxLag, in milliseconds on
// PostgreSQL, whose trigger notifies on a channel of its own.
func (s *Services) followVariables(varCfg *variables.ServiceConfig, varStore *varsql.Store, addr sqldb.Address, maxLag time.Duration) error {
	varCfg.Changes, varCfg.ChangesMaxLag = varStore, maxLag
	if !addr.Postgres {
		return nil
	}
	channel, payload := varStore.Notification()
	var err error
	s.notifyVars, err = pgnotify.New(pgnotify.Config{ConnString: addr.DSN, Channel: channel, Payload: payload, Logger: s.log})
	if err != nil {
		return err
	}
	varCfg.ChangesNotifier = s.notifyVars
	return nil
}

// followChanges makes keys revoked, disabled or created by other instances
// on this database seen within maxLag (the change log that keysql's
// triggers write); on PostgreSQL they are pushed too (LISTEN/NOTIFY, on a
// connection of its own): seen in milliseconds.
func (s *Services) followChanges(keyCfg *apikey.Config, keyStore *keysql.Store, addr sqldb.Address, maxLag time.Duration) error {
	keyCfg.Changes, keyCfg.ChangesMaxLag = keyStore, maxLag
	if !addr.Postgres {
		return nil
	}
	channel, payload := keyStore.Notification()
	var err error
	s.notify, err = pgnotify.New(pgnotify.Config{ConnString: addr.DSN, Channel: channel, Payload: payload, Logger: s.log})
	if err != nil {
		return err
	}
	keyCfg.ChangesNotifier = s.notify
	return nil
}

// OpenLangflow builds the services on a Langflow database's own apikey and
// variable tables, so that this server and a running Langflow that share
// LANGFLOW_SECRET_KEY accept the same keys and read the same variables.
func OpenLangflow(ldb *langflowdb.DB, cfg config.Config, log *slog.Logger) (*Services, error) {
	var vs variables.Store
	var err error
	if cfg.VariableStore == config.VariableStoreKubernetes {
		// As a Langflow with the same setting: variables in Secrets, keys
		// in its database.
		vs, err = kubernetesVariables(cfg, ldb.Keyring(), log)
	} else {
		vs, err = ldb.Variables()
	}
	if err != nil {
		return nil, err
	}
	keys := ldb.Keys()
	s := &Services{KeyStore: keys, VarStore: noRotation{vs}, storeEnv: cfg.StoreEnvVariables, log: log}
	// No change feed: Langflow's tables have no change log. The store's
	// CacheBound keeps cached verdicts short (900 ms), which bounds how late a
	// key deleted or deactivated in Langflow is refused.
	if s.Keys, err = apikey.NewManager(apikey.Config{Store: keys, DisableUsageTracking: cfg.DisableUsageTracking, Logger: log, Hooks: cfg.Hooks}); err != nil {
		return nil, err
	}
	// ldb.Keyring encrypts as the Langflow beside it does (a short secret:
	// the key derivation of its version), so Langflow opens what keyflow writes.
	// Nor for variables: every run reads Langflow's variable table.
	if err := s.openVariables(variables.ServiceConfig{Hooks: cfg.Hooks}, vs, ldb.Keyring(), cfg.FallbackToEnv); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// openVariables builds the variable Service (with varCfg's change feed, if
// any) and the Resolver on store.
func (s *Services) openVariables(varCfg variables.ServiceConfig, store variables.Store, keyring *secrets.Keyring, fallbackToEnv bool) error {
	varCfg.Store, varCfg.Keyring, varCfg.Logger = store, keyring, s.log
	var err error
	if s.Vars, err = variables.NewService(varCfg); err != nil {
		return err
	}
	fallback := variables.EnvFallbackOff
	if fallbackToEnv {
		fallback = variables.EnvFallbackOn
	}
	s.Resolver, err = variables.NewResolver(variables.ResolverConfig{Service: s.Vars, EnvFallback: fallback})
	return err
}

// ImportEnv copies the provider keys found in the environment (and .env)
// into the user's Credential variables, unless
// LANGFLOW_STORE_ENVIRONMENT_VARIABLES=false.
func (s *Services) ImportEnv(ctx context.Context, userID, username string) error {
	if !s.storeEnv {
		return nil
	}
	rep, err := s.Vars.ImportEnv(ctx, userID, variables.EnvImportOptions{})
	if err != nil {
		return fmt.Errorf("import environment variables for %s: %w", username, err)
	}
	s.log.Debug("imported environment variables", "username", username, "report", fmt.Sprintf("%+v", rep))
	return s.auditImport(ctx, userID, rep)
}

// auditImport records the variables an environment import created or
// refreshed (by name and type; the values come from the environment). The
// import is made first, as it runs at start and at every login; a failure
// to record is returned, and logged by the caller.
func (s *Services) auditImport(ctx context.Context, userID string, rep variables.EnvImportReport) error {
	if s.Auditor == nil {
		return nil
	}
	var errs []error
	for _, list := range []struct {
		action audit.Action
		names  []string
	}{{audit.VariableCreated, rep.Created}, {audit.VariableUpdated, rep.Updated}} {
		for _, name := range list.names {
			target, details := auditing.VariableTarget(variables.Variable{Name: name, Type: variables.Credential, UserID: userID})
			details["source"] = "environment"
			errs = append(errs, s.Auditor.RecordContext(ctx, audit.Event{Action: list.action,
				Actor: audit.Actor{Session: "env-import"}, Target: target, Details: details}))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("audit the environment import: %w", err)
	}
	return nil
}

// Close stops the Manager (which writes pending usage counts), the
// variables' change-feed poller and the change listeners.
func (s *Services) Close() error {
	var err error
	if s.Keys != nil {
		err = s.Keys.Close()
	}
	if s.Vars != nil {
		_ = s.Vars.Close()
	}
	for _, l := range []*pgnotify.Listener{s.notify, s.notifyVars} {
		if l != nil {
			_ = l.Close()
		}
	}
	if s.closeLim != nil {
		s.closeLim()
	}
	return err
}

// ErrRotateLangflow: rotate-secret on a Langflow database would lock
// Langflow out of its own Credential variables and key tokens.
var ErrRotateLangflow = errors.New("rotate-secret does not run on a Langflow database: Langflow reads its variables and key tokens with its own LANGFLOW_SECRET_KEY, which this command cannot change")

// noRotation is the variable store as rotate-secret sees it on a Langflow
// database: it refuses to list ciphertexts.
type noRotation struct{ variables.Store }

func (noRotation) ListCiphertexts(context.Context, string, int) ([]secrets.Ciphertext, error) {
	return nil, ErrRotateLangflow
}
