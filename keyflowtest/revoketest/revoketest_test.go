package revoketest_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/keyflow-dev/keyflow/keyflowtest/revoketest"
)

func TestUntil(t *testing.T) {
	t.Parallel()
	revoked := time.Now()
	calls := 0
	w := revoketest.Until(time.Minute, func() bool { calls++; return calls == 3 })
	assert.True(t, w.Refused)
	assert.False(t, w.SeenAt.Before(w.LastAcceptBegan))
	assert.Greater(t, w.AcceptedAfter(revoked), time.Duration(0), "two calls accepted after the revocation")

	w = revoketest.Until(time.Minute, func() bool { return true })
	assert.True(t, w.Refused)
	assert.True(t, w.LastAcceptBegan.IsZero())
	assert.Zero(t, w.AcceptedAfter(revoked))

	w = revoketest.Until(5*time.Millisecond, func() bool { return false })
	assert.False(t, w.Refused, "never refused: the limit ends the watch")

	assert.Zero(t, revoketest.Watch{LastAcceptBegan: revoked.Add(-time.Second)}.AcceptedAfter(revoked),
		"an acceptance before the revocation returned does not count")
}
