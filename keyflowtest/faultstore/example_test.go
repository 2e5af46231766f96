package faultstore_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/keyflowtest/faultstore"
)

// A Manager over a store that fails: verification fails closed.
func Example() {
	inj := faultstore.New(1)
	keys, _ := apikey.NewManager(apikey.Config{
		Store:     faultstore.Keys(apikey.NewMemoryStore(), inj),
		CacheSize: -1, // every Verify reads the store
	})
	defer keys.Close()
	ctx := context.Background()
	key, _, _ := keys.Create(ctx, "user-1", "demo", apikey.CreateOptions{})

	inj.Only("ByHash")
	inj.FailNext(1)
	_, err := keys.Verify(ctx, key)
	fmt.Println(errors.Is(err, apikey.ErrUnavailable), errors.Is(err, faultstore.ErrInjected))

	p, err := keys.Verify(ctx, key) // the store is back
	fmt.Println(p.UserID, err)
	// Output:
	// true true
	// user-1 <nil>
}
