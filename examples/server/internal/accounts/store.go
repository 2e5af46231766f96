// Package accounts is the reference server's users: the users table,
// passwords (bcrypt), the superuser Langflow's start-up makes, the users'
// HTTP API (/api/v1/users/…), and, on a Langflow database, the mirror of
// Langflow's own users. Who the users are belongs to the host application,
// not to keyflow: this is what a host would write itself.
//
// Users and passwords work as Langflow has them with
// LANGFLOW_AUTO_LOGIN=false (docs/langflow-compatibility.md#login-and-users):
//
//   - the superuser is LANGFLOW_SUPERUSER (default "langflow"); with
//     auto-login on it is always "langflow", as Langflow forces it;
//   - LANGFLOW_SUPERUSER_PASSWORD sets its password when the superuser is
//     created (or has none yet); an existing password is never overwritten
//     (the `superuser` subcommand resets it);
//   - passwords are stored as bcrypt hashes (golang.org/x/crypto/bcrypt);
//   - POST /api/v1/users/ (a superuser only) creates users, active or not
//     after LANGFLOW_NEW_USER_IS_ACTIVE (default false, as in Langflow).
package accounts

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/keyflow-dev/keyflow/examples/internal/ids"
	"github.com/keyflow-dev/keyflow/examples/server/internal/sqldb"
	"github.com/keyflow-dev/keyflow/names"
)

// User is one user of the server.
type User struct {
	ID           string
	Username     string
	IsSuperuser  bool
	CreatedAt    time.Time
	PasswordHash string // "" when the user cannot log in with a password
	IsActive     bool
	LastLoginAt  *time.Time
	UpdatedAt    *time.Time
}

var (
	// ErrNotFound: no user has that ID or name.
	ErrNotFound = errors.New("user not found")
	// ErrUsernameTaken: another user has that name.
	ErrUsernameTaken = errors.New("username taken")
	// ErrBadUsername refuses a username that package names refuses
	// (control, invisible or bidi characters, over 255 bytes) or an empty
	// one, wherever a user is created: the API, the superuser and api-key
	// commands.
	ErrBadUsername = errors.New("a username must be non-empty valid UTF-8 without control or invisible characters, at most 255 bytes")
)

// CheckUsername returns ErrBadUsername for a username no user may have.
func CheckUsername(username string) error {
	if strings.TrimSpace(username) == "" || names.Check(username) != nil {
		return ErrBadUsername
	}
	return nil
}

// Store keeps users in the users table. It is safe for concurrent use.
type Store struct {
	db sqldb.DB
	// changes counts this process's changes to users (Update, Mirror), so
	// that caches of who is active forget at once.
	changes atomic.Uint64
}

// OpenStore creates the users table (and the columns login added later)
// when they are missing. Run it under the start-up lock.
func OpenStore(ctx context.Context, db sqldb.DB) (*Store, error) {
	ts, id := db.Types()
	if err := db.Exec(ctx, `CREATE TABLE IF NOT EXISTS users (
			id `+id+` PRIMARY KEY,
			username TEXT NOT NULL UNIQUE,
			is_superuser BOOLEAN NOT NULL DEFAULT FALSE,
			created_at `+ts+` NOT NULL)`); err != nil {
		return nil, err
	}
	for _, c := range []struct{ column, def string }{
		{"password", "TEXT"},
		{"is_active", "BOOLEAN NOT NULL DEFAULT TRUE"},
		{"last_login_at", ts},
		{"updated_at", ts},
	} {
		if err := db.AddColumn(ctx, "users", c.column, c.def); err != nil {
			return nil, err
		}
	}
	return &Store{db: db}, nil
}

// Changes is the number of changes to users this process has made; a cache
// of users is stale when it has moved.
func (s *Store) Changes() uint64 { return s.changes.Load() }

const userColumns = `id, username, is_superuser, created_at, password, is_active, last_login_at, updated_at`

func scanUser(row interface{ Scan(...any) error }) (User, error) {
	var u User
	var pw sql.NullString
	var last, upd sql.NullTime
	if err := row.Scan(&u.ID, &u.Username, &u.IsSuperuser, &u.CreatedAt, &pw, &u.IsActive, &last, &upd); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return User{}, ErrNotFound
		}
		return User{}, fmt.Errorf("read user: %w", err)
	}
	u.PasswordHash = pw.String
	if last.Valid {
		u.LastLoginAt = &last.Time
	}
	if upd.Valid {
		u.UpdatedAt = &upd.Time
	}
	return u, nil
}

// ByName returns the user named username, or ErrNotFound.
func (s *Store) ByName(ctx context.Context, username string) (User, error) {
	return scanUser(s.db.QueryRowContext(ctx, s.db.Q(`SELECT `+userColumns+` FROM users WHERE username = ?`), username))
}

// ByID returns the user with that id, or ErrNotFound.
func (s *Store) ByID(ctx context.Context, id string) (User, error) {
	return scanUser(s.db.QueryRowContext(ctx, s.db.Q(`SELECT `+userColumns+` FROM users WHERE id = ?`), id))
}

