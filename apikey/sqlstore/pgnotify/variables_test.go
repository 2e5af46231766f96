package pgnotify_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey/sqlstore/pgnotify"
	"github.com/keyflow-dev/keyflow/internal/ids"
	"github.com/keyflow-dev/keyflow/keyflowtest/dbtest"
	"github.com/keyflow-dev/keyflow/keyflowtest/revoketest"
	"github.com/keyflow-dev/keyflow/secrets"
	"github.com/keyflow-dev/keyflow/sqldialect"
	"github.com/keyflow-dev/keyflow/variables"
	varsql "github.com/keyflow-dev/keyflow/variables/sqlstore"
)

// TestVariablesPush: variables/sqlstore's trigger notifies on its own
// channel in the transaction of every change, a Listener on that channel
// signals, and a Service caching through the feed with that Listener as its
// ChangesNotifier sees a variable changed through another Service well
// before its next poll would (the poll interval is set just under the
// bound), and within the bound in any case.
func TestVariablesPush(t *testing.T) {
	t.Parallel()
	db, _ := dbtest.PostgresSchema(t)
	ctx := context.Background()
	s, err := varsql.New(ctx, db, varsql.Config{Dialect: sqldialect.Postgres})
	require.NoError(t, err)
	channel, payload := s.Notification()
	assert.Equal(t, "variable_changes", channel)
	assert.True(t, strings.HasPrefix(payload, "t_"), "the payload is the test's schema, %q", payload)
	l := newListener(t, pgnotify.Config{ConnString: withApp(t, dbtest.PostgresDSN(t), "kfv_"+ids.New()[:8]), Channel: channel, Payload: payload})
	signals, cancel := l.Subscribe()
	defer cancel()
	require.True(t, receive(signals, 10*time.Second), "a signal once connected")

	keyring, err := secrets.NewKeyring("pgnotify-variables-push-secret")
	require.NoError(t, err)
	const maxLag = time.Second
	newService := func(notifier variables.ChangeNotifier) (*variables.Service, *variables.Resolver) {
		svc, err := variables.NewService(variables.ServiceConfig{Store: s, Keyring: keyring, Logger: quiet,
			Changes: s, ChangesNotifier: notifier, ChangesMaxLag: maxLag, ChangesPollInterval: 900 * time.Millisecond})
		require.NoError(t, err)
		t.Cleanup(func() { _ = svc.Close() })
		r, err := variables.NewResolver(variables.ResolverConfig{Service: svc, EnvFallback: variables.EnvFallbackOff})
		require.NoError(t, err)
		return svc, r
	}
	a, _ := newService(nil)
	_, rb := newService(l)
	fields := []variables.Field{{Name: "api_key", Variable: "PUSHED"}}
	value := func() string {
		res, err := rb.Resolve(ctx, "u", fields, nil)
		require.NoError(t, err)
		return res[0].Value
	}
	v, err := a.Create(ctx, "u", variables.CreateInput{Name: "PUSHED", Value: "before"})
	require.NoError(t, err)
	assert.True(t, receive(signals, 10*time.Second), "the create notified")
	require.Eventually(t, func() bool { return value() == "before" }, 10*time.Second, time.Millisecond)

	_, err = a.Update(ctx, "u", v.ID, variables.Patch{Value: ptr("after")})
	require.NoError(t, err)
	changed := time.Now()
	w := revoketest.Until(10*time.Second, func() bool { return value() == "after" })
	require.True(t, w.Refused, "B never saw the change")
	assert.Less(t, w.AcceptedAfter(changed), maxLag, "the bound")
	t.Logf("change pushed to B in %v", w.SeenAt.Sub(changed).Round(time.Millisecond))
}

func ptr[T any](v T) *T { return &v }
