package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/keyflow-dev/keyflow/envbool"
	"github.com/keyflow-dev/keyflow/examples/internal/ids"
	"github.com/keyflow-dev/keyflow/httpjson"
	"github.com/keyflow-dev/keyflow/middleware"
	"github.com/keyflow-dev/keyflow/names"
	"github.com/keyflow-dev/keyflow/variables"
)

// Users and passwords, as Langflow has them with LANGFLOW_AUTO_LOGIN=false
// (docs/langflow-compatibility.md#login-and-users):
//
//   - the superuser is LANGFLOW_SUPERUSER (default "langflow"); with
//     auto-login on it is always "langflow", as Langflow forces it;
//   - LANGFLOW_SUPERUSER_PASSWORD sets its password when the superuser is
//     created (or has none yet); an existing password is never overwritten
//     (the `superuser` subcommand resets it);
//   - passwords are stored as bcrypt hashes (golang.org/x/crypto/bcrypt);
//   - POST /api/v1/users/ (a superuser only) creates users, active or not
//     after LANGFLOW_NEW_USER_IS_ACTIVE (default false, as in Langflow).

// legacyDefaultPassword is the password Langflow ≤ 1.10 gave its default
// superuser. Langflow 1.11 refuses it with auto-login off, and so do we.
const legacyDefaultPassword = "langflow"

// bcryptCost is the bcrypt work factor: passlib's default (Langflow's). A
// variable so that tests hash quickly.
var bcryptCost = 12

// maxPasswordBytes is bcrypt's input limit; longer passwords are refused
// when set (bcrypt would otherwise ignore the rest).
const maxPasswordBytes = 72

// compareHash checks a password against a bcrypt hash. A variable so that a
// test can see that an unknown user costs one comparison too.
var compareHash = bcrypt.CompareHashAndPassword

// hashPassword returns the bcrypt hash of password.
func hashPassword(password string) (string, error) {
	if len(password) > maxPasswordBytes {
		return "", errPasswordTooLong
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcryptCost)
	if err != nil {
		return "", err
	}
	return string(h), nil
}

var errPasswordTooLong = fmt.Errorf("a password must be at most %d bytes", maxPasswordBytes)

// dummyHash is compared against when the user is unknown or has no
// password, so that such a login costs one bcrypt comparison like any other.
var dummyHash = sync.OnceValue(func() []byte {
	h, err := bcrypt.GenerateFromPassword([]byte(ids.New()), bcryptCost)
	if err != nil { // only for a cost out of range, which bcryptCost is not
		panic(err)
	}
	return h
})

// account is a user with what login needs.
type account struct {
	user
	PasswordHash string // "" when the user cannot log in with a password
	IsActive     bool
	LastLoginAt  *time.Time
	UpdatedAt    *time.Time
}

var (
	errUserNotFound  = errors.New("user not found")
	errUsernameTaken = errors.New("username taken")
)

// migrateUsers adds what login needs to the users table (a password hash,
// is_active, last_login_at, updated_at), the flows' endpoint_name and the
// login tokens' table. It is idempotent; run it under the start-up lock.
func (s *store) migrateUsers(ctx context.Context) error {
	ts, id := "TIMESTAMP", "TEXT"
	if s.postgres {
		ts, id = "TIMESTAMPTZ", "VARCHAR(36)"
	}
	for _, c := range []struct{ table, column, def string }{
		{"users", "password", "TEXT"},
		{"users", "is_active", "BOOLEAN NOT NULL DEFAULT TRUE"},
		{"users", "last_login_at", ts},
		{"users", "updated_at", ts},
		{"flows", "endpoint_name", "TEXT"},
	} {
		if err := s.addColumn(ctx, c.table, c.column, c.def); err != nil {
			return err
		}
	}
	for _, stmt := range []string{
		`CREATE UNIQUE INDEX IF NOT EXISTS flows_user_endpoint_name ON flows(user_id, endpoint_name)`,
		`CREATE TABLE IF NOT EXISTS auth_tokens (
			token_hash VARCHAR(64) PRIMARY KEY,
			user_id ` + id + ` NOT NULL REFERENCES users(id) ON DELETE CASCADE,
			kind VARCHAR(16) NOT NULL,
			expires_at ` + ts + ` NOT NULL,
			created_at ` + ts + ` NOT NULL)`,
		`CREATE INDEX IF NOT EXISTS auth_tokens_expires_at ON auth_tokens(expires_at)`,
	} {
		if _, err := s.db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("create schema: %w", err)
		}
	}
	// The login a token pair came from, so that logout and refresh revoke
	// both tokens of the pair (NULL in rows made before the column).
	if err := s.addColumn(ctx, "auth_tokens", "pair", id); err != nil {
		return err
	}
	if _, err := s.db.ExecContext(ctx, `CREATE INDEX IF NOT EXISTS auth_tokens_pair ON auth_tokens(pair)`); err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	return nil
}

