package faults

import (
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/keyflowtest/dbtest"
)

// pgRig is two instances on one PostgreSQL schema, each behind its own
// proxy, under load, with keys to revoke before and after the fault.
type pgRig struct {
	db      *pgDatabase
	proxies []*dbtest.Proxy
	inst    []*instance
	admin   string
	ids     map[string]string // key → id, of the load's keys
	before  createdKey        // revoked before the fault
	after   createdKey        // revoked during or after it
	rec     *recorder
	stop    func()
}

func newPGRig(t *testing.T) *pgRig {
	t.Helper()
	bin := buildServer(t)
	g := &pgRig{db: newPGDatabase(t), ids: map[string]string{}}
	for _, name := range []string{"a", "b"} {
		p := g.db.proxy(t)
		g.proxies = append(g.proxies, p)
		g.inst = append(g.inst, newInstance(t, name, bin, g.db.url(t, name, p)))
	}
	g.admin = g.inst[0].adminKey()
	for _, in := range g.inst {
		in.start()
	}
	keys := mustCreateKeys(t, g.inst[0].URL(), g.admin, "load", 12)
	g.before, g.after = keys[10], keys[11]
	for _, k := range keys {
		g.ids[k.Key] = k.ID
	}
	g.rec = newRecorder(keys)
	load := startLoad(t, g.rec, 8, g.inst[0].URL(), g.inst[1].URL())
	g.stop = func() { load() }
	waitForTraffic(t, g.rec, 500, g.inst[0].URL(), g.inst[1].URL())

	// Revoked on A before the fault: never a 2xx on A from now, nor on B
	// from 1 s on (the recorder checks every answer).
	g.rec.startRevoking(g.before.Key)
	at, _ := revokeUntilDone(t, g.inst[0].URL(), g.admin, g.before.ID, 5*time.Second)
	g.rec.revokedAt(g.before.Key, g.inst[0].URL(), at)
	return g
}

// revokeAfter revokes g.after through A (retrying while A answers 503)
// and measures when B refuses it.
func (g *pgRig) revokeAfter(t *testing.T) time.Duration {
	t.Helper()
	g.rec.startRevoking(g.after.Key)
	at, codes := revokeUntilDone(t, g.inst[0].URL(), g.admin, g.after.ID, 15*time.Second)
	g.rec.revokedAt(g.after.Key, g.inst[0].URL(), at)
	seen, ok := waitFor(5*time.Second, func() bool {
		code, _, _ := call(http.MethodGet, g.inst[1].URL()+"/api/v1/flows/", g.after.Key, "")
		return code == http.StatusForbidden
	})
	require.True(t, ok, "B still accepts a key revoked on A (DELETE attempts: %v)", codes)
	assert.Less(t, seen, revocationBound, "B refuses a key revoked on A within the bound")
	return seen
}

// recovery waits until every instance has served a 2xx begun after the
// fault ended, and listens for notifications again; it returns the
// slowest of each.
func (g *pgRig) recovery(t *testing.T, back time.Time) (serve, listen time.Duration) {
	t.Helper()
	for _, in := range g.inst {
		_, ok := waitFor(10*time.Second, func() bool { _, ok := g.rec.recovered(in.URL()); return ok })
		require.True(t, ok, "%s does not recover by itself", in.name)
		at, _ := g.rec.recovered(in.URL())
		serve = max(serve, at.Sub(back))
	}
	for _, in := range g.inst {
		// One listening session for the key table's notifications, one for
		// the variable table's.
		_, ok := waitFor(10*time.Second, func() bool { return g.db.sessions(t, in.name, true) == 2 })
		require.True(t, ok, "%s does not listen again", in.name)
		listen = max(listen, time.Since(back))
	}
	return serve, listen
}

// finish stops the load and, gracefully, the instances (which flushes
// their counts), then checks the recorder and the uses in the database.
func (g *pgRig) finish(t *testing.T) (acked, inDB int64) {
	t.Helper()
	g.stop()
	for _, in := range g.inst {
		in.stop()
		in.requireNoPanic()
	}
	requireNoViolations(t, g.rec)
	acked, inDB, lost := usageCheck(t, g.rec, g.ids, usage(t, g.db.db))
	assert.Zero(t, lost, "acknowledged uses lost")
	return acked, inDB
}

