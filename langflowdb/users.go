package langflowdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/keyflow-dev/keyflow/internal/sqlutil"
)

// User is a row of Langflow's user table.
type User struct {
	ID          string // canonical UUID
	Username    string
	IsActive    bool
	IsSuperuser bool
	CreatedAt   time.Time // Langflow's create_at column
	// PasswordHash is the password column: a bcrypt hash ($2b$…, from
	// passlib), which golang.org/x/crypto/bcrypt checks. It is not a
	// password, but never log it.
	PasswordHash string
}

// ErrUserNotFound is returned by UserByName when no user has that name.
var ErrUserNotFound = errors.New("langflowdb: no such Langflow user")

const userCols = `id, username, is_active, is_superuser, create_at, password`

func scanUser(row scanner) (User, error) {
	var (
		u        User
		id       uuidValue
		created  sqlutil.NullTime
		password sql.NullString
	)
	if err := row.Scan(&id, &u.Username, &u.IsActive, &u.IsSuperuser, &created, &password); err != nil {
		return User{}, err
	}
	u.ID, u.CreatedAt, u.PasswordHash = id.s, created.T, password.String
	return u, nil
}

// Users lists Langflow's users, oldest first.
func (d *DB) Users(ctx context.Context) ([]User, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT `+userCols+` FROM "user" ORDER BY create_at, id`)
	if err != nil {
		return nil, fmt.Errorf("langflowdb: list users: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("langflowdb: list users: %w", err)
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// UserByName returns the Langflow user with this username, or
// ErrUserNotFound.
func (d *DB) UserByName(ctx context.Context, username string) (User, error) {
	u, err := scanUser(d.db.QueryRowContext(ctx, d.q(`SELECT `+userCols+` FROM "user" WHERE username = ?`), username))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return User{}, ErrUserNotFound
	case err != nil:
		return User{}, fmt.Errorf("langflowdb: read user: %w", err)
	}
	return u, nil
}

// CountRows returns how many rows the apikey and variable tables hold (for
// progress reports).
func (d *DB) CountRows(ctx context.Context) (keys, vars int64, err error) {
	if err := d.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM apikey").Scan(&keys); err != nil {
		return 0, 0, fmt.Errorf("langflowdb: count keys: %w", err)
	}
	if d.schema.HasVariables {
		if err := d.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM variable").Scan(&vars); err != nil {
			return 0, 0, fmt.Errorf("langflowdb: count variables: %w", err)
		}
	}
	return keys, vars, nil
}