// addColumn adds table.column when it is missing.
func (s *store) addColumn(ctx context.Context, table, column, def string) error {
	if s.postgres {
		_, err := s.db.ExecContext(ctx, `ALTER TABLE `+table+` ADD COLUMN IF NOT EXISTS `+column+` `+def)
		if err != nil {
			return fmt.Errorf("add %s.%s: %w", table, column, err)
		}
		return nil
	}
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM pragma_table_info(?) WHERE name = ?`, table, column).Scan(&n)
	if err != nil {
		return fmt.Errorf("add %s.%s: %w", table, column, err)
	}
	if n > 0 {
		return nil
	}
	if _, err := s.db.ExecContext(ctx, `ALTER TABLE `+table+` ADD COLUMN `+column+` `+def); err != nil {
		return fmt.Errorf("add %s.%s: %w", table, column, err)
	}
	return nil
}

const accountColumns = `id, username, is_superuser, created_at, password, is_active, last_login_at, updated_at`

func scanAccount(row interface{ Scan(...any) error }) (account, error) {
	var a account
	var pw sql.NullString
	var last, upd sql.NullTime
	if err := row.Scan(&a.ID, &a.Username, &a.IsSuperuser, &a.CreatedAt, &pw, &a.IsActive, &last, &upd); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return account{}, errUserNotFound
		}
		return account{}, fmt.Errorf("read user: %w", err)
	}
	a.PasswordHash = pw.String
	if last.Valid {
		a.LastLoginAt = &last.Time
	}
	if upd.Valid {
		a.UpdatedAt = &upd.Time
	}
	return a, nil
}

// accountByName returns the user named username, or errUserNotFound.
func (s *store) accountByName(ctx context.Context, username string) (account, error) {
	return scanAccount(s.db.QueryRowContext(ctx, s.q(`SELECT `+accountColumns+` FROM users WHERE username = ?`), username))
}

// accountByID returns the user with that id, or errUserNotFound.
func (s *store) accountByID(ctx context.Context, id string) (account, error) {
	return scanAccount(s.db.QueryRowContext(ctx, s.q(`SELECT `+accountColumns+` FROM users WHERE id = ?`), id))
}

// accounts lists every user, oldest first.
func (s *store) accounts(ctx context.Context) ([]account, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+accountColumns+` FROM users ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	out := []account{}
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// errBadUsername refuses a username that package names refuses (control,
// invisible or bidi characters, over 255 bytes) or an empty one, wherever a
// user is created: the API, the superuser and api-key commands.
var errBadUsername = errors.New("a username must be non-empty valid UTF-8 without control or invisible characters, at most 255 bytes")

// checkUsername returns errBadUsername for a username no user may have.
func checkUsername(username string) error {
	if strings.TrimSpace(username) == "" || names.Check(username) != nil {
		return errBadUsername
	}
	return nil
}

// createAccount inserts a new user; errUsernameTaken if the name is in use,
// errBadUsername if no user may have it.
func (s *store) createAccount(ctx context.Context, username, passwordHash string, superuser, active bool) (account, error) {
	if err := checkUsername(username); err != nil {
		return account{}, err
	}
	now := time.Now().UTC()
	a := account{user: user{ID: ids.New(), Username: username, IsSuperuser: superuser, CreatedAt: now},
		PasswordHash: passwordHash, IsActive: active, UpdatedAt: &now}
	res, err := s.db.ExecContext(ctx, s.q(`INSERT INTO users (id, username, is_superuser, created_at, password, is_active, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (username) DO NOTHING`),
		a.ID, username, superuser, now, passwordHash, active, now)
	if err != nil {
		return account{}, fmt.Errorf("create user: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return account{}, errUsernameTaken
	}
	return a, nil
}

// setPassword replaces a user's password hash (and may make it a superuser
// and active, for the `superuser` subcommand).
func (s *store) setPassword(ctx context.Context, id, passwordHash string, makeSuperuser bool) error {
	q := `UPDATE users SET password = ?, updated_at = ? WHERE id = ?`
	if makeSuperuser {
		q = `UPDATE users SET password = ?, updated_at = ?, is_superuser = TRUE, is_active = TRUE WHERE id = ?`
	}
	if _, err := s.db.ExecContext(ctx, s.q(q), passwordHash, time.Now().UTC(), id); err != nil {
		return fmt.Errorf("set password: %w", err)
	}
	return nil
}

// setPasswordIfNone sets a password only where the user has none, and
// reports whether it did (so that concurrent start-ups set it once).
func (s *store) setPasswordIfNone(ctx context.Context, id, passwordHash string) (bool, error) {
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE users SET password = ?, updated_at = ? WHERE id = ? AND (password IS NULL OR password = '')`),
		passwordHash, time.Now().UTC(), id)
	if err != nil {
		return false, fmt.Errorf("set password: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// updateAccount applies a superuser's PATCH: each non-nil field;
// errUsernameTaken when another user has that username, errUserNotFound
// when there is no such user.
func (s *store) updateAccount(ctx context.Context, id string, username *string, active, superuser *bool, passwordHash *string) error {
	defer s.usersChanged.Add(1)
	sets, args := []string{"updated_at = ?"}, []any{time.Now().UTC()}
	if username != nil {
		other, err := s.accountByName(ctx, *username)
		switch {
		case err == nil && !strings.EqualFold(other.ID, id):
			return errUsernameTaken
		case err != nil && !errors.Is(err, errUserNotFound):
			return err
		}
		sets, args = append(sets, "username = ?"), append(args, *username)
	}
	if active != nil {
		sets, args = append(sets, "is_active = ?"), append(args, *active)
	}
	if superuser != nil {
		sets, args = append(sets, "is_superuser = ?"), append(args, *superuser)
	}
	if passwordHash != nil {
		sets, args = append(sets, "password = ?"), append(args, *passwordHash)
	}
	args = append(args, id)
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE users SET `+strings.Join(sets, ", ")+` WHERE id = ?`), args...)
	if err != nil {
		return fmt.Errorf("update user: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errUserNotFound
	}
	return nil
}

// touchLastLogin records a successful login.
func (s *store) touchLastLogin(ctx context.Context, id string) error {
	_, err := s.db.ExecContext(ctx, s.q(`UPDATE users SET last_login_at = ? WHERE id = ?`), time.Now().UTC(), id)
	if err != nil {
		return fmt.Errorf("record login: %w", err)
	}
	return nil
}

// setupSuperuser makes sure the configured superuser exists, as Langflow's
// setup_superuser does at start-up: created when missing (with
// LANGFLOW_SUPERUSER_PASSWORD, if any), its password set from it when it has
// none yet. A user of that name that is not a superuser is an error, as in
// Langflow. Unlike Langflow, keyflow never deletes the default superuser
// "langflow" when auto-login is off: it may own keys and variables.
func (a *app) setupSuperuser(ctx context.Context) (user, error) {
	name := a.cfg.Superuser
	if name == "" {
		name = superuserName
	}
	u, err := a.ensureUser(ctx, name, true)
	if err != nil {
		return user{}, err
	}
	if !u.IsSuperuser && !a.cfg.superuserCommand {
		return user{}, fmt.Errorf("LANGFLOW_SUPERUSER %q names a user that is not a superuser: make it one with the superuser subcommand, or choose another name", name)
	}
	if a.cfg.SuperuserPassword == "" {
		return u, nil
	}
	acct, err := a.store.accountByID(ctx, u.ID)
	if err != nil {
		return user{}, err
	}
	if acct.PasswordHash != "" {
		return u, nil
	}
	h, err := hashPassword(a.cfg.SuperuserPassword)
	if err != nil {
		return user{}, fmt.Errorf("LANGFLOW_SUPERUSER_PASSWORD: %w", err)
	}
	if set, err := a.store.setPasswordIfNone(ctx, u.ID, h); err != nil {
		return user{}, err
	} else if set {
		a.log.Info("set the superuser's password from LANGFLOW_SUPERUSER_PASSWORD", "username", u.Username)
	}
	return u, nil
}

// warnIfNoLogin logs a warning when auto-login is off and the superuser
// has no password yet: nobody can log in to the web UI until one is set.
func (a *app) warnIfNoLogin(ctx context.Context) {
	if a.cfg.Auth.AutoLogin {
		return
	}
	acct, err := a.store.accountByID(ctx, a.superuser.ID)
	if err == nil && acct.PasswordHash == "" {
		a.log.Warn("LANGFLOW_AUTO_LOGIN is off and the superuser has no password: set LANGFLOW_SUPERUSER_PASSWORD, or run the superuser subcommand, to log in", "username", acct.Username)
	}
}

// superuserSettings reads LANGFLOW_SUPERUSER, LANGFLOW_SUPERUSER_PASSWORD
// and LANGFLOW_NEW_USER_IS_ACTIVE into cfg, with Langflow's rules: with
// auto-login on the superuser is always "langflow" and the password is
// ignored (the UI logs in by itself); with auto-login off Langflow's former
// default password "langflow" is refused, as Langflow 1.11 refuses it.
func superuserSettings(cfg *config, getenv func(string) string) error {
	cfg.Superuser = strings.TrimSpace(getenv("LANGFLOW_SUPERUSER"))
	cfg.SuperuserPassword = getenv("LANGFLOW_SUPERUSER_PASSWORD")
	var err error
	// getenv does not tell unset from empty: an empty value is the default
	// (false) here; a set one is parsed as every boolean setting is.
	if v := getenv("LANGFLOW_NEW_USER_IS_ACTIVE"); v != "" {
		if cfg.NewUserIsActive, err = envbool.Parse("LANGFLOW_NEW_USER_IS_ACTIVE", v); err != nil {
			return err
		}
	}
	if cfg.Superuser == "" || cfg.Auth.AutoLogin {
		cfg.Superuser = superuserName
	}
	if cfg.Auth.AutoLogin {
		cfg.SuperuserPassword = ""
		return nil
	}
	if variables.ValidateName(cfg.Superuser) != nil {
		return errors.New("LANGFLOW_SUPERUSER must be valid UTF-8 without control characters, at most 255 bytes")
	}
	if cfg.SuperuserPassword == legacyDefaultPassword {
		return errors.New("LANGFLOW_SUPERUSER_PASSWORD cannot use the legacy default password")
	}
	if len(cfg.SuperuserPassword) > maxPasswordBytes {
		return fmt.Errorf("LANGFLOW_SUPERUSER_PASSWORD: %w", errPasswordTooLong)
	}
	return nil
}

// userJSON is Langflow's UserRead (its "create_at" spelling included).
type userJSON struct {
	ID           string          `json:"id"`
	Username     string          `json:"username"`
	ProfileImage *string         `json:"profile_image"`
	StoreAPIKey  *string         `json:"store_api_key"`
	IsActive     bool            `json:"is_active"`
	IsSuperuser  bool            `json:"is_superuser"`
	CreateAt     time.Time       `json:"create_at"`
	UpdatedAt    time.Time       `json:"updated_at"`
	LastLoginAt  *time.Time      `json:"last_login_at"`
	Optins       map[string]bool `json:"optins"`
}

func toUserJSON(a account) userJSON {
	upd := a.CreatedAt
	if a.UpdatedAt != nil {
		upd = *a.UpdatedAt
	}
	return userJSON{
		ID: a.ID, Username: a.Username, IsActive: a.IsActive, IsSuperuser: a.IsSuperuser,
		CreateAt: a.CreatedAt, UpdatedAt: upd, LastLoginAt: a.LastLoginAt,
		Optins: map[string]bool{"github_starred": false, "dialog_dismissed": false, "discord_clicked": false},
	}
}

// currentAccount returns the authenticated caller's user, answering 503 or
// 401 itself (and reporting false) when it cannot.
func (a *app) currentAccount(w http.ResponseWriter, r *http.Request) (account, bool) {
	caller, _ := middleware.FromRequest(r)
	id := caller.UserID
	acct, err := a.accountByIDFresh(r.Context(), id)
	switch {
	case errors.Is(err, errUserNotFound):
		httpjson.Detail(w, http.StatusUnauthorized, "User not found or is inactive.")
		return account{}, false
	case err != nil:
		a.storeUnavailable(w, r, "read user", err)
		return account{}, false
	case !acct.IsActive:
		httpjson.Detail(w, http.StatusUnauthorized, "Inactive user")
		return account{}, false
	}
	return acct, true
}

// currentSuperuser is currentAccount for superuser-only routes: 403 "The
// user doesn't have enough privileges" for anybody else, as in Langflow.
func (a *app) currentSuperuser(w http.ResponseWriter, r *http.Request) (account, bool) {
	acct, ok := a.currentAccount(w, r)
	if ok && !acct.IsSuperuser {
		httpjson.Detail(w, http.StatusForbidden, "The user doesn't have enough privileges")
		return account{}, false
	}
	return acct, ok
}

// whoami is GET /api/v1/users/whoami: the caller as Langflow's UserRead.
func (a *app) whoami(w http.ResponseWriter, r *http.Request) {
	if acct, ok := a.currentAccount(w, r); ok {
		httpjson.Write(w, http.StatusOK, toUserJSON(acct))
	}
}

// createUser is POST /api/v1/users/ {"username", "password"} by a
// superuser → 201 UserRead; the new user is active only with
// LANGFLOW_NEW_USER_IS_ACTIVE; a name in use → 400 "This username is
// unavailable.".
func (a *app) createUser(w http.ResponseWriter, r *http.Request) {
	if _, ok := a.currentSuperuser(w, r); !ok {
		return
	}
	if a.langflow != nil {
		httpjson.Detail(w, http.StatusBadRequest, msgUsersInLangflow)
		return
	}
	var in struct {
		Username *string `json:"username"`
		Password *string `json:"password"`
	}
	if !httpjson.Decode(w, r, &in) {
		return
	}
	switch {
	case in.Username == nil || in.Password == nil:
		missing := "username"
		if in.Username != nil {
			missing = "password"
		}
		validationError(w, "missing", []string{"body", missing}, "Field required")
		return
	case strings.TrimSpace(*in.Username) == "":
		httpjson.Detail(w, http.StatusBadRequest, "Username cannot be empty")
		return
	case variables.ValidateName(*in.Username) != nil:
		httpjson.Detail(w, http.StatusBadRequest, "Username must be valid UTF-8 without control characters, at most 255 bytes")
		return
	case *in.Password == "":
		httpjson.Detail(w, http.StatusBadRequest, "Password cannot be empty")
		return
	}
	h, err := hashPassword(*in.Password)
	if err != nil {
		httpjson.Detail(w, http.StatusBadRequest, "Password must be at most 72 bytes")
		return
	}
	acct, err := a.store.createAccount(r.Context(), *in.Username, h, false, a.cfg.NewUserIsActive)
	switch {
	case errors.Is(err, errUsernameTaken):
		httpjson.Detail(w, http.StatusBadRequest, "This username is unavailable.")
		return
	case err != nil:
		a.storeUnavailable(w, r, "create user", err)
		return
	}
	a.log.Info("created user", "username", acct.Username, "active", acct.IsActive)
	if err := a.importEnv(r.Context(), acct.user); err != nil {
		a.log.Warn("import environment variables for new user", "username", acct.Username, "err", err)
	}
	httpjson.Write(w, http.StatusCreated, toUserJSON(acct))
}

// listUsers is GET /api/v1/users/?skip=&limit=&search= by a superuser:
// {"total_count", "users": [UserRead]}; search keeps the usernames that
// contain it, ignoring case, as Langflow's does, and total_count counts them.
func (a *app) listUsers(w http.ResponseWriter, r *http.Request) {
	if _, ok := a.currentSuperuser(w, r); !ok {
		return
	}
	skip, limit, ok := pageParams(w, r)
	if !ok {
		return
	}
	all, err := a.store.accounts(r.Context())
	if err != nil {
		a.storeUnavailable(w, r, "list users", err)
		return
	}
	if search := strings.ToLower(r.URL.Query().Get("search")); search != "" {
		matching := all[:0]
		for _, acct := range all {
			if strings.Contains(strings.ToLower(acct.Username), search) {
				matching = append(matching, acct)
			}
		}
		all = matching
	}
	page := []userJSON{}
	for i := skip; i < len(all) && len(page) < limit; i++ {
		page = append(page, toUserJSON(all[i]))
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"total_count": len(all), "users": page})
}

