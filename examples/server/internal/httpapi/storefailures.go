package httpapi

import (
	"context"
	"log/slog"
	"sync"

	"github.com/keyflow-dev/keyflow/faillog"
)

// storeFailures holds one faillog.Log per logger and operation, so that
// during an outage StoreUnavailable writes, for each operation, the first
// failure at once with its cause, then one summary every 10 s with the
// count and the latest cause, instead of one line per request. Each server
// (each logger) has its own runs.
var storeFailures sync.Map // failureKind → *faillog.Log

type failureKind struct {
	log *slog.Logger
	op  string
}

// logStoreFailure logs (or counts) one failure of op on log.
func logStoreFailure(ctx context.Context, log *slog.Logger, op string, args ...any) {
	k := failureKind{log, op}
	l, ok := storeFailures.Load(k)
	if !ok {
		l, _ = storeFailures.LoadOrStore(k, faillog.New("database unavailable", 0))
	}
	l.(*faillog.Log).Failure(ctx, log, append([]any{"op", op}, args...)...)
}
