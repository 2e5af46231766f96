package variables

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/keyflow-dev/keyflow/secrets"
)

// Store keeps variables. Implementations must be safe for concurrent use, keep
// (UserID, Name) unique, keep timestamps to at least microsecond precision,
// and return copies (a caller may modify what it gets). Every method scopes
// rows to the user it is given: another user's variable is ErrNotFound.
// Every method honours ctx: once it is done, a call fails with an error that
// wraps ctx.Err() and changes nothing. Errors other than the sentinels named
// below are store failures (the Service reports them as ErrUnavailable),
// except that a store which cannot hold a name ValidateName accepts refuses
// it with InvalidNameError.
//
// A Store is also a secrets.CiphertextStore, so secrets.Reencrypt can rotate
// the master secret over it: ListCiphertexts lists every stored value that is
// a Fernet token (secrets.IsEncrypted), of every user and type — Credential
// values and Generic values encrypted by old Langflow versions — and
// SwapCiphertext replaces one value if it is unchanged, without touching the
// timestamps or the origin.
//
// The conformance suite in variables/storetest checks all of this.
type Store interface {
	// Create inserts v as given. ErrDuplicate if the user already has a
	// variable named v.Name or v.ID exists.
	Create(ctx context.Context, v Variable) error
	// Get returns the user's variable with this ID, or ErrNotFound.
	Get(ctx context.Context, userID, id string) (Variable, error)
	// GetByName returns the user's variable with this exact name, or
	// ErrNotFound.
	GetByName(ctx context.Context, userID, name string) (Variable, error)
	// ListByUser returns all the user's variables, oldest first (by CreatedAt,
	// then ID), in one round trip; an empty slice, not an error, when none.
	ListByUser(ctx context.Context, userID string) ([]Variable, error)
	// Update writes next's Name, Value, Type, DefaultFields, UpdatedAt and
	// Origin over the row (next.UserID, next.ID), provided the row still
	// holds prev's Value, Origin and UpdatedAt (optimistic concurrency: the
	// caller read prev, and a concurrent edit, which sets UpdatedAt, or
	// rotation, which changes Value, makes the update fail with ErrConflict).
	// ErrNotFound if the row is gone; ErrDuplicate if the new name is taken
	// by another of the user's variables. ID, UserID and CreatedAt never
	// change.
	Update(ctx context.Context, prev, next Variable) error
	// Delete removes the user's variable with this ID, or returns
	// ErrNotFound.
	Delete(ctx context.Context, userID, id string) error

	secrets.CiphertextStore
}

// MemoryStore is a Store in memory, for tests and single-process servers. It
// is safe for concurrent use. The zero value is an empty store ready to use,
// as is NewMemoryStore().
type MemoryStore struct {
	mu     sync.RWMutex
	byID   map[string]*Variable
	byUser map[string][]*Variable // oldest first
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{byID: map[string]*Variable{}, byUser: map[string][]*Variable{}}
}

func clone(v *Variable) Variable {
	c := *v
	c.DefaultFields = slices.Clone(v.DefaultFields)
	return c
}

func compareVars(a, b *Variable) int {
	if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

// Create implements Store.
func (m *MemoryStore) Create(ctx context.Context, v Variable) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byID == nil { // the zero value
		m.byID, m.byUser = map[string]*Variable{}, map[string][]*Variable{}
	}
	if _, ok := m.byID[v.ID]; ok {
		return ErrDuplicate
	}
	list := m.byUser[v.UserID]
	for _, o := range list {
		if o.Name == v.Name {
			return ErrDuplicate
		}
	}
	c := clone(&v)
	m.byID[v.ID] = &c
	i, _ := slices.BinarySearchFunc(list, &c, compareVars)
	m.byUser[v.UserID] = slices.Insert(list, i, &c)
	return nil
}

func (m *MemoryStore) get(userID, id string) (*Variable, bool) {
	v, ok := m.byID[id]
	if !ok || v.UserID != userID {
		return nil, false
	}
	return v, true
}

// Get implements Store.
func (m *MemoryStore) Get(ctx context.Context, userID, id string) (Variable, error) {
	if err := ctx.Err(); err != nil {
		return Variable{}, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	v, ok := m.get(userID, id)
	if !ok {
		return Variable{}, ErrNotFound
	}
	return clone(v), nil
}

// GetByName implements Store.
func (m *MemoryStore) GetByName(ctx context.Context, userID, name string) (Variable, error) {
	if err := ctx.Err(); err != nil {
		return Variable{}, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, v := range m.byUser[userID] {
		if v.Name == name {
			return clone(v), nil
		}
	}
	return Variable{}, ErrNotFound
}

// ListByUser implements Store.
func (m *MemoryStore) ListByUser(ctx context.Context, userID string) ([]Variable, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	list := m.byUser[userID]
	out := make([]Variable, len(list))
	for i, v := range list {
		out[i] = clone(v)
	}
	return out, nil
}

// Update implements Store.
func (m *MemoryStore) Update(ctx context.Context, prev, next Variable) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.get(next.UserID, next.ID)
	if !ok {
		return ErrNotFound
	}
	if v.Value != prev.Value || v.Origin != prev.Origin || !v.UpdatedAt.Equal(prev.UpdatedAt) {
		return ErrConflict
	}
	if next.Name != v.Name {
		for _, o := range m.byUser[v.UserID] {
			if o.Name == next.Name {
				return ErrDuplicate
			}
		}
	}
	v.Name = next.Name
	v.Value = next.Value
	v.Type = next.Type
	v.DefaultFields = slices.Clone(next.DefaultFields)
	v.UpdatedAt = next.UpdatedAt
	v.Origin = next.Origin
	return nil
}

// Delete implements Store.
func (m *MemoryStore) Delete(ctx context.Context, userID, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.get(userID, id)
	if !ok {
		return ErrNotFound
	}
	delete(m.byID, id)
	m.byUser[userID] = slices.DeleteFunc(m.byUser[userID], func(o *Variable) bool { return o == v })
	if len(m.byUser[userID]) == 0 {
		delete(m.byUser, userID)
	}
	return nil
}

// ListCiphertexts implements secrets.CiphertextStore: stored values that are
// Fernet tokens, of all users, by ID ascending; limit <= 0 means no limit.
func (m *MemoryStore) ListCiphertexts(ctx context.Context, after string, limit int) ([]secrets.Ciphertext, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	var out []secrets.Ciphertext
	for id, v := range m.byID {
		if id > after && secrets.IsEncrypted(v.Value) {
			out = append(out, secrets.Ciphertext{ID: id, Token: v.Value})
		}
	}
	m.mu.RUnlock()
	slices.SortFunc(out, func(a, b secrets.Ciphertext) int { return cmp.Compare(a.ID, b.ID) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// SwapCiphertext implements secrets.CiphertextStore.
func (m *MemoryStore) SwapCiphertext(ctx context.Context, id, oldToken, newToken string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.byID[id]
	if !ok || v.Value != oldToken {
		return false, nil
	}
	v.Value = newToken
	return true, nil
}