// patchUser is PATCH /api/v1/users/{user_id} by a superuser: username,
// is_active, is_superuser and password, each optional. As in Langflow, a
// caller cannot deactivate themselves (403). (Langflow also lets users edit
// their own profile; keyflow has no profile.)
func (a *app) patchUser(w http.ResponseWriter, r *http.Request) {
	caller, ok := a.currentSuperuser(w, r)
	if !ok {
		return
	}
	if a.langflow != nil {
		httpjson.Detail(w, http.StatusBadRequest, msgUsersInLangflow)
		return
	}
	id := r.PathValue("user_id")
	if !ids.Valid(id) {
		validationError(w, "uuid_parsing", []string{"path", "user_id"}, "Input should be a valid UUID")
		return
	}
	var in struct {
		Username    *string `json:"username"`
		IsActive    *bool   `json:"is_active"`
		IsSuperuser *bool   `json:"is_superuser"`
		Password    *string `json:"password"`
	}
	if !httpjson.Decode(w, r, &in) {
		return
	}
	if in.IsActive != nil && !*in.IsActive && strings.EqualFold(id, caller.ID) {
		// As Langflow: nobody deactivates themselves (the last superuser
		// would lock everybody out).
		httpjson.Detail(w, http.StatusForbidden, "You can't deactivate your own user account")
		return
	}
	if in.Username != nil {
		switch {
		case strings.TrimSpace(*in.Username) == "":
			httpjson.Detail(w, http.StatusBadRequest, "Username cannot be empty")
			return
		case variables.ValidateName(*in.Username) != nil:
			httpjson.Detail(w, http.StatusBadRequest, "Username must be valid UTF-8 without control characters, at most 255 bytes")
			return
		}
	}
	var hash *string
	if in.Password != nil && *in.Password != "" {
		h, err := hashPassword(*in.Password)
		if err != nil {
			httpjson.Detail(w, http.StatusBadRequest, "Password must be at most 72 bytes")
			return
		}
		hash = &h
	}
	err := a.store.updateAccount(r.Context(), id, in.Username, in.IsActive, in.IsSuperuser, hash)
	switch {
	case errors.Is(err, errUserNotFound):
		httpjson.Detail(w, http.StatusNotFound, "User not found")
		return
	case errors.Is(err, errUsernameTaken):
		httpjson.Detail(w, http.StatusBadRequest, "This username is unavailable.")
		return
	}
	if err != nil {
		a.storeUnavailable(w, r, "update user", err)
		return
	}
	if in.IsActive != nil && !*in.IsActive || hash != nil {
		// A deactivated user, or one whose password changed, is logged out
		// everywhere.
		if err := a.store.revokeUserTokens(r.Context(), id); err != nil {
			a.storeUnavailable(w, r, "revoke tokens", err)
			return
		}
	}
	acct, err := a.store.accountByID(r.Context(), id)
	if err != nil {
		a.storeUnavailable(w, r, "read user", err)
		return
	}
	httpjson.Write(w, http.StatusOK, toUserJSON(acct))
}

// pageParams reads ?skip= (default 0) and ?limit= (default 10), answering
// 422 for a value that is not a non-negative integer.
func pageParams(w http.ResponseWriter, r *http.Request) (skip, limit int, ok bool) {
	skip, limit = 0, 10
	for _, p := range []struct {
		name string
		dst  *int
	}{{"skip", &skip}, {"limit", &limit}} {
		v := r.URL.Query().Get(p.name)
		if v == "" {
			continue
		}
		var n int
		if _, err := fmt.Sscanf(v, "%d", &n); err != nil || n < 0 || fmt.Sprint(n) != v {
			validationError(w, "int_parsing", []string{"query", p.name}, "Input should be a valid integer, unable to parse string as an integer")
			return 0, 0, false
		}
		*p.dst = n
	}
	return skip, limit, true
}

// validationError answers 422 in FastAPI's request-validation shape:
// {"detail": [{"type", "loc", "msg", "input": null}]}. The input is never
// echoed.
func validationError(w http.ResponseWriter, typ string, loc []string, msg string) {
	httpjson.Write(w, http.StatusUnprocessableEntity, map[string]any{
		"detail": []map[string]any{{"type": typ, "loc": loc, "msg": msg, "input": nil}},
	})
}
