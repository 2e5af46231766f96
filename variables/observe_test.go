package variables_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/observe"
	"github.com/keyflow-dev/keyflow/variables"
)

type opRecorder struct {
	observe.Nop
	mu  sync.Mutex
	ops []string
}

type readSpan struct{}

func (r *opRecorder) VariableAccessed(ctx context.Context, op observe.VariableOp) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := op.Op
	if op.Err != nil {
		s += " err"
		if errors.Is(op.Err, variables.ErrNotFound) {
			s += " not-found"
		}
	}
	if ctx.Value(readSpan{}) != nil {
		s += " in-span"
	}
	r.ops = append(r.ops, s)
}

func (r *opRecorder) StoreReadStart(ctx context.Context, sr observe.StoreRead) context.Context {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops = append(r.ops, "start "+sr.Store+" "+sr.Op)
	return context.WithValue(ctx, readSpan{}, true)
}

func (r *opRecorder) StoreReadEnd(ctx context.Context, sr observe.StoreRead, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops = append(r.ops, "end "+sr.Op)
}

// TestHooksStoreOps: every store operation is reported, reads inside a
// span, and no event carries a name or a value.
func TestHooksStoreOps(t *testing.T) {
	rec := &opRecorder{}
	s, err := variables.NewService(variables.ServiceConfig{Keyring: keyring(t), Hooks: rec})
	require.NoError(t, err)
	ctx := context.Background()
	v, err := s.Create(ctx, "u", variables.CreateInput{Name: "OPENAI_API_KEY", Value: "sk-secret-value", Type: variables.Credential})
	require.NoError(t, err)
	_, err = s.Value(ctx, "u", "OPENAI_API_KEY")
	require.NoError(t, err)
	_, err = s.Get(ctx, "u", "00000000-0000-0000-0000-000000000000")
	require.ErrorIs(t, err, variables.ErrNotFound)
	require.NoError(t, s.Delete(ctx, "u", v.ID))

	rec.mu.Lock()
	defer rec.mu.Unlock()
	assert.Contains(t, rec.ops, "Create")
	assert.Contains(t, rec.ops, "start variables GetByName")
	assert.Contains(t, rec.ops, "GetByName in-span")
	assert.Contains(t, rec.ops, "Get err not-found in-span")
	assert.Contains(t, rec.ops, "Delete")
	for _, op := range rec.ops {
		assert.False(t, strings.Contains(op, "OPENAI") || strings.Contains(op, "secret"), op)
	}
}
