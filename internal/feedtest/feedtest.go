// Package feedtest holds the checks that the change-feed conformance suites
// of apikey/storetest and variables/storetest share: draining a feed, and
// polling it while other goroutines write.
package feedtest

import (
	"context"
	"sync"
	"testing"
	"time"
)

// Feed is a change feed of items of type T, as apikey.ChangeFeed (T is
// apikey.Hash) and variables.ChangeFeed (T is a user ID) are.
type Feed[T comparable] interface {
	Changes(ctx context.Context, cursor string) ([]T, string, error)
}

// Drain polls f from cursor until a poll reports nothing, and returns the
// items reported (as a set) and the last cursor. It fails t on an error, an
// empty cursor, or a feed that never runs dry.
func Drain[T comparable](t testing.TB, f Feed[T], cursor string) (map[T]bool, string) {
	t.Helper()
	seen := map[T]bool{}
	for range 1000 {
		items, next, err := f.Changes(context.Background(), cursor)
		if err != nil {
			t.Fatalf("Changes: %v", err)
		}
		if next == "" {
			t.Fatal("Changes returned an empty cursor")
		}
		cursor = next
		if len(items) == 0 {
			return seen, cursor
		}
		for _, it := range items {
			seen[it] = true
		}
	}
	t.Fatal("Changes never ran dry")
	return nil, ""
}

// Concurrent polls f from its current position in one goroutine while four
// others call write(i) for i in [0, n), then drains f, and returns the
// indices i whose item key(i) no poll reported, in increasing order.
func Concurrent[T comparable](t testing.TB, f Feed[T], n int, write func(i int), key func(i int) T) []int {
	t.Helper()
	ctx := context.Background()
	_, cur, err := f.Changes(ctx, "")
	if err != nil {
		t.Fatalf("Changes: %v", err)
	}
	var (
		mu   sync.Mutex
		seen = map[T]bool{}
		done = make(chan struct{})
		wg   sync.WaitGroup
	)
	wg.Go(func() {
		for {
			items, next, err := f.Changes(ctx, cur)
			if err != nil {
				t.Errorf("Changes: %v", err)
				return
			}
			cur = next
			mu.Lock()
			for _, it := range items {
				seen[it] = true
			}
			mu.Unlock()
			select {
			case <-done:
				return
			default:
				time.Sleep(time.Millisecond)
			}
		}
	})
	var writers sync.WaitGroup
	for w := range 4 {
		writers.Go(func() {
			for i := w; i < n; i += 4 {
				write(i)
			}
		})
	}
	writers.Wait()
	close(done)
	wg.Wait()
	rest, _ := Drain(t, f, cur)
	var missed []int
	for i := range n {
		if k := key(i); !seen[k] && !rest[k] {
			missed = append(missed, i)
		}
	}
	return missed
}
