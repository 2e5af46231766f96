package variables_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/secrets"
	"github.com/keyflow-dev/keyflow/variables"
)

const testSecret = "test-secret-0123456789-abcdefghijklmnop"

func keyring(t testing.TB) *secrets.Keyring {
	t.Helper()
	k, err := secrets.NewKeyring(testSecret)
	require.NoError(t, err)
	return k
}

// clock is a fake time source that advances one second per call.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Second)
	return c.now
}

func newService(t testing.TB, store variables.Store) *variables.Service {
	t.Helper()
	if store == nil {
		store = variables.NewMemoryStore()
	}
	s, err := variables.NewService(variables.ServiceConfig{Store: store, Keyring: keyring(t), Now: newClock().Now})
	require.NoError(t, err)
	return s
}

// envMap is an injectable environment.
type envMap map[string]string

func (e envMap) Lookup(k string) (string, bool) { v, ok := e[k]; return v, ok }

// countingStore counts the store calls made through it.
type countingStore struct {
	variables.Store
	calls atomic.Int64
}

func (c *countingStore) ListByUser(ctx context.Context, userID string) ([]variables.Variable, error) {
	c.calls.Add(1)
	return c.Store.ListByUser(ctx, userID)
}

func (c *countingStore) Get(ctx context.Context, userID, id string) (variables.Variable, error) {
	c.calls.Add(1)
	return c.Store.Get(ctx, userID, id)
}

func (c *countingStore) GetByName(ctx context.Context, userID, name string) (variables.Variable, error) {
	c.calls.Add(1)
	return c.Store.GetByName(ctx, userID, name)
}

func ptr[T any](v T) *T { return &v }

// beforeUpdate runs hook once, between the caller's read and its first
// Update, so that another writer's change lands in that window.
type beforeUpdate struct {
	variables.Store
	hook func()
	done bool
}

func (b *beforeUpdate) Update(ctx context.Context, prev, next variables.Variable) error {
	if !b.done {
		b.done = true
		b.hook()
	}
	return b.Store.Update(ctx, prev, next)
}
