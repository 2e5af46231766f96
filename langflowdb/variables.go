package langflowdb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"

	"github.com/keyflow-dev/keyflow/internal/sqlutil"
	"github.com/keyflow-dev/keyflow/secrets"
	"github.com/keyflow-dev/keyflow/sqldialect"
	"github.com/keyflow-dev/keyflow/variables"
)

// VariableStore is a variables.Store on Langflow's variable table. Values
// are stored as the variables.Service gives them (a Fernet token for a
// Credential, made with the same secret and derivation as Langflow's), so
// a Service on it, with a Keyring on Langflow's secret, creates variables
// that open in Langflow and reads the ones Langflow created.
//
// Langflow's table has no origin column: every variable reads as
// variables.OriginUser, and the origin given to Create or Update is not
// stored. It has no unique (user_id, name) constraint: the store checks
// names before it writes, serialising its own writers per user (a
// PostgreSQL advisory lock; on SQLite, open the database with
// sqlitedb.Open or sqlitedb.DSN, whose immediate transactions do it). It is
// safe for concurrent use. DB.Variables returns one; the zero value is not
// usable.
type VariableStore struct {
	d *DB
}

var _ variables.Store = (*VariableStore)(nil)

// ErrNoVariables is returned by DB.Variables when the database has no
// variable table (Langflow before global variables).
var ErrNoVariables = errors.New("langflowdb: this Langflow database has no variable table")

// Variables returns the VariableStore of the database.
func (d *DB) Variables() (*VariableStore, error) {
	if !d.schema.HasVariables {
		return nil, ErrNoVariables
	}
	return &VariableStore{d: d}, nil
}

const varCols = "id, user_id, name, value, type, default_fields, created_at, updated_at"

// categoryGlobal is the category Langflow gives a variable it creates
// (CATEGORY_GLOBAL in services/variable/constants.py), where the column
// exists.
const categoryGlobal = "Global"

func (s *VariableStore) scan(row scanner) (variables.Variable, error) {
	var (
		id, user         uuidValue
		name, value, typ sql.NullString
		fields           []byte
		created, updated sqlutil.NullTime
		v                variables.Variable
		defaultFields    []string
		err              error
	)
	if err = row.Scan(&id, &user, &name, &value, &typ, &fields, &created, &updated); err != nil {
		return v, err
	}
	if len(fields) > 0 {
		if err := json.Unmarshal(fields, &defaultFields); err != nil {
			return v, fmt.Errorf("langflowdb: variable %s: default_fields: %w", id.s, err)
		}
	}
	if defaultFields == nil {
		defaultFields = []string{}
	}
	v = variables.Variable{
		ID: id.s, UserID: user.s, Name: name.String, Value: value.String,
		Type: variables.Generic, DefaultFields: defaultFields,
		CreatedAt: created.T, UpdatedAt: updated.T, Origin: variables.OriginUser,
	}
	if typ.String == string(variables.Credential) {
		v.Type = variables.Credential
	}
	return v, nil
}