// All lists every user, oldest first.
func (s *Store) All(ctx context.Context) ([]User, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+userColumns+` FROM users ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	out := []User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// Ensure returns the user named username, creating it when missing
// (concurrently safe: the CLI and a running server may both try). created
// reports whether this call created it.
func (s *Store) Ensure(ctx context.Context, username string, superuser bool) (u User, created bool, err error) {
	if err := CheckUsername(username); err != nil {
		// No new user may have that name; one that has it already (imported
		// from Langflow) is still found.
		if u, err := s.ByName(ctx, username); err == nil {
			return u, false, nil
		}
		return User{}, false, err
	}
	res, err := s.db.ExecContext(ctx, s.db.Q(`INSERT INTO users (id, username, is_superuser, created_at)
		VALUES (?, ?, ?, ?) ON CONFLICT (username) DO NOTHING`),
		ids.New(), username, superuser, time.Now().UTC())
	if err != nil {
		return User{}, false, fmt.Errorf("create user: %w", err)
	}
	n, _ := res.RowsAffected()
	if u, err = s.ByName(ctx, username); err != nil {
		return User{}, false, fmt.Errorf("read user: %w", err)
	}
	return u, n == 1, nil
}

// Create inserts a new user; ErrUsernameTaken if the name is in use,
// ErrBadUsername if no user may have it.
func (s *Store) Create(ctx context.Context, username, passwordHash string, superuser, active bool) (User, error) {
	if err := CheckUsername(username); err != nil {
		return User{}, err
	}
	now := time.Now().UTC()
	u := User{ID: ids.New(), Username: username, IsSuperuser: superuser, CreatedAt: now,
		PasswordHash: passwordHash, IsActive: active, UpdatedAt: &now}
	res, err := s.db.ExecContext(ctx, s.db.Q(`INSERT INTO users (id, username, is_superuser, created_at, password, is_active, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (username) DO NOTHING`),
		u.ID, username, superuser, now, passwordHash, active, now)
	if err != nil {
		return User{}, fmt.Errorf("create user: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return User{}, ErrUsernameTaken
	}
	return u, nil
}

// SetPassword replaces a user's password hash (and may make it a superuser
// and active, for the `superuser` subcommand).
func (s *Store) SetPassword(ctx context.Context, id, passwordHash string, makeSuperuser bool) error {
	q := `UPDATE users SET password = ?, updated_at = ? WHERE id = ?`
	if makeSuperuser {
		q = `UPDATE users SET password = ?, updated_at = ?, is_superuser = TRUE, is_active = TRUE WHERE id = ?`
	}
	if _, err := s.db.ExecContext(ctx, s.db.Q(q), passwordHash, time.Now().UTC(), id); err != nil {
		return fmt.Errorf("set password: %w", err)
	}
	return nil
}

// SetPasswordIfNone sets a password only where the user has none, and
// reports whether it did (so that concurrent start-ups set it once).
func (s *Store) SetPasswordIfNone(ctx context.Context, id, passwordHash string) (bool, error) {
	res, err := s.db.ExecContext(ctx, s.db.Q(`UPDATE users SET password = ?, updated_at = ? WHERE id = ? AND (password IS NULL OR password = '')`),
		passwordHash, time.Now().UTC(), id)
	if err != nil {
		return false, fmt.Errorf("set password: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// Changes to a user, each applied when non-nil.
type Changes struct {
	Username     *string
	IsActive     *bool
	IsSuperuser  *bool
	PasswordHash *string
}

// Update applies a superuser's PATCH; ErrUsernameTaken when another user
// has that username, ErrNotFound when there is no such user.
func (s *Store) Update(ctx context.Context, id string, c Changes) error {
	defer s.changes.Add(1)
	sets, args := []string{"updated_at = ?"}, []any{time.Now().UTC()}
	if c.Username != nil {
		other, err := s.ByName(ctx, *c.Username)
		switch {
		case err == nil && !strings.EqualFold(other.ID, id):
			return ErrUsernameTaken
		case err != nil && !errors.Is(err, ErrNotFound):
			return err
		}
		sets, args = append(sets, "username = ?"), append(args, *c.Username)
	}
	if c.IsActive != nil {
		sets, args = append(sets, "is_active = ?"), append(args, *c.IsActive)
	}
	if c.IsSuperuser != nil {
		sets, args = append(sets, "is_superuser = ?"), append(args, *c.IsSuperuser)
	}
	if c.PasswordHash != nil {
		sets, args = append(sets, "password = ?"), append(args, *c.PasswordHash)
	}
	args = append(args, id)
	res, err := s.db.ExecContext(ctx, s.db.Q(`UPDATE users SET `+strings.Join(sets, ", ")+` WHERE id = ?`), args...)
	if err != nil {
		return fmt.Errorf("update user: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// TouchLastLogin records a successful login.
func (s *Store) TouchLastLogin(ctx context.Context, id string) error {
	_, err := s.db.ExecContext(ctx, s.db.Q(`UPDATE users SET last_login_at = ? WHERE id = ?`), time.Now().UTC(), id)
	if err != nil {
		return fmt.Errorf("record login: %w", err)
	}
	return nil
}
