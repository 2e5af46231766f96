package apikey_test

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/keyflow-dev/keyflow/apikey"
)

func ExampleNewManager() {
	// The zero Config: an in-memory store, Langflow's "sk-" keys, a cache,
	// and usage counters flushed every 10 seconds.
	m, err := apikey.NewManager(apikey.Config{})
	if err != nil {
		panic(err)
	}
	defer m.Close() // flushes the usage counters

	key, _, err := m.Create(context.Background(), "user-1", "my key", apikey.CreateOptions{})
	if err != nil {
		panic(err)
	}
	p, err := m.Verify(context.Background(), key)
	fmt.Println(p.UserID, p.KeyName, err)
	// Output: user-1 my key <nil>
}

func ExampleManager_Create() {
	m, _ := apikey.NewManager(apikey.Config{})
	defer m.Close()
	ctx := context.Background()

	key, rec, err := m.Create(ctx, "user-1", "CI", apikey.CreateOptions{Scopes: []string{"flows:run"}})
	if err != nil {
		panic(err)
	}
	// Show key to the user now: only its hash is stored.
	fmt.Println(strings.HasPrefix(key, "sk-"), len(key))
	fmt.Println(rec.Hash == apikey.HashKey(key), rec.Scopes)

	// Listings show the key masked, as Langflow does.
	recs, _ := m.List(ctx, "user-1")
	fmt.Println(recs[0].MaskedKey() == key[:8]+strings.Repeat("*", 38))
	// Output:
	// true 46
	// true [flows:run]
	// true
}

func ExampleManager_Verify() {
	m, _ := apikey.NewManager(apikey.Config{})
	defer m.Close()
	ctx := context.Background()
	key, rec, _ := m.Create(ctx, "user-1", "my key", apikey.CreateOptions{})

	for _, k := range []string{key, "", "sk-not-a-key"} {
		p, err := m.Verify(ctx, k)
		switch {
		case err == nil:
			fmt.Println("ok:", p.UserID, p.KeyName)
		case errors.Is(err, apikey.ErrUnavailable):
			fmt.Println("503: store down") // and log err
		case errors.Is(err, apikey.ErrMissing):
			fmt.Println("no key")
		default: // ErrInvalid, ErrExpired, ErrInactive
			fmt.Println("rejected:", err)
		}
	}

	_ = m.Delete(ctx, "user-1", rec.ID) // revoked at once
	_, err := m.Verify(ctx, key)
	fmt.Println(errors.Is(err, apikey.ErrInvalid))
	// Output:
	// ok: user-1 my key
	// no key
	// rejected: apikey: invalid API key: wrong length
	// true
}

func ExampleNewChecksumFormat() {
	f, err := apikey.NewChecksumFormat("acme")
	if err != nil {
		panic(err)
	}
	key, _ := f.Generate()
	fmt.Println(key[:5], len(key))

	// A mistyped key is rejected without touching the store.
	typo := key[:10] + "!" + key[11:]
	fmt.Println(f.Check(key), errors.Is(f.Check(typo), apikey.ErrInvalid))

	// Accept Langflow's keys too while migrating.
	m, _ := apikey.NewManager(apikey.Config{Format: f, AcceptFormats: []apikey.Format{f, apikey.Langflow}})
	defer m.Close()
	// Output:
	// acme_ 54
	// <nil> true
}
