package variables_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/variables"
)

// narrowStore holds only names without spaces, as a Kubernetes Secret key
// holds only some characters.
type narrowStore struct{ *variables.MemoryStore }

var errNarrow = variables.InvalidNameError("Variable name cannot hold spaces in this store")

func (n narrowStore) Create(ctx context.Context, v variables.Variable) error {
	if containsSpace(v.Name) {
		return errNarrow
	}
	return n.MemoryStore.Create(ctx, v)
}

func (n narrowStore) Update(ctx context.Context, prev, next variables.Variable) error {
	if containsSpace(next.Name) {
		return errNarrow
	}
	return n.MemoryStore.Update(ctx, prev, next)
}

func containsSpace(s string) bool {
	for _, r := range s {
		if r == ' ' {
			return true
		}
	}
	return false
}

// TestInvalidNameErrorIsAnOutcome: a store's InvalidNameError reaches the
// caller as a validation error (HTTP 400 with its message), not as the
// store being unavailable, from Create and Update.
func TestInvalidNameErrorIsAnOutcome(t *testing.T) {
	ctx := context.Background()
	svc := newService(t, narrowStore{variables.NewMemoryStore()})
	_, err := svc.Create(ctx, "u1", variables.CreateInput{Name: "MY KEY", Value: "secret value"})
	check := func(err error) {
		t.Helper()
		require.Error(t, err)
		assert.ErrorIs(t, err, variables.ErrInvalidName)
		assert.NotErrorIs(t, err, variables.ErrUnavailable)
		var ve *variables.ValidationError
		require.True(t, errors.As(err, &ve))
		assert.Equal(t, "Variable name cannot hold spaces in this store", ve.Message)
		assert.NotContains(t, err.Error(), "secret value")
	}
	check(err)

	v, err := svc.Create(ctx, "u1", variables.CreateInput{Name: "MY_KEY", Value: "secret value"})
	require.NoError(t, err)
	name := "MY KEY"
	_, err = svc.Update(ctx, "u1", v.ID, variables.Patch{Name: &name})
	check(err)
}
