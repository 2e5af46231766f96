package pgnotify_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey/sqlstore"
	"github.com/keyflow-dev/keyflow/apikey/sqlstore/pgnotify"
	"github.com/keyflow-dev/keyflow/internal/ids"
	"github.com/keyflow-dev/keyflow/keyflowtest/dbtest"
	"github.com/keyflow-dev/keyflow/sqldialect"
)

// TestListenerBackWithinASecond: the database is unreachable (a proxy
// between the Listener and PostgreSQL closes its connection and refuses
// new ones) long enough for the reconnection backoff to reach its cap; once
// it is reachable again, the Listener is listening again within 1 s (plus
// the connection's set-up), and passes on the changes made from then on.
func TestListenerBackWithinASecond(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := dbtest.PostgresSchema(t)
	s, err := sqlstore.New(ctx, db, sqlstore.Config{Dialect: sqldialect.Postgres})
	require.NoError(t, err)
	channel, payload := s.Notification()
	proxy, viaProxy := dbtest.ProxyURL(t, dbtest.PostgresDSN(t))
	app := "kfo_" + ids.New()[:8]
	l := newListener(t, pgnotify.Config{ConnString: withApp(t, viaProxy, app), Channel: channel, Payload: payload})
	c, cancel := l.Subscribe()
	defer cancel()
	require.True(t, receive(c, 10*time.Second), "listening")

	for round := range 2 {
		proxy.Cut()
		require.True(t, waitUntil(10*time.Second, func() bool { return len(listening(t, db, app)) == 0 }), "round %d: the session is gone", round)
		// 100 ms doubling: the backoff reaches its cap within 2 s.
		time.Sleep(3 * time.Second)
		select { // drop a signal from before the cut, if any
		case <-c:
		default:
		}
		proxy.Restore()
		back := time.Now()
		require.True(t, receive(c, 10*time.Second), "round %d: a signal after reconnecting", round)
		took := time.Since(back)
		t.Logf("round %d: listening again %v after the database came back", round, took.Round(time.Millisecond))
		// 1 s of backoff at most, plus a connection through the proxy and
		// LISTEN, with room for a busy machine.
		assert.Less(t, took, 1500*time.Millisecond, "round %d", round)
		assert.Len(t, listening(t, db, app), 1)

		_, r := record(t)
		require.NoError(t, s.Insert(ctx, r))
		assert.True(t, receive(c, 10*time.Second), "round %d: a change after reconnecting is signalled", round)
	}
}