// TestPostgresRestart: PostgreSQL restarts under load from two instances,
// as they see it: every session of theirs is terminated
// (pg_terminate_backend) and new connections are refused for
// -faults.outage, then accepted again. The shared PostgreSQL server itself
// keeps running: the proxies make it unreachable for these instances only.
func TestPostgresRestart(t *testing.T) {
	g := newPGRig(t)
	outage := g.rec.fault(true)
	for _, p := range g.proxies {
		p.Refuse()
	}
	ended := g.db.terminate(t, 5*time.Second)
	g.rec.unreachable(outage)
	// A revocation during the outage is refused (503), never half done.
	code, body, err := call(http.MethodDelete, g.inst[0].URL()+"/api/v1/api_key/"+g.after.ID, g.admin, "")
	require.NoError(t, err)
	require.Equal(t, http.StatusServiceUnavailable, code, "%s", body)
	time.Sleep(time.Until(outage.from.Add(*outageFlag)))
	back := g.rec.end(outage)
	g.rec.markRecovery()
	for _, p := range g.proxies {
		p.Restore()
	}
	serve, listen := g.recovery(t, back)
	assert.Less(t, serve, recoveryBound)
	assert.Less(t, listen, listenBound)
	seen := g.revokeAfter(t)
	time.Sleep(time.Second) // traffic after the recovery, the revoked key in it
	errLines := make([]int, len(g.inst))
	for i, in := range g.inst {
		lines := in.errorLines()
		errLines[i] = len(lines)
		assert.LessOrEqual(t, len(lines), errorLinesBound(), "%s logs a few lines per outage, not one per request", in.name)
		t.Logf("%s's Error lines:\n%s", in.name, strings.Join(lines, "\n"))
		if assert.NotEmpty(t, lines, "%s logs the outage", in.name) {
			assert.Contains(t, lines[0], "err=", "the first cause is visible")
		}
	}
	acked, inDB := g.finish(t)
	_, _, status, total := g.rec.snapshot()
	result(t, "outage %v, %d sessions terminated; %d requests (status %v); no 2xx for the revoked key; "+
		"serving again %v and listening again %v after the database was back; a key revoked on A after it refused by B in %v; "+
		"%d acknowledged uses, %d in the database, none lost; Error lines per instance %v",
		*outageFlag, ended, total, status, serve.Round(time.Millisecond), listen.Round(time.Millisecond), seen.Round(time.Millisecond),
		acked, inDB, errLines)
}

// TestPostgresConnectionsCut: for -faults.outage, the proxies between the
// instances and PostgreSQL cut a random connection every 20–120 ms,
// wherever its conversation is (often mid-query). Same promises as a
// restart; a key revoked on A during the cuts is refused by B within the
// bound.
func TestPostgresConnectionsCut(t *testing.T) {
	g := newPGRig(t)
	cuts := g.rec.fault(false)
	dropped := 0
	stopRevoke := make(chan time.Duration, 1)
	go func() {
		time.Sleep(*outageFlag / 2)
		stopRevoke <- 0
	}()
	revokedDuring := false
	var seen time.Duration
	for time.Since(cuts.from) < *outageFlag {
		dropped += g.proxies[rand.IntN(len(g.proxies))].Drop(1)
		select {
		case <-stopRevoke:
			seen = g.revokeAfter(t)
			revokedDuring = true
		default:
		}
		time.Sleep(20*time.Millisecond + rand.N(100*time.Millisecond))
	}
	require.True(t, revokedDuring)
	g.rec.markRecovery()
	back := g.rec.end(cuts)
	serve, listen := g.recovery(t, back)
	assert.Less(t, serve, recoveryBound)
	assert.Less(t, listen, listenBound)
	time.Sleep(time.Second)
	errLines := make([]int, len(g.inst))
	for i, in := range g.inst {
		errLines[i] = len(in.errorLines())
		assert.LessOrEqual(t, errLines[i], errorLinesBound(), "%s", in.name)
	}
	acked, inDB := g.finish(t)
	_, _, status, total := g.rec.snapshot()
	result(t, "%v of cuts, %d connections cut; %d requests (status %v); no 2xx for the revoked key; "+
		"a key revoked on A during the cuts refused by B in %v; serving %v and listening %v after the cuts; "+
		"%d acknowledged uses, %d in the database, none lost; Error lines per instance %v",
		*outageFlag, dropped, total, status, seen.Round(time.Millisecond), serve.Round(time.Millisecond), listen.Round(time.Millisecond),
		acked, inDB, errLines)
}
