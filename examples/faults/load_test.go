package faults

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/examples/loadtest/loadgen"
)

// startLoad drives urls with the recorder's keys (GET /api/v1/flows/, which
// verifies the key and reads the database) until the returned function is
// called; that function returns the load's result.
func startLoad(t *testing.T, rec *recorder, concurrency int, urls ...string) func() *loadgen.Result {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var res *loadgen.Result
	var err error
	go func() {
		defer close(done)
		res, err = loadgen.Run(ctx, loadgen.Config{URLs: urls, Concurrency: concurrency, Pick: rec.pick, Observe: rec.observe})
	}()
	stopped := false
	stop := func() *loadgen.Result {
		if !stopped {
			stopped = true
			cancel()
			<-done
			require.NoError(t, err)
		}
		return res
	}
	t.Cleanup(func() { cancel(); <-done })
	return stop
}

// waitForTraffic waits until every url has answered n requests with 2xx.
func waitForTraffic(t *testing.T, rec *recorder, n int64, urls ...string) {
	t.Helper()
	rec.markRecovery()
	_, ok := waitFor(30e9, func() bool {
		for _, u := range urls {
			if _, ok := rec.recovered(u); !ok {
				return false
			}
		}
		_, _, status, _ := rec.snapshot()
		return status[200] >= n
	})
	require.True(t, ok, "no steady traffic")
}

// usageCheck compares the uses in the database with the clients' records,
// key by key (ids maps a key to its id; keys not in the database, i.e.
// deleted, are left out). Every acknowledged use (2xx) must be there; more
// is allowed only up to the requests that got a 503 or no answer (a 503
// after the key check is a use; so is a request whose answer was lost).
// It returns the totals.
func usageCheck(t *testing.T, rec *recorder, ids map[string]string, stored map[string]int64) (acked, inDB, lost int64) {
	t.Helper()
	counts, _, _, _ := rec.snapshot()
	for key, id := range ids {
		n, ok := stored[id]
		if !ok {
			continue
		}
		c := counts[key]
		acked += c.ok
		inDB += n
		if n < c.ok {
			lost += c.ok - n
		}
		assert.GreaterOrEqual(t, n, c.ok, "key %s: acknowledged uses missing from the database", id)
		assert.LessOrEqual(t, n, c.ok+c.unavailable+c.failed, "key %s: more uses than requests that could have been counted", id)
	}
	return acked, inDB, lost
}

// requireNoViolations fails with the recorder's violations.
func requireNoViolations(t *testing.T, rec *recorder) {
	t.Helper()
	_, violations, status, total := rec.snapshot()
	require.Empty(t, violations, "%d requests, status %v", total, status)
}
