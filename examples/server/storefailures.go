package main

import (
	"context"
	"log/slog"
	"sync"

	"github.com/keyflow-dev/keyflow/faillog"
)

// storeFailureLog writes the handlers' "database unavailable" Error lines:
// during an outage, the first failure of each operation at once with its
// cause, then one summary every 10 s with the count and the latest cause,
// instead of one line per request (package faillog). The zero value is
// ready to use; it is safe for concurrent use.
type storeFailureLog struct {
	mu   sync.Mutex
	byOp map[string]*faillog.Log
}

// failure logs (or counts) one failure of op; args are slog pairs.
func (s *storeFailureLog) failure(ctx context.Context, log *slog.Logger, op string, args ...any) {
	s.mu.Lock()
	l := s.byOp[op]
	if l == nil {
		if s.byOp == nil {
			s.byOp = map[string]*faillog.Log{}
		}
		l = faillog.New("database unavailable", 0)
		s.byOp[op] = l
	}
	s.mu.Unlock()
	l.Failure(ctx, log, append([]any{"op", op}, args...)...)
}
