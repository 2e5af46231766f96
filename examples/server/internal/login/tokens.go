package login

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/keyflow-dev/keyflow/examples/server/internal/sqldb"
)

var (
	errTokenInvalid = errors.New("token invalid")
	errTokenExpired = errors.New("token expired")
)

const (
	kindAccess  = "access"
	kindRefresh = "refresh"
)

// Tokens keeps login tokens in the auth_tokens table, as SHA-256 hashes
// only. It is safe for concurrent use.
type Tokens struct {
	db sqldb.DB
}

// OpenTokens creates the auth_tokens table when it is missing (the users
// table must exist). Run it under the start-up lock.
func OpenTokens(ctx context.Context, db sqldb.DB) (*Tokens, error) {
	ts, id := db.Types()
	err := db.Exec(ctx, `CREATE TABLE IF NOT EXISTS auth_tokens (
			token_hash VARCHAR(64) PRIMARY KEY,
			user_id `+id+` NOT NULL REFERENCES users(id) ON DELETE CASCADE,
			kind VARCHAR(16) NOT NULL,
			expires_at `+ts+` NOT NULL,
			created_at `+ts+` NOT NULL)`,
		`CREATE INDEX IF NOT EXISTS auth_tokens_expires_at ON auth_tokens(expires_at)`)
	if err != nil {
		return nil, err
	}
	// The login a token pair came from, so that logout and refresh revoke
	// both tokens of the pair (NULL in rows made before the column).
	if err := db.AddColumn(ctx, "auth_tokens", "pair", id); err != nil {
		return nil, err
	}
	if err := db.Exec(ctx, `CREATE INDEX IF NOT EXISTS auth_tokens_pair ON auth_tokens(pair)`); err != nil {
		return nil, err
	}
	return &Tokens{db: db}, nil
}

// newToken returns a new random token and its stored hash.
func newToken() (token, hash string) {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+).
	token = base64.RawURLEncoding.EncodeToString(b[:])
	return token, tokenHash(token)
}

func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// save stores a token's hash, with the pair it belongs to.
func (s *Tokens) save(ctx context.Context, hash, userID, kind, pair string, expires time.Time) error {
	_, err := s.db.ExecContext(ctx, s.db.Q(`INSERT INTO auth_tokens (token_hash, user_id, kind, pair, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?)`),
		hash, userID, kind, pair, expires.UTC(), time.Now().UTC())
	if err != nil {
		return fmt.Errorf("save token: %w", err)
	}
	return nil
}

// owner returns the user a token of that kind belongs to:
// errTokenInvalid when there is no such token, errTokenExpired when it has
// expired (it is then deleted).
func (s *Tokens) owner(ctx context.Context, hash, kind string) (string, error) {
	var userID, k string
	var expires time.Time
	err := s.db.QueryRowContext(ctx, s.db.Q(`SELECT user_id, kind, expires_at FROM auth_tokens WHERE token_hash = ?`), hash).
		Scan(&userID, &k, &expires)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", errTokenInvalid
	case err != nil:
		return "", fmt.Errorf("read token: %w", err)
	case k != kind:
		return "", errTokenInvalid
	case !time.Now().Before(expires):
		_, _ = s.revokePair(ctx, hash)
		return "", errTokenExpired
	}
	return userID, nil
}

// revokePair revokes a token and the other token of its pair (the access
// and refresh tokens of one login or refresh). It reports whether the token
// itself was still there: of several requests revoking the same token at
// once, exactly one sees true. A missing token is not an error.
func (s *Tokens) revokePair(ctx context.Context, hash string) (bool, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("revoke token: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	var pair sql.NullString
	err = tx.QueryRowContext(ctx, s.db.Q(`DELETE FROM auth_tokens WHERE token_hash = ? RETURNING pair`), hash).Scan(&pair)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("revoke token: %w", err)
	}
	if pair.Valid && pair.String != "" {
		if _, err := tx.ExecContext(ctx, s.db.Q(`DELETE FROM auth_tokens WHERE pair = ?`), pair.String); err != nil {
			return false, fmt.Errorf("revoke token: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("revoke token: %w", err)
	}
	return true, nil
}

// RevokeUser logs a user out everywhere.
func (s *Tokens) RevokeUser(ctx context.Context, userID string) error {
	if _, err := s.db.ExecContext(ctx, s.db.Q(`DELETE FROM auth_tokens WHERE user_id = ?`), userID); err != nil {
		return fmt.Errorf("revoke tokens: %w", err)
	}
	return nil
}

// prune deletes expired tokens.
func (s *Tokens) prune(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, s.db.Q(`DELETE FROM auth_tokens WHERE expires_at < ?`), time.Now().UTC()); err != nil {
		return fmt.Errorf("prune tokens: %w", err)
	}
	return nil
}
