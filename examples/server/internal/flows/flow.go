// Package flows is the reference server's stand-in for Langflow's flows
// and its run API: the flows table, GET and POST /api/v1/flows/, and
// POST /api/v1/run/{flow_id_or_name}, where keyflow's Resolver gives every
// field of the flow its value (flow or tweak > X-LANGFLOW-GLOBAL-VAR-*
// header > stored variable > environment).
//
// A flow is one component: its display name is the flow's name, its id
// ComponentID(flow), its fields the flow's fields. What a flow is belongs to
// the host application, not to keyflow.
package flows

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/keyflow-dev/keyflow/examples/internal/ids"
	"github.com/keyflow-dev/keyflow/examples/server/internal/sqldb"
)

// Field is one component field of a flow: bound to a global variable,
// set to a literal value, or empty (then a variable whose "Apply To Fields"
// names the field fills it at run time).
type Field struct {
	Variable string `json:"variable,omitempty"`
	Value    string `json:"value,omitempty"`
}

// Flow is one flow of a user.
type Flow struct {
	ID        string
	UserID    string
	Name      string
	Fields    map[string]Field
	CreatedAt time.Time
	// EndpointName is the flow's optional name in /api/v1/run/{name},
	// unique per user (see run.go); "" when it has none.
	EndpointName string
}

// ErrNotFound: no flow has that id (or endpoint name).
var ErrNotFound = errors.New("flow not found")

// ErrEndpointTaken: the user has a flow with that endpoint name already.
var ErrEndpointTaken = errors.New("endpoint name taken")

// Store keeps flows in the flows table. It is safe for concurrent use.
type Store struct {
	db       sqldb.DB
	cacheTTL time.Duration // cache.go; 0: no cache
	cache    flowCache
}

// OpenStore creates the flows table (and the endpoint_name column added
// later) when it is missing; the users table must exist. Run it under the
// start-up lock. The list and run APIs serve a user's flows from a cache
// for cacheTTL (cache.go): the bound on how late a flow created by another
// instance is seen; 0 turns the cache off.
func OpenStore(ctx context.Context, db sqldb.DB, cacheTTL time.Duration) (*Store, error) {
	ts, id := db.Types()
	err := db.Exec(ctx, `CREATE TABLE IF NOT EXISTS flows (
			id `+id+` PRIMARY KEY,
			user_id `+id+` NOT NULL REFERENCES users(id) ON DELETE CASCADE,
			name TEXT NOT NULL,
			fields TEXT NOT NULL,
			created_at `+ts+` NOT NULL)`,
		`CREATE INDEX IF NOT EXISTS flows_user_id ON flows(user_id)`)
	if err != nil {
		return nil, err
	}
	if err := db.AddColumn(ctx, "flows", "endpoint_name", "TEXT"); err != nil {
		return nil, err
	}
	if err := db.Exec(ctx, `CREATE UNIQUE INDEX IF NOT EXISTS flows_user_endpoint_name ON flows(user_id, endpoint_name)`); err != nil {
		return nil, err
	}
	return &Store{db: db, cacheTTL: cacheTTL}, nil
}

// create stores a new flow for userID.
func (s *Store) create(ctx context.Context, userID, name string, fields map[string]Field) (Flow, error) {
	if fields == nil {
		fields = map[string]Field{}
	}
	f := Flow{ID: ids.New(), UserID: userID, Name: name, Fields: fields, CreatedAt: time.Now().UTC()}
	data, err := json.Marshal(fields)
	if err != nil {
		return Flow{}, err
	}
	_, err = s.db.ExecContext(ctx, s.db.Q(`INSERT INTO flows (id, user_id, name, fields, created_at) VALUES (?, ?, ?, ?, ?)`),
		f.ID, f.UserID, f.Name, string(data), f.CreatedAt)
	s.cache.forget(userID) // even on failure: the insert may have committed
	if err != nil {
		return Flow{}, fmt.Errorf("create flow: %w", err)
	}
	return f, nil
}

const flowColumns = `id, user_id, name, fields, created_at, endpoint_name`

func scanFlow(row interface{ Scan(...any) error }) (Flow, error) {
	var f Flow
	var fields string
	var endpoint sql.NullString
	if err := row.Scan(&f.ID, &f.UserID, &f.Name, &fields, &f.CreatedAt, &endpoint); err != nil {
		return Flow{}, err
	}
	f.EndpointName = endpoint.String
	if err := json.Unmarshal([]byte(fields), &f.Fields); err != nil {
		return Flow{}, fmt.Errorf("flow %s: fields: %w", f.ID, err)
	}
	return f, nil
}

// ByID returns the flow with that id, or ErrNotFound.
func (s *Store) ByID(ctx context.Context, id string) (Flow, error) {
	f, err := scanFlow(s.db.QueryRowContext(ctx, s.db.Q(`SELECT `+flowColumns+` FROM flows WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return Flow{}, ErrNotFound
	}
	return f, err
}

// ByUser lists userID's flows, oldest first.
func (s *Store) ByUser(ctx context.Context, userID string) ([]Flow, error) {
	rows, err := s.db.QueryContext(ctx, s.db.Q(`SELECT `+flowColumns+` FROM flows WHERE user_id = ? ORDER BY created_at, id`), userID)
	if err != nil {
		return nil, fmt.Errorf("list flows: %w", err)
	}
	defer rows.Close()
	out := []Flow{}
	for rows.Next() {
		f, err := scanFlow(rows)
		if err != nil {
			return nil, fmt.Errorf("list flows: %w", err)
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// ByEndpointName returns userID's flow with that endpoint name, or
// ErrNotFound.
func (s *Store) ByEndpointName(ctx context.Context, userID, name string) (Flow, error) {
	f, err := scanFlow(s.db.QueryRowContext(ctx, s.db.Q(`SELECT `+flowColumns+` FROM flows WHERE user_id = ? AND endpoint_name = ?`), userID, name))
	if errors.Is(err, sql.ErrNoRows) {
		return Flow{}, ErrNotFound
	}
	return f, err
}

// Create stores a new flow for userID, with an endpoint name ("" for none);
// ErrEndpointTaken when the user has a flow of that endpoint name.
func (s *Store) Create(ctx context.Context, userID, name, endpoint string, fields map[string]Field) (Flow, error) {
	if endpoint == "" {
		return s.create(ctx, userID, name, fields)
	}
	if _, err := s.ByEndpointName(ctx, userID, endpoint); err == nil {
		return Flow{}, ErrEndpointTaken
	} else if !errors.Is(err, ErrNotFound) {
		return Flow{}, err
	}
	if fields == nil {
		fields = map[string]Field{}
	}
	data, err := json.Marshal(fields)
	if err != nil {
		return Flow{}, err
	}
	f := Flow{ID: ids.New(), UserID: userID, Name: name, Fields: fields, CreatedAt: time.Now().UTC(), EndpointName: endpoint}
	_, err = s.db.ExecContext(ctx, s.db.Q(`INSERT INTO flows (id, user_id, name, fields, created_at, endpoint_name) VALUES (?, ?, ?, ?, ?, ?)`),
		f.ID, f.UserID, f.Name, string(data), f.CreatedAt, endpoint)
	s.cache.forget(userID) // even on failure: the insert may have committed
	if err != nil {
		// A concurrent create may have taken the name since the check.
		if _, lookErr := s.ByEndpointName(ctx, userID, endpoint); lookErr == nil {
			return Flow{}, ErrEndpointTaken
		}
		return Flow{}, fmt.Errorf("create flow: %w", err)
	}
	return f, nil
}
