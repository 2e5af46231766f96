package audit_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/audit"
	"github.com/keyflow-dev/keyflow/audit/storetest"
)

func TestMemoryStoreConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) audit.Store { return audit.NewMemoryStore() })
}

func record(t *testing.T, l *audit.Log, n int) {
	t.Helper()
	for i := range n {
		_, err := l.Record(context.Background(), audit.Event{Action: audit.KeyCreated, Outcome: audit.Success,
			Actor: audit.Actor{UserID: "u"}, Target: audit.Target{Type: "api_key", ID: string(rune('a' + i))}})
		require.NoError(t, err)
	}
}

// TestTamperMemory: a changed, deleted, reordered or truncated event is
// reported, naming the first broken one.
func TestTamperMemory(t *testing.T) {
	for _, tc := range []struct {
		name    string
		tamper  func([]audit.Event) []audit.Event
		wantSeq int64
		reason  string
	}{
		{"edit", func(e []audit.Event) []audit.Event { e[2].Target.Name = "other"; return e }, 3, "content"},
		{"edit with a recomputed hash", func(e []audit.Event) []audit.Event {
			e[2].Target.Name = "other"
			e[2].Hash = audit.ComputeHash(e[2])
			return e
		}, 4, "does not follow"},
		{"delete", func(e []audit.Event) []audit.Event { return append(e[:2], e[3:]...) }, 4, "missing"},
		{"reorder", func(e []audit.Event) []audit.Event {
			e[2], e[3] = e[3], e[2]
			e[2].Seq, e[3].Seq = 3, 4
			return e
		}, 3, "does not follow"},
		{"truncate", func(e []audit.Event) []audit.Event { return e[:4] }, 5, "missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := audit.NewMemoryStore()
			l, err := audit.New(audit.Config{Store: store})
			require.NoError(t, err)
			record(t, l, 6)
			_, err = l.Verify(context.Background())
			require.NoError(t, err)
			store.Tamper(tc.tamper)
			_, err = l.Verify(context.Background())
			require.ErrorIs(t, err, audit.ErrBroken)
			var be *audit.BrokenError
			require.ErrorAs(t, err, &be)
			assert.Equal(t, tc.wantSeq, be.Seq)
			assert.Contains(t, be.Reason, tc.reason)
			assert.Contains(t, err.Error(), "event ")
		})
	}
}

func TestRecordValidates(t *testing.T) {
	l, err := audit.New(audit.Config{})
	require.NoError(t, err)
	ctx := context.Background()
	ok := audit.Event{Action: audit.KeyCreated, Outcome: audit.Success}
	for _, tc := range []struct {
		name string
		edit func(e *audit.Event)
	}{
		{"no action", func(e *audit.Event) { e.Action = "" }},
		{"action with a space", func(e *audit.Event) { e.Action = "key created" }},
		{"no outcome", func(e *audit.Event) { e.Outcome = "" }},
		{"a whole key as prefix", func(e *audit.Event) {
			e.Details = map[string]string{"prefix": "sk-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}
		}},
		{"NUL in a name", func(e *audit.Event) { e.Target.Name = "a\x00b" }},
		{"long reason", func(e *audit.Event) { e.Reason = strings.Repeat("x", audit.MaxFieldLen+1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := ok
			tc.edit(&e)
			_, err := l.Record(ctx, e)
			assert.ErrorIs(t, err, audit.ErrInvalidEvent)
		})
	}
	got, err := l.Record(ctx, audit.Event{Action: audit.Login, Outcome: audit.Success, UserAgent: strings.Repeat("é", 400) + "\xff"})
	require.NoError(t, err)
	assert.LessOrEqual(t, len(got.UserAgent), audit.MaxUserAgentLen, "a long user agent is cut")
	assert.True(t, strings.HasPrefix(got.UserAgent, "éé"))
	assert.NotEmpty(t, got.ID)
	assert.False(t, got.Time.IsZero())
}

func TestListPages(t *testing.T) {
	l, err := audit.New(audit.Config{})
	require.NoError(t, err)
	record(t, l, 5)
	ctx := context.Background()
	var seqs []int64
	var cursor int64
	for page := 0; ; page++ {
		require.Less(t, page, 10)
		evs, next, err := l.List(ctx, audit.Filter{Limit: 2, Before: cursor})
		require.NoError(t, err)
		for _, e := range evs {
			seqs = append(seqs, e.Seq)
		}
		if next == 0 {
			break
		}
		cursor = next
	}
	assert.Equal(t, []int64{5, 4, 3, 2, 1}, seqs)
}

func TestPruneByRetention(t *testing.T) {
	now := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	l, err := audit.New(audit.Config{Now: func() time.Time { return now }, Retention: 48 * time.Hour})
	require.NoError(t, err)
	ctx := context.Background()
	for _, age := range []time.Duration{72 * time.Hour, 49 * time.Hour, time.Hour} {
		_, err := l.Record(ctx, audit.Event{Time: now.Add(-age), Action: audit.Login, Outcome: audit.Success})
		require.NoError(t, err)
	}
	n, err := l.Prune(ctx)
	require.NoError(t, err)
	assert.EqualValues(t, 2, n)
	r, err := l.Verify(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, r.Events)
	assert.EqualValues(t, 3, r.First)
}

func ExampleLog_Record() {
	l, _ := audit.New(audit.Config{}) // a memory store; audit/sqlstore for SQL
	ctx := context.Background()
	_, err := l.Record(ctx, audit.Event{
		Action:   audit.KeyCreated,
		Actor:    audit.Actor{UserID: "7f3c…", Username: "alice", Session: "web"},
		Target:   audit.Target{Type: "api_key", ID: "a1b2…", Name: "CI"},
		ClientIP: "203.0.113.9",
		Outcome:  audit.Success,
		Details:  map[string]string{"prefix": "sk-Ab3dE"}, // never the key
	})
	if err != nil {
		// The action must not be reported as done: answer 503.
		return
	}
	r, err := l.Verify(ctx)
	if err != nil {
		return // a *audit.BrokenError names the first broken event
	}
	fmt.Println("events:", r.Events)
	// Output: events: 1
}
