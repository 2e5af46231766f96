package changefeed

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// start follows a feed that reports "a" on every poll after the first, and
// returns what it invalidated and the polls it reported.
func start(t *testing.T, lost error) (*Follower[string], func() ([]string, []Poll)) {
	var (
		mu     sync.Mutex
		forgot []string
		polls  []Poll
	)
	f := Start(Config[string]{
		Feed: func(ctx context.Context, cursor string) ([]string, string, error) {
			if cursor == "" {
				return nil, "1", nil
			}
			return []string{"a"}, "2", lost
		},
		Lost:   errors.New("lost"),
		Every:  time.Millisecond,
		MaxLag: time.Hour,
		Invalidate: func(c []string) {
			mu.Lock()
			forgot = append(forgot, c...)
			mu.Unlock()
		},
		Clear: func() {},
		Log:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Polled: func(p Poll) {
			mu.Lock()
			polls = append(polls, p)
			mu.Unlock()
		},
	})
	t.Cleanup(f.Close)
	return f, func() ([]string, []Poll) {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), forgot...), append([]Poll(nil), polls...)
	}
}

func TestFollowerTrustAndClose(t *testing.T) {
	t.Parallel()
	f, seen := start(t, nil)
	require.Eventually(t, func() bool { forgot, _ := seen(); return len(forgot) > 0 }, 10*time.Second, time.Millisecond)
	assert.True(t, f.Trusted())
	_, polls := seen()
	require.NotEmpty(t, polls)
	assert.NoError(t, polls[0].Err)
	assert.Equal(t, 0, polls[0].Changed)

	f.Stop() // the trust runs out on its own (here: in an hour)
	assert.True(t, f.Trusted())
	f.Close() // nothing trusted any more
	assert.False(t, f.Trusted())
	f.Close()
}

func TestFollowerFailing(t *testing.T) {
	t.Parallel()
	_, seen := start(t, errors.New("down"))
	require.Eventually(t, func() bool {
		_, polls := seen()
		return len(polls) > 1 && polls[len(polls)-1].Err != nil
	}, 10*time.Second, time.Millisecond)
	forgot, _ := seen()
	assert.Empty(t, forgot, "a failed poll applies nothing")
}

func TestFollowerClock(t *testing.T) {
	t.Parallel()
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	polled := make(chan struct{}, 1)
	f := Start(Config[string]{
		Feed: func(context.Context, string) ([]string, string, error) {
			select {
			case polled <- struct{}{}:
			default:
			}
			return nil, "1", nil
		},
		Every:      time.Hour,
		MaxLag:     2 * time.Hour,
		Invalidate: func([]string) {},
		Clear:      func() {},
		Log:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:        func() time.Time { return time.Unix(0, now.Load()) },
	})
	defer f.Close()
	<-polled
	require.Eventually(t, f.Trusted, 10*time.Second, time.Millisecond)
	// The deadline is kept on Config.Now: two hours later on that clock,
	// with no poll since, nothing is trusted.
	now.Add(int64(2 * time.Hour))
	assert.False(t, f.Trusted())
}
