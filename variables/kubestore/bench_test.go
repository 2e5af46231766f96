package kubestore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/internal/ids"
	"github.com/keyflow-dev/keyflow/variables"
	"github.com/keyflow-dev/keyflow/variables/kubestore"
)

// BenchmarkStore measures the Store's calls on a real API server over
// loopback (TLS, token authentication, RBAC), for a user with 20 variables:
// a read is one GET of the user's Secret, a write a GET and a PUT.
func BenchmarkStore(b *testing.B) {
	srv := sharedServer(b)
	ns := newNamespace(b, srv)
	store, err := kubestore.New(kubestore.Config{Client: adminClient(b, srv), Namespace: ns, EncryptCredentials: true})
	require.NoError(b, err)
	ctx := context.Background()
	user := ids.New()
	var last variables.Variable
	for i := range 20 {
		last = variables.Variable{ID: ids.New(), UserID: user, Name: fmt.Sprintf("VAR_%02d", i),
			Value: "value", Type: variables.Generic, CreatedAt: time.Now().UTC(), Origin: variables.OriginUser}
		require.NoError(b, store.Create(ctx, last))
	}
	b.Run("ListByUser", func(b *testing.B) {
		for b.Loop() {
			if _, err := store.ListByUser(ctx, user); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("GetByName", func(b *testing.B) {
		for b.Loop() {
			if _, err := store.GetByName(ctx, user, "VAR_07"); err != nil {
				b.Fatal(err)
			}
		}
	})
	prev := last // as stored: b.Run calls the function again with a larger b.N
	b.Run("Update", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			next := prev
			next.Value = fmt.Sprintf("value-%d", i)
			next.UpdatedAt = time.Now().UTC().Truncate(time.Microsecond)
			if err := store.Update(ctx, prev, next); err != nil {
				b.Fatal(err)
			}
			prev = next
		}
	})
}
