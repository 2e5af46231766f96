package accounts

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/keyflow-dev/keyflow/examples/server/internal/config"
	"github.com/keyflow-dev/keyflow/examples/server/internal/sqldb"
	"github.com/keyflow-dev/keyflow/langflowdb"
)

// On a Langflow database users are Langflow's: the server mirrors them, with
// their IDs (which Langflow's keys and variables reference), their bcrypt
// password hashes (so that they log in with their Langflow passwords) and
// is_active, into its own users table, and never creates one
// (docs/langflow-compatibility.md#langflow-database).

// MsgUsersInLangflow answers user creation and changes on a Langflow
// database, whose users are Langflow's.
const MsgUsersInLangflow = "Users are managed in Langflow on a Langflow database: this server reads them from there"

// Import writes a Langflow user with its ID and bcrypt password hash (the
// user then logs in to keyflow with the Langflow password) unless keyflow
// has a user of that name, and returns the keyflow user's ID and whether it
// was created.
func (s *Store) Import(ctx context.Context, u langflowdb.User) (string, bool, error) {
	now := time.Now().UTC()
	res, err := s.db.ExecContext(ctx, s.db.Q(`INSERT INTO users (id, username, is_superuser, created_at, password, is_active, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`),
		u.ID, u.Username, u.IsSuperuser, u.CreatedAt.UTC(), sqldb.NullString(u.PasswordHash), true, now)
	if err != nil {
		return "", false, fmt.Errorf("import user %s: %w", u.Username, err)
	}
	n, _ := res.RowsAffected()
	var id string
	err = s.db.QueryRowContext(ctx, s.db.Q(`SELECT id FROM users WHERE username = ?`), u.Username).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, fmt.Errorf("import user %s: its Langflow ID is another keyflow user's", u.Username)
	}
	if err != nil {
		return "", false, fmt.Errorf("import user %s: %w", u.Username, err)
	}
	return id, n == 1, nil
}

// Mirror writes Langflow's user u with its own ID, password hash and
// is_active; a stale row of the same name (a Langflow user deleted and made
// again) goes first.
func (s *Store) Mirror(ctx context.Context, u langflowdb.User) error {
	defer s.changes.Add(1)
	if _, err := s.db.ExecContext(ctx, s.db.Q(`DELETE FROM users WHERE username = ? AND id <> ?`), u.Username, u.ID); err != nil {
		return fmt.Errorf("mirror user: %w", err)
	}
	_, err := s.db.ExecContext(ctx, s.db.Q(`INSERT INTO users (id, username, is_superuser, created_at, password, is_active) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET username = excluded.username, is_superuser = excluded.is_superuser,
		password = excluded.password, is_active = excluded.is_active`),
		u.ID, u.Username, u.IsSuperuser, u.CreatedAt.UTC(), sqldb.NullString(u.PasswordHash), u.IsActive)
	if err != nil {
		return fmt.Errorf("mirror user: %w", err)
	}
	return nil
}

// disable keeps a user Langflow no longer has (its flows and tokens refer
// to it) but so that it cannot log in.
func (s *Store) disable(ctx context.Context, username string) error {
	_, err := s.db.ExecContext(ctx, s.db.Q(`UPDATE users SET password = NULL, is_active = FALSE WHERE username = ?`), username)
	if err != nil {
		return fmt.Errorf("mirror user: %w", err)
	}
	return nil
}

func fromLangflow(lu langflowdb.User) User {
	return User{ID: lu.ID, Username: lu.Username, IsSuperuser: lu.IsSuperuser, CreatedAt: lu.CreatedAt, PasswordHash: lu.PasswordHash, IsActive: lu.IsActive}
}

// mirrorLangflowUsers copies Langflow's users into the users table and
// returns the superuser: LANGFLOW_SUPERUSER ("langflow" by default) when
// Langflow has it as an active superuser, else Langflow's first active
// superuser.
func (s *Service) mirrorLangflowUsers(ctx context.Context) (User, error) {
	users, err := s.langflow.Users(ctx)
	if err != nil {
		return User{}, err
	}
	want := s.cfg.Superuser
	if want == "" {
		want = config.SuperuserName
	}
	var super *User
	for _, lu := range users {
		u := fromLangflow(lu)
		if err := s.Store.Mirror(ctx, lu); err != nil {
			return User{}, err
		}
		if lu.IsSuperuser && lu.IsActive && (super == nil || lu.Username == want) {
			super = &u
		}
	}
	if super == nil {
		return User{}, errors.New("the Langflow database has no active superuser: start Langflow once (it creates one) or run `langflow superuser`")
	}
	return *super, nil
}

// langflowUser is Ensure on a Langflow database: the user must exist in
// Langflow (the server does not create Langflow users).
func (s *Service) langflowUser(ctx context.Context, username string) (User, error) {
	lu, err := s.langflow.UserByName(ctx, username)
	if errors.Is(err, langflowdb.ErrUserNotFound) {
		return User{}, fmt.Errorf("no Langflow user named %q: create it in Langflow first", username)
	}
	if err != nil {
		return User{}, err
	}
	return fromLangflow(lu), s.Store.Mirror(ctx, lu)
}

// Refresh reads the user named username from Langflow's table again and
// updates its mirror, so that a password changed, a user deactivated or
// deleted in Langflow counts here at once, not at the next start. A user
// Langflow no longer has is kept (its flows and tokens refer to it) but can
// no longer log in. It does nothing when the server does not serve a
// Langflow database.
func (s *Service) Refresh(ctx context.Context, username string) error {
	if s.langflow == nil {
		return nil
	}
	lu, err := s.langflow.UserByName(ctx, username)
	if errors.Is(err, langflowdb.ErrUserNotFound) {
		return s.Store.disable(ctx, username)
	}
	if err != nil {
		return err
	}
	return s.Store.Mirror(ctx, lu)
}

// Fresh is Store.ByID, read again from Langflow's table first when the
// server serves a Langflow database.
func (s *Service) Fresh(ctx context.Context, id string) (User, error) {
	u, err := s.Store.ByID(ctx, id)
	if err != nil || s.langflow == nil {
		return u, err
	}
	if err := s.Refresh(ctx, u.Username); err != nil {
		return User{}, err
	}
	return s.Store.ByID(ctx, id)
}
