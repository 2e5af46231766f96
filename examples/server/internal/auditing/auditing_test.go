package auditing_test

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/audit"
	"github.com/keyflow-dev/keyflow/examples/server/internal/auditing"
	"github.com/keyflow-dev/keyflow/variables"
)

type failingStore struct{ *audit.MemoryStore }

func (failingStore) Append(context.Context, audit.Event) (audit.Event, error) {
	return audit.Event{}, errors.New("disk full")
}

func TestRecord(t *testing.T) {
	store := audit.NewMemoryStore()
	l, err := audit.New(audit.Config{Store: store})
	require.NoError(t, err)
	a := &auditing.Auditor{Log: l}
	r := httptest.NewRequest("POST", "/api/v1/api_key/", nil)
	r.RemoteAddr = "[2001:db8::7]:51234"
	r.Header.Set("User-Agent", "curl/8.5")
	exp := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	key := "sk-ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq"
	rec := apikey.Record{ID: "k1", UserID: "u1", Name: "CI", Prefix: key[:8], Scopes: []string{"run"}, ExpiresAt: &exp}
	target, details := auditing.KeyTarget(rec)
	p := apikey.Principal{UserID: "u1", KeyID: "k0", Source: apikey.SourceDB}
	require.NoError(t, a.Record(r, audit.Event{Action: audit.KeyCreated, Actor: auditing.Actor(p, "alice", ""), Target: target, Details: details}))

	evs, _, err := l.List(context.Background(), audit.Filter{})
	require.NoError(t, err)
	require.Len(t, evs, 1)
	e := evs[0]
	assert.Equal(t, "2001:db8::7", e.ClientIP)
	assert.Equal(t, "curl/8.5", e.UserAgent)
	assert.Equal(t, audit.Success, e.Outcome)
	assert.Equal(t, audit.Actor{UserID: "u1", Username: "alice", KeyID: "k0"}, e.Actor)
	assert.Equal(t, "sk-ABCDE", e.Details["prefix"])
	assert.Equal(t, "run", e.Details["scopes"])

	vt, vd := auditing.VariableTarget(variables.Variable{ID: "v1", UserID: "u1", Name: "OPENAI_API_KEY", Type: variables.Credential, Value: "sk-secret"})
	assert.Equal(t, "OPENAI_API_KEY", vt.Name)
	assert.Equal(t, map[string]string{"type": "Credential"}, vd, "never the value")

	failing, err := audit.New(audit.Config{Store: failingStore{audit.NewMemoryStore()}})
	require.NoError(t, err)
	err = (&auditing.Auditor{Log: failing}).Record(r, audit.Event{Action: audit.KeyDeleted})
	assert.ErrorIs(t, err, audit.ErrUnavailable, "a failure to record fails the action")
}

func TestActorAndSession(t *testing.T) {
	assert.Equal(t, "env-key", auditing.Actor(apikey.Principal{UserID: "su", Source: apikey.SourceEnv}, "langflow", "").Session)
	assert.Equal(t, "auto-login", auditing.Actor(apikey.Principal{UserID: "su", Source: apikey.SourceAutoLogin}, "langflow", "").Session)
	s := auditing.SessionID("eyJhbGciOi.secret.token")
	assert.Regexp(t, `^token:[0-9a-f]{16}$`, s)
	assert.NotContains(t, s, "secret")
	assert.Empty(t, auditing.SessionID(""))
}

func TestVerifyCommand(t *testing.T) {
	store := audit.NewMemoryStore()
	l, err := audit.New(audit.Config{Store: store})
	require.NoError(t, err)
	var out, errOut bytes.Buffer
	assert.Equal(t, 0, auditing.Verify(context.Background(), l, &out, &errOut))
	for range 3 {
		_, err := l.Record(context.Background(), audit.Event{Action: audit.Login, Outcome: audit.Success})
		require.NoError(t, err)
	}
	out.Reset()
	assert.Equal(t, 0, auditing.Verify(context.Background(), l, &out, &errOut))
	assert.Contains(t, out.String(), "intact: 3 events")
	store.Tamper(func(e []audit.Event) []audit.Event { e[1].Actor.Username = "mallory"; return e })
	errOut.Reset()
	assert.Equal(t, 1, auditing.Verify(context.Background(), l, &out, &errOut))
	assert.Contains(t, errOut.String(), "event 2")
}
