package faillog_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/faillog"
	"github.com/keyflow-dev/keyflow/keyflowtest"
)

func TestLogAggregatesARun(t *testing.T) {
	var out keyflowtest.LogBuffer
	logger := slog.New(slog.NewTextHandler(&out, nil))
	l := faillog.New("store down; answering 503", 50*time.Millisecond)
	ctx := context.Background()

	var wg sync.WaitGroup
	for i := range 1000 {
		wg.Go(func() {
			cause := errors.New("connection refused")
			if i > 0 {
				cause = errors.New("terminating connection due to administrator command")
			}
			l.Failure(ctx, logger, "err", cause)
		})
		if i == 0 {
			wg.Wait() // the first cause is the first failure's
		}
	}
	wg.Wait()
	first := out.Lines()
	require.Len(t, first, 1, "one line at once")
	assert.Contains(t, first[0], "level=ERROR")
	assert.Contains(t, first[0], "connection refused", "the first cause is visible")

	require.Eventually(t, func() bool { return len(out.Lines()) == 3 }, 5*time.Second, 5*time.Millisecond)
	lines := out.Lines()
	assert.Contains(t, lines[1], "level=ERROR")
	assert.Contains(t, lines[1], "repeated=999")
	assert.Contains(t, lines[1], "administrator command", "the latest cause")
	assert.Contains(t, lines[2], "level=INFO")
	assert.Contains(t, lines[2], "failures=1000")

	// A new run starts with a line at once.
	l.Failure(ctx, logger, "err", errors.New("again"))
	lines = out.Lines()
	require.Len(t, lines, 4)
	assert.Contains(t, lines[3], "err=again")
}

func TestLogNegativeIntervalLogsEveryFailure(t *testing.T) {
	var out keyflowtest.LogBuffer
	logger := slog.New(slog.NewTextHandler(&out, nil))
	l := faillog.New("m", -1)
	for range 3 {
		l.Failure(context.Background(), logger, "err", errors.New("x"))
	}
	assert.Len(t, out.Lines(), 3)
}
