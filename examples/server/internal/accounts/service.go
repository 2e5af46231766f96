package accounts

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/keyflow-dev/keyflow/examples/server/internal/config"
	"github.com/keyflow-dev/keyflow/langflowdb"
)

// ImportEnvFunc copies the environment's provider keys into a user's
// Credential variables (package keyvars): what Langflow does for a new user
// and at every login.
type ImportEnvFunc func(ctx context.Context, userID, username string) error

// Service is the users as the rest of the server sees them: on keyflow's
// tables, or mirrored from a Langflow database. It is safe for concurrent
// use.
type Service struct {
	Store     *Store
	ImportEnv ImportEnvFunc
	langflow  *langflowdb.DB // nil: keyflow's own users
	cfg       config.Config
	log       *slog.Logger
}

// NewService returns the users of store; langflow is the Langflow database
// whose users store mirrors, or nil.
func NewService(store *Store, langflow *langflowdb.DB, importEnv ImportEnvFunc, cfg config.Config, log *slog.Logger) *Service {
	return &Service{Store: store, ImportEnv: importEnv, langflow: langflow, cfg: cfg, log: log}
}

// OnLangflow reports whether the users are Langflow's.
func (s *Service) OnLangflow() bool { return s.langflow != nil }

// Ensure returns the named user, creating it when missing; a new user gets
// the environment's variables imported at once. On a Langflow database the
// user must exist in Langflow.
func (s *Service) Ensure(ctx context.Context, username string, superuser bool) (User, error) {
	if s.langflow != nil {
		return s.langflowUser(ctx, username) // Langflow owns its users
	}
	u, created, err := s.Store.Ensure(ctx, username, superuser)
	if err != nil {
		return User{}, err
	}
	if created {
		s.log.Info("created user", "username", u.Username, "superuser", u.IsSuperuser)
		if err := s.ImportEnv(ctx, u.ID, u.Username); err != nil {
			return User{}, err
		}
	}
	return u, nil
}

// Superuser returns the superuser the server acts as under auto-login and
// for LANGFLOW_API_KEY: on a Langflow database, Langflow's (after mirroring
// every Langflow user); else the configured one, made sure of as Langflow's
// setup_superuser does at start-up: created when missing (with
// LANGFLOW_SUPERUSER_PASSWORD, if any), its password set from it when it has
// none yet. A user of that name that is not a superuser is an error, as in
// Langflow. Unlike Langflow, keyflow never deletes the default superuser
// "langflow" when auto-login is off: it may own keys and variables.
func (s *Service) Superuser(ctx context.Context) (User, error) {
	if s.langflow != nil {
		return s.mirrorLangflowUsers(ctx)
	}
	name := s.cfg.Superuser
	if name == "" {
		name = config.SuperuserName
	}
	u, err := s.Ensure(ctx, name, true)
	if err != nil {
		return User{}, err
	}
	if !u.IsSuperuser && !s.cfg.SuperuserCommand {
		return User{}, fmt.Errorf("LANGFLOW_SUPERUSER %q names a user that is not a superuser: make it one with the superuser subcommand, or choose another name", name)
	}
	if s.cfg.SuperuserPassword == "" || u.PasswordHash != "" {
		return u, nil
	}
	return u, s.setSuperuserPassword(ctx, u)
}

// setSuperuserPassword sets LANGFLOW_SUPERUSER_PASSWORD as u's password
// unless it has one (a concurrent start-up may have set it).
func (s *Service) setSuperuserPassword(ctx context.Context, u User) error {
	h, err := HashPassword(s.cfg.SuperuserPassword)
	if err != nil {
		return fmt.Errorf("LANGFLOW_SUPERUSER_PASSWORD: %w", err)
	}
	if set, err := s.Store.SetPasswordIfNone(ctx, u.ID, h); err != nil {
		return err
	} else if set {
		s.log.Info("set the superuser's password from LANGFLOW_SUPERUSER_PASSWORD", "username", u.Username)
	}
	return nil
}

// WarnIfNoLogin logs a warning when auto-login is off and the superuser
// has no password yet: nobody can log in to the web UI until one is set.
func (s *Service) WarnIfNoLogin(ctx context.Context, superuserID string) {
	if s.cfg.Auth.AutoLogin {
		return
	}
	u, err := s.Store.ByID(ctx, superuserID)
	if err == nil && u.PasswordHash == "" {
		s.log.Warn("LANGFLOW_AUTO_LOGIN is off and the superuser has no password: set LANGFLOW_SUPERUSER_PASSWORD, or run the superuser subcommand, to log in", "username", u.Username)
	}
}
