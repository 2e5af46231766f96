package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/keyflow-dev/keyflow/examples/internal/ids"
)

// The server's own tables: users and flows. keyflow manages API keys and
// variables; who the users are and what a flow is belongs to the host
// application, so this is what a host would write itself.

// superuserName is Langflow's default superuser, which auto-login acts as.
const superuserName = "langflow"

type user struct {
	ID          string
	Username    string
	IsSuperuser bool
	CreatedAt   time.Time
}

// flowField is one component field of a flow: bound to a global variable,
// set to a literal value, or empty (then a variable whose "Apply To Fields"
// names the field fills it at run time).
type flowField struct {
	Variable string `json:"variable,omitempty"`
	Value    string `json:"value,omitempty"`
}

type flow struct {
	ID        string
	UserID    string
	Name      string
	Fields    map[string]flowField
	CreatedAt time.Time
	// EndpointName is the flow's optional name in /api/v1/run/{name},
	// unique per user (see run.go); "" when it has none.
	EndpointName string
}

var errFlowNotFound = errors.New("flow not found")

// store keeps users and flows in the same *sql.DB as keyflow's stores.
// It is safe for concurrent use.
type store struct {
	db       *sql.DB
	postgres bool
	// usersChanged counts this process's changes to users (updateAccount,
	// mirrorUser), so that activeKeyUser forgets what it cached at once.
	usersChanged atomic.Uint64
}

var schema = map[bool][]string{
	false: { // SQLite
		`CREATE TABLE IF NOT EXISTS users (
			id TEXT PRIMARY KEY,
			username TEXT NOT NULL UNIQUE,
			is_superuser BOOLEAN NOT NULL DEFAULT FALSE,
			created_at TIMESTAMP NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS flows (
			id TEXT PRIMARY KEY,
			user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
			name TEXT NOT NULL,
			fields TEXT NOT NULL,
			created_at TIMESTAMP NOT NULL)`,
		`CREATE INDEX IF NOT EXISTS flows_user_id ON flows(user_id)`,
	},
	true: { // PostgreSQL
		`CREATE TABLE IF NOT EXISTS users (
			id VARCHAR(36) PRIMARY KEY,
			username TEXT NOT NULL UNIQUE,
			is_superuser BOOLEAN NOT NULL DEFAULT FALSE,
			created_at TIMESTAMPTZ NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS flows (
			id VARCHAR(36) PRIMARY KEY,
			user_id VARCHAR(36) NOT NULL REFERENCES users(id) ON DELETE CASCADE,
			name TEXT NOT NULL,
			fields TEXT NOT NULL,
			created_at TIMESTAMPTZ NOT NULL)`,
		`CREATE INDEX IF NOT EXISTS flows_user_id ON flows(user_id)`,
	},
}

// newStore creates the tables when they are missing.
func newStore(ctx context.Context, db *sql.DB, postgres bool) (*store, error) {
	for _, stmt := range schema[postgres] {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return nil, fmt.Errorf("create schema: %w", err)
		}
	}
	return &store{db: db, postgres: postgres}, nil
}

// q rewrites ? placeholders to $1, $2, … for PostgreSQL.
func (s *store) q(query string) string {
	if !s.postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// ensureUser returns the user named username, creating it when missing
// (concurrently safe: the CLI and a running server may both try). created
// reports whether this call created it.
func (s *store) ensureUser(ctx context.Context, username string, superuser bool) (u user, created bool, err error) {
	if err := checkUsername(username); err != nil {
		// No new user may have that name; one that has it already (imported
		// from Langflow) is still found.
		if s.db.QueryRowContext(ctx, s.q(`SELECT id, username, is_superuser, created_at FROM users WHERE username = ?`), username).
			Scan(&u.ID, &u.Username, &u.IsSuperuser, &u.CreatedAt) == nil {
			return u, false, nil
		}
		return user{}, false, err
	}
	res, err := s.db.ExecContext(ctx, s.q(`INSERT INTO users (id, username, is_superuser, created_at)
		VALUES (?, ?, ?, ?) ON CONFLICT (username) DO NOTHING`),
		ids.New(), username, superuser, time.Now().UTC())
	if err != nil {
		return user{}, false, fmt.Errorf("create user: %w", err)
	}
	n, _ := res.RowsAffected()
	err = s.db.QueryRowContext(ctx, s.q(`SELECT id, username, is_superuser, created_at FROM users WHERE username = ?`), username).
		Scan(&u.ID, &u.Username, &u.IsSuperuser, &u.CreatedAt)
	if err != nil {
		return user{}, false, fmt.Errorf("read user: %w", err)
	}
	return u, n == 1, nil
}

// users lists every user, oldest first.
func (s *store) users(ctx context.Context) ([]user, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, username, is_superuser, created_at FROM users ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	var out []user
	for rows.Next() {
		var u user
		if err := rows.Scan(&u.ID, &u.Username, &u.IsSuperuser, &u.CreatedAt); err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// createFlow stores a new flow for userID.
func (s *store) createFlow(ctx context.Context, userID, name string, fields map[string]flowField) (flow, error) {
	if fields == nil {
		fields = map[string]flowField{}
	}
	f := flow{ID: ids.New(), UserID: userID, Name: name, Fields: fields, CreatedAt: time.Now().UTC()}
	data, err := json.Marshal(fields)
	if err != nil {
		return flow{}, err
	}
	_, err = s.db.ExecContext(ctx, s.q(`INSERT INTO flows (id, user_id, name, fields, created_at) VALUES (?, ?, ?, ?, ?)`),
		f.ID, f.UserID, f.Name, string(data), f.CreatedAt)
	if err != nil {
		return flow{}, fmt.Errorf("create flow: %w", err)
	}
	return f, nil
}

const flowColumns = `id, user_id, name, fields, created_at, endpoint_name`

func scanFlow(row interface{ Scan(...any) error }) (flow, error) {
	var f flow
	var fields string
	var endpoint sql.NullString
	if err := row.Scan(&f.ID, &f.UserID, &f.Name, &fields, &f.CreatedAt, &endpoint); err != nil {
		return flow{}, err
	}
	f.EndpointName = endpoint.String
	if err := json.Unmarshal([]byte(fields), &f.Fields); err != nil {
		return flow{}, fmt.Errorf("flow %s: fields: %w", f.ID, err)
	}
	return f, nil
}

// flowByID returns the flow with that id, or errFlowNotFound.
func (s *store) flowByID(ctx context.Context, id string) (flow, error) {
	f, err := scanFlow(s.db.QueryRowContext(ctx, s.q(`SELECT `+flowColumns+` FROM flows WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return flow{}, errFlowNotFound
	}
	return f, err
}

// flowsByUser lists userID's flows, oldest first.
func (s *store) flowsByUser(ctx context.Context, userID string) ([]flow, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+flowColumns+` FROM flows WHERE user_id = ? ORDER BY created_at, id`), userID)
	if err != nil {
		return nil, fmt.Errorf("list flows: %w", err)
	}
	defer rows.Close()
	out := []flow{}
	for rows.Next() {
		f, err := scanFlow(rows)
		if err != nil {
			return nil, fmt.Errorf("list flows: %w", err)
		}
		out = append(out, f)
	}
	return out, rows.Err()
}
