package apikey

import (
	"context"
	"sync"
)

// MemoryLimiter is the in-process Limiter, a Manager's default: exact for
// one process (each window counts exactly Limit units), not shared with
// other processes. It is safe for concurrent use; the zero value is ready.
//
// It counts fixed windows rather than using golang.org/x/time/rate: a token
// bucket with burst L and rate L per window accepts up to 2·L within one
// window (a full bucket, then the window's refill), while a fixed window
// accepts at most L in each window, the guarantee the RateLimit header
// fields describe (a remaining count and a reset time). A counter per window
// needs no library.
type MemoryLimiter struct {
	mu    sync.Mutex
	wins  map[memWindow]int64 // units used
	sweep int                 // sweep when the map reaches this size
}

type memWindow struct {
	key, name string
	index     int64
	length    int64
}

// NewMemoryLimiter returns an empty MemoryLimiter.
func NewMemoryLimiter() *MemoryLimiter { return &MemoryLimiter{} }

var _ Limiter = (*MemoryLimiter)(nil)

// Take implements Limiter.
func (l *MemoryLimiter) Take(ctx context.Context, w Window, n int64) (taken, left int64, err error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	k := memWindow{w.KeyID, w.Name, w.Index, int64(w.Length)}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.wins == nil {
		l.wins = make(map[memWindow]int64)
		l.sweep = 1024
	}
	used := l.wins[k]
	taken = min(max(w.Limit-used, 0), max(n, 0))
	used += taken
	if len(l.wins) >= l.sweep {
		l.prune(w)
	}
	l.wins[k] = used
	return taken, w.Limit - used, nil
}

// prune drops the windows that ended before w began (their keys' windows
// of the same length are over; other lengths are judged by their own end
// against w's start). The caller holds l.mu.
func (l *MemoryLimiter) prune(w Window) {
	now := w.Index * int64(w.Length)
	for k := range l.wins {
		if (k.index+1)*k.length <= now {
			delete(l.wins, k)
		}
	}
	l.sweep = max(1024, 2*len(l.wins))
}
