package faults

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/examples/loadtest/loadgen"
)

// killBackend is a database the SIGKILL scenarios run on.
type killBackend struct {
	name string
	// open returns the --database-url of an instance named name, the
	// database seen by the test, and whether it is PostgreSQL.
	open func(t *testing.T) (dbURL func(name string) string, db *sql.DB, pg *pgDatabase)
}

var killBackends = []killBackend{
	{"postgres", func(t *testing.T) (func(string) string, *sql.DB, *pgDatabase) {
		p := newPGDatabase(t)
		return func(name string) string { return p.url(t, name, nil) }, p.db, p
	}},
	{"sqlite", func(t *testing.T) (func(string) string, *sql.DB, *pgDatabase) {
		path := filepath.Join(t.TempDir(), "keyflow.db")
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
		require.NoError(t, err)
		t.Cleanup(func() { _ = db.Close() })
		return func(string) string { return "sqlite:///" + path }, db, nil
	}},
}

// holdFlush makes the instance's next usage flush wait, on a lock the test
// holds, and returns when the flush is waiting (or, on SQLite, when the
// request that flushes has been held for a while), with the function that
// lets it go.
func holdFlush(t *testing.T, in *instance, db *sql.DB, pg *pgDatabase, admin, keyID string) (release func()) {
	t.Helper()
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	require.NoError(t, err)
	if pg != nil {
		_, err = conn.ExecContext(ctx, "BEGIN")
		require.NoError(t, err)
		_, err = conn.ExecContext(ctx, "SELECT id FROM apikey WHERE id = $1 FOR UPDATE", keyID)
	} else {
		_, err = conn.ExecContext(ctx, "BEGIN IMMEDIATE") // SQLite's write lock
	}
	require.NoError(t, err)
	release = func() {
		_, _ = conn.ExecContext(ctx, "ROLLBACK")
		_ = conn.Close()
	}
	// GET /api/v1/api_key/ writes the instance's pending counts first.
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		_, _, _ = call(http.MethodGet, in.URL()+"/api/v1/api_key/", admin, "")
	}()
	if pg != nil {
		_, ok := waitFor(10*time.Second, func() bool {
			var n int
			require.NoError(t, pg.admin.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE application_name = $1
				AND wait_event_type = 'Lock' AND query LIKE 'UPDATE apikey SET total_uses%'`, pg.app(in.name)).Scan(&n))
			return n > 0
		})
		require.True(t, ok, "the flush does not wait on the lock")
	} else {
		select {
		case <-answered:
			t.Fatal("the flush did not wait for SQLite's write lock")
		case <-time.After(500 * time.Millisecond):
		}
	}
	return release
}

// TestKillDuringUsageFlush: an instance under load is killed (SIGKILL)
// while its usage flush is held mid-transaction by a lock the test holds.
// The flush's transaction is lost whole, never in part; the uses lost are
// at most those the instance acknowledged since its last completed flush
// (one flush interval, 10 s, before the held flush began, plus the time it
// was held); the database stays consistent (SQLite: integrity_check), and
// the instance, started again, serves every key.
func TestKillDuringUsageFlush(t *testing.T) {
	bin := buildServer(t)
	for _, b := range killBackends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			dbURL, db, pg := b.open(t)
			in := newInstance(t, "a", bin, dbURL("a"))
			admin := in.adminKey()
			in.start()
			keys := mustCreateKeys(t, in.URL(), admin, "load", 8)
			ids := map[string]string{}
			for _, k := range keys {
				ids[k.Key] = k.ID
			}
			rec := newRecorder(keys)
			var killedAt time.Time
			var killMu sync.Mutex
			rec.transport = func(s loadgen.Sample) bool { // no answer: only from the killed process
				killMu.Lock()
				defer killMu.Unlock()
				return !killedAt.IsZero() && !s.Start.Add(s.Latency).Before(killedAt)
			}
			stopLoad := startLoad(t, rec, 4, in.URL())
			waitForTraffic(t, rec, 300, in.URL())
			// A periodic flush has completed: some uses are in the database.
			_, ok := waitFor(2*flushInterval, func() bool {
				var n int64
				require.NoError(t, db.QueryRow("SELECT COALESCE(SUM(total_uses), 0) FROM apikey").Scan(&n))
				return n > 0
			})
			require.True(t, ok, "no periodic flush")
			flushed := time.Now()
			before := usage(t, db)

			held := time.Now()
			release := holdFlush(t, in, db, pg, admin, keys[0].ID)
			waiting := time.Since(held)
			killMu.Lock()
			killedAt = time.Now()
			killMu.Unlock()
			in.kill()
			release()
			stopLoad()
			if pg != nil {
				_, ok := waitFor(10*time.Second, func() bool { return pg.sessions(t, in.name, false) == 0 })
				require.True(t, ok, "the killed instance's sessions end")
			} else {
				assert.Equal(t, "ok", integrityCheck(t, dbPathOf(dbURL("a"))))
			}
			requireNoViolations(t, rec)

			stored := usage(t, db)
			counts, _, _, _ := rec.snapshot()
			var acked, inDB, lost, failed int64
			for key, id := range ids {
				c := counts[key]
				acked += c.ok
				inDB += stored[id]
				failed += c.failed
				lost += max(c.ok-stored[id], 0)
				assert.LessOrEqual(t, stored[id], c.ok+c.failed, "key %s: more uses than requests", id)
			}
			// The held flush is lost whole, never in part: the database
			// holds what the last completed flush wrote.
			assert.Equal(t, before, stored, "the killed flush changed nothing")
			// The bound: what the instance acknowledged since its last
			// completed flush (seen at flushed; its counts were taken a
			// moment before it committed).
			bound := rec.okSince(flushed.Add(-time.Second))
			assert.LessOrEqual(t, lost, bound, "uses lost beyond what was not flushed")

			in.start() // the same config dir and database
			for _, k := range keys {
				code, body, err := call(http.MethodGet, in.URL()+"/api/v1/flows/", k.Key, "")
				require.NoError(t, err)
				assert.Equal(t, http.StatusOK, code, "%s", body)
			}
			in.stop()
			in.requireNoPanic()
			result(t, "flush held %v, then SIGKILL: %d acknowledged uses, %d in the database, %d lost (bound: %d acknowledged since the last completed flush); "+
				"%d requests without an answer; the instance restarts and serves every key",
				waiting.Round(time.Millisecond), acked, inDB, lost, bound, failed)
		})
	}
}

// okSince counts the 2xx begun at or after since.
func (r *recorder) okSince(since time.Time) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.okAfter(since)
}

// dbPathOf is the file of an sqlite:/// database URL.
func dbPathOf(u string) string { return u[len("sqlite:///"):] }

// TestKillDuringKeyCreation: an instance creating keys through its API
// from four clients at once is killed (SIGKILL) at a random moment, -faults.kills
// times. Every key whose creation was answered works afterwards; every key
// row in the database is whole (hash, prefix, length, an existing owner, its
// change-log entry), and there are no more rows than creations answered
// plus those cut off by the kill (complete rows whose key nobody saw: unusable).
func TestKillDuringKeyCreation(t *testing.T) {
	bin := buildServer(t)
	for _, b := range killBackends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			dbURL, db, _ := b.open(t)
			in := newInstance(t, "a", bin, dbURL("a"))
			admin := in.adminKey()
			var (
				mu      sync.Mutex
				acked   []createdKey
				inDoubt int
			)
			for round := range *killsFlag {
				in.start()
				base := in.URL()
				stop := make(chan struct{})
				var wg sync.WaitGroup
				var roundAcked int
				for c := range 4 {
					wg.Go(func() {
						for i := 0; ; i++ {
							select {
							case <-stop:
								return
							default:
							}
							k, code, err := createKey(base, admin, fmt.Sprintf("kill-%d-%d-%d", round, c, i))
							mu.Lock()
							switch {
							case err == nil && code == http.StatusOK:
								acked = append(acked, k)
								roundAcked++
							case err != nil: // the process died under it
								inDoubt++
								mu.Unlock()
								return
							default:
								t.Errorf("creation answered %d", code)
							}
							mu.Unlock()
						}
					})
				}
				_, ok := waitFor(10*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return roundAcked >= 3 })
				require.True(t, ok)
				time.Sleep(rand.N(300 * time.Millisecond))
				in.kill()
				close(stop)
				wg.Wait()
				if b.name == "sqlite" {
					require.Equal(t, "ok", integrityCheck(t, dbPathOf(dbURL("a"))), "round %d", round)
				}
			}

			in.start()
			for _, k := range acked {
				code, body, err := call(http.MethodGet, in.URL()+"/api/v1/flows/", k.Key, "")
				require.NoError(t, err)
				require.Equal(t, http.StatusOK, code, "an answered creation's key: %s", body)
			}
			in.stop()
			in.requireNoPanic()

			var rows, whole int
			require.NoError(t, db.QueryRow(`SELECT count(*) FROM apikey WHERE name LIKE 'kill-%'`).Scan(&rows))
			require.NoError(t, db.QueryRow(`SELECT count(*) FROM apikey k WHERE name LIKE 'kill-%'
				AND length(k.api_key_hash) = 64 AND k.prefix <> '' AND k.key_length > 0
				AND EXISTS (SELECT 1 FROM users u WHERE u.id = k.user_id)
				AND EXISTS (SELECT 1 FROM apikey_changes c WHERE c.api_key_hash = k.api_key_hash)`).Scan(&whole))
			assert.Equal(t, rows, whole, "every key row is whole")
			assert.GreaterOrEqual(t, rows, len(acked))
			assert.LessOrEqual(t, rows, len(acked)+inDoubt, "no more keys than creations answered or cut off")
			result(t, "%d kills during key creation: %d creations answered (all work), %d cut off; %d key rows, all whole (%d complete but never shown)",
				*killsFlag, len(acked), inDoubt, rows, rows-len(acked))
		})
	}
}