func (s *VariableStore) list(ctx context.Context, q *sql.Tx, where string, args ...any) ([]variables.Variable, error) {
	query := s.d.q("SELECT " + varCols + " FROM variable " + where)
	var rows *sql.Rows
	var err error
	if q != nil {
		rows, err = q.QueryContext(ctx, query, args...)
	} else {
		rows, err = s.d.db.QueryContext(ctx, query, args...)
	}
	if err != nil {
		return nil, fmt.Errorf("langflowdb: read variables: %w", err)
	}
	defer func() { _ = rows.Close() }()
	out := []variables.Variable{}
	for rows.Next() {
		v, err := s.scan(rows)
		if err != nil {
			return nil, fmt.Errorf("langflowdb: read variables: %w", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("langflowdb: read variables: %w", err)
	}
	return out, nil
}

// ids converts a user ID and a variable ID; ok false when either is not a
// UUID (then no row matches).
func (s *VariableStore) ids(userID, id string) (uid, vid any, ok bool) {
	uid, ok1 := s.d.idArg(userID)
	vid, ok2 := s.d.idArg(id)
	return uid, vid, ok1 && ok2
}

// Get implements variables.Store.
func (s *VariableStore) Get(ctx context.Context, userID, id string) (variables.Variable, error) {
	uid, vid, ok := s.ids(userID, id)
	if !ok {
		return variables.Variable{}, notFound(ctx)
	}
	vs, err := s.list(ctx, nil, "WHERE id = ? AND user_id = ?", vid, uid)
	if err != nil {
		return variables.Variable{}, err
	}
	if len(vs) == 0 {
		return variables.Variable{}, variables.ErrNotFound
	}
	return vs[0], nil
}

// GetByName implements variables.Store; with several rows of that name
// (Langflow does not forbid them), the oldest, as Langflow's first().
func (s *VariableStore) GetByName(ctx context.Context, userID, name string) (variables.Variable, error) {
	uid, ok := s.d.idArg(userID)
	if !ok {
		return variables.Variable{}, notFound(ctx)
	}
	vs, err := s.list(ctx, nil, "WHERE user_id = ? AND name = ? ORDER BY created_at, id", uid, name)
	if err != nil {
		return variables.Variable{}, err
	}
	if len(vs) == 0 {
		return variables.Variable{}, variables.ErrNotFound
	}
	return vs[0], nil
}

// ListByUser implements variables.Store.
func (s *VariableStore) ListByUser(ctx context.Context, userID string) ([]variables.Variable, error) {
	uid, ok := s.d.idArg(userID)
	if !ok {
		return []variables.Variable{}, ctx.Err()
	}
	return s.list(ctx, nil, "WHERE user_id = ? ORDER BY created_at, id", uid)
}

func notFound(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return variables.ErrNotFound
}

// lockUser serialises this package's writers of one user's variables on
// PostgreSQL (SQLite serialises writers itself).
func (s *VariableStore) lockUser(ctx context.Context, tx *sql.Tx, userID string) error {
	if s.d.dialect != sqldialect.Postgres {
		return nil
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte("keyflow/langflowdb/variable:" + userID))
	_, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", int64(h.Sum64()))
	return err
}

func (s *VariableStore) nameTaken(ctx context.Context, tx *sql.Tx, uid any, name string, except any) (bool, error) {
	q := "SELECT COUNT(*) FROM variable WHERE user_id = ? AND name = ?"
	args := []any{uid, name}
	if except != nil {
		q += " AND id <> ?"
		args = append(args, except)
	}
	var n int
	if err := tx.QueryRowContext(ctx, s.d.q(q), args...).Scan(&n); err != nil {
		return false, fmt.Errorf("langflowdb: check variable name: %w", err)
	}
	return n > 0, nil
}

func fieldsJSON(f []string) (string, error) {
	if f == nil {
		f = []string{}
	}
	b, err := json.Marshal(f)
	return string(b), err
}

// Create implements variables.Store: ErrDuplicate when the user has a
// variable of that name or the ID exists.
func (s *VariableStore) Create(ctx context.Context, v variables.Variable) error {
	uid, vid, ok := s.ids(v.UserID, v.ID)
	if !ok {
		return errors.New("langflowdb: create variable: user and variable IDs must be UUIDs")
	}
	fields, err := fieldsJSON(v.DefaultFields)
	if err != nil {
		return fmt.Errorf("langflowdb: create variable: %w", err)
	}
	tx, err := s.d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("langflowdb: create variable: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := s.lockUser(ctx, tx, v.UserID); err != nil {
		return fmt.Errorf("langflowdb: create variable: %w", err)
	}
	if taken, err := s.nameTaken(ctx, tx, uid, v.Name, nil); err != nil {
		return err
	} else if taken {
		return variables.ErrDuplicate
	}
	cols, marks := varCols, "?, ?, ?, ?, ?, ?, ?, ?"
	args := []any{vid, uid, v.Name, v.Value, string(v.Type), fields, s.d.timeArg(v.CreatedAt), s.d.nullTimeArg(&v.UpdatedAt)}
	if s.d.schema.HasCategory {
		// Langflow's model sets the category in Python; a table made by
		// its models has no server default for it.
		cols, marks, args = cols+", category", marks+", ?", append(args, categoryGlobal)
	}
	res, err := tx.ExecContext(ctx, s.d.q("INSERT INTO variable ("+cols+") VALUES ("+marks+") ON CONFLICT DO NOTHING"), args...)
	if err != nil {
		return fmt.Errorf("langflowdb: create variable: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("langflowdb: create variable: %w", err)
	} else if n == 0 {
		return variables.ErrDuplicate
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("langflowdb: create variable: %w", err)
	}
	return nil
}

// Update implements variables.Store. Origin is not stored (see
// VariableStore).
func (s *VariableStore) Update(ctx context.Context, prev, next variables.Variable) error {
	uid, vid, ok := s.ids(next.UserID, next.ID)
	if !ok {
		return notFound(ctx)
	}
	fields, err := fieldsJSON(next.DefaultFields)
	if err != nil {
		return fmt.Errorf("langflowdb: update variable: %w", err)
	}
	tx, err := s.d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("langflowdb: update variable: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := s.lockUser(ctx, tx, next.UserID); err != nil {
		return fmt.Errorf("langflowdb: update variable: %w", err)
	}
	cur, err := s.list(ctx, tx, "WHERE id = ? AND user_id = ?", vid, uid)
	if err != nil {
		return err
	}
	if len(cur) == 0 {
		return variables.ErrNotFound
	}
	if cur[0].Value != prev.Value || !cur[0].UpdatedAt.Equal(prev.UpdatedAt) {
		return variables.ErrConflict
	}
	if next.Name != cur[0].Name {
		if taken, err := s.nameTaken(ctx, tx, uid, next.Name, vid); err != nil {
			return err
		} else if taken {
			return variables.ErrDuplicate
		}
	}
	_, err = tx.ExecContext(ctx, s.d.q("UPDATE variable SET name = ?, value = ?, type = ?, default_fields = ?, updated_at = ? WHERE id = ? AND user_id = ?"),
		next.Name, next.Value, string(next.Type), fields, s.d.nullTimeArg(&next.UpdatedAt), vid, uid)
	if err != nil {
		return fmt.Errorf("langflowdb: update variable: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("langflowdb: update variable: %w", err)
	}
	return nil
}

// Delete implements variables.Store.
func (s *VariableStore) Delete(ctx context.Context, userID, id string) error {
	uid, vid, ok := s.ids(userID, id)
	if !ok {
		return notFound(ctx)
	}
	res, err := s.d.db.ExecContext(ctx, s.d.q("DELETE FROM variable WHERE id = ? AND user_id = ?"), vid, uid)
	if err != nil {
		return fmt.Errorf("langflowdb: delete variable: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("langflowdb: delete variable: %w", err)
	} else if n == 0 {
		return variables.ErrNotFound
	}
	return nil
}

// ListCiphertexts implements secrets.CiphertextStore: values that are Fernet
// tokens, of every user and type, by ID.
func (s *VariableStore) ListCiphertexts(ctx context.Context, after string, limit int) ([]secrets.Ciphertext, error) {
	q := "SELECT id, value FROM variable WHERE " + tokenTest("value")
	var args []any
	if after != "" {
		a, ok := s.d.idArg(after)
		if !ok {
			return nil, fmt.Errorf("langflowdb: list ciphertexts: cursor %q is not a UUID", after)
		}
		q += " AND id > ?"
		args = append(args, a)
	}
	q += " ORDER BY id"
	if limit > 0 {
		q += " LIMIT ?"
		args = append(args, limit)
	}
	rows, err := s.d.db.QueryContext(ctx, s.d.q(q), args...)
	if err != nil {
		return nil, fmt.Errorf("langflowdb: list ciphertexts: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []secrets.Ciphertext
	for rows.Next() {
		var id uuidValue
		var token string
		if err := rows.Scan(&id, &token); err != nil {
			return nil, fmt.Errorf("langflowdb: list ciphertexts: %w", err)
		}
		out = append(out, secrets.Ciphertext{ID: id.s, Token: token})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("langflowdb: list ciphertexts: %w", err)
	}
	return out, nil
}

// SwapCiphertext implements secrets.CiphertextStore.
func (s *VariableStore) SwapCiphertext(ctx context.Context, id, oldToken, newToken string) (bool, error) {
	vid, ok := s.d.idArg(id)
	if !ok {
		return false, ctx.Err()
	}
	res, err := s.d.db.ExecContext(ctx, s.d.q("UPDATE variable SET value = ? WHERE id = ? AND value = ?"), newToken, vid, oldToken)
	if err != nil {
		return false, fmt.Errorf("langflowdb: swap ciphertext: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("langflowdb: swap ciphertext: %w", err)
	}
	return n == 1, nil
}

// All returns every variable of every user, oldest first, for a move off
// Langflow.
func (s *VariableStore) All(ctx context.Context) ([]variables.Variable, error) {
	return s.list(ctx, nil, "ORDER BY created_at, id")
}
