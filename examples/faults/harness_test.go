package faults

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/keyflowtest/dbtest"
)

// The long form (scripts/faults.sh) sets these; the defaults are CI's short
// form.
var (
	outageFlag = flag.Duration("faults.outage", 3*time.Second, "how long PostgreSQL stays away, and how long connections are cut at random")
	soakFlag   = flag.Duration("faults.soak", 60*time.Second, "how long the soak runs")
	killsFlag  = flag.Int("faults.kills", 3, "SIGKILLs per key-creation scenario")
)

// Bounds the suite holds the server to (docs/faults.md states them).
const (
	// revocationBound: a key revoked on one instance is refused by the
	// others within it (the server's --change-max-lag default).
	revocationBound = time.Second
	// trustBound: during an outage, a cached key is served for at most
	// this long after the database went away (revocationBound, plus a poll
	// begun just before the cut).
	trustBound = 1100 * time.Millisecond
	// recoveryBound: an instance serves again within it after the
	// database is back, by itself.
	recoveryBound = 2 * time.Second
	// listenBound: an instance listens for notifications again within it
	// after the database is back (1 s of backoff at most, plus the
	// connection's set-up on a busy machine).
	listenBound = 1500 * time.Millisecond
	// flushInterval is the server's usage flush interval (apikey's default).
	flushInterval = 10 * time.Second
)

// errorLinesBound is how many Error lines an instance may write for one
// outage of -faults.outage: for each kind of failing operation (at most
// four under this load: key check, key user check, the handler's query, a
// management write), the first at once, one summary per 10 s, and one
// written after the outage.
func errorLinesBound() int { return 4 * (2 + int(*outageFlag/(10*time.Second))) }

// sharedSecret is every instance's LANGFLOW_SECRET_KEY.
const sharedSecret = "faults-suite-shared-secret-0123456789abcdef"

// Messages of the documented 503s (the key middleware's, the key and
// variable APIs', the server's own handlers').
var documented503 = map[string]bool{
	`{"detail":"Authentication service unavailable"}`:    true,
	`{"detail":"API key store unavailable"}`:             true,
	`{"detail":"Variable store unavailable"}`:            true,
	`{"detail":"Database unavailable, try again later"}`: true,
}

var serverBin struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if serverBin.dir != "" {
		_ = os.RemoveAll(serverBin.dir)
	}
	os.Exit(code)
}

// buildServer builds the reference server once per test run (with the race
// detector when KEYFLOW_FAULTS_RACE=1).
func buildServer(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("the fault suite builds and runs the server")
	}
	b := &serverBin
	b.once.Do(func() {
		if b.dir, b.err = os.MkdirTemp("", "keyflow-faults-"); b.err != nil {
			return
		}
		b.path = filepath.Join(b.dir, "keyflow-server")
		args := []string{"build", "-o", b.path}
		if os.Getenv("KEYFLOW_FAULTS_RACE") == "1" {
			args = append(args, "-race")
		}
		if out, err := exec.Command("go", append(args, "github.com/keyflow-dev/keyflow/examples/server")...).CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build: %w: %s", err, out)
		}
	})
	require.NoError(t, b.err)
	return b.path
}

// result logs one measured figure of a scenario; scripts/faults.sh
// collects these lines.
func result(t *testing.T, format string, args ...any) {
	t.Helper()
	t.Logf("RESULT %s: %s", t.Name(), fmt.Sprintf(format, args...))
}

// logLine is one line of an instance's stderr, with when it arrived.
type logLine struct {
	at   time.Time
	text string
}

// instance is one reference server process (`server run`) and its config
// dir; it can be killed and started again on the same dir and database.
type instance struct {
	t     *testing.T
	name  string
	bin   string
	dir   string // config dir
	dbURL string // --database-url
	debug bool   // serve --debug-addr

	mu    sync.Mutex
	lines []logLine
	cmd   *exec.Cmd
	done  chan struct{}
	url   string
	dbg   string // debug endpoint base URL
}

var (
	readyRe = regexp.MustCompile(`keyflow listening on (http://\S+?)"?$`)
	debugRe = regexp.MustCompile(`on (http://[^/\s"]+)/debug/pprof/`)
	keyRe   = regexp.MustCompile(`^sk-[A-Za-z0-9_-]{43}$`)
)

func newInstance(t *testing.T, name, bin, dbURL string) *instance {
	return &instance{t: t, name: name, bin: bin, dir: t.TempDir(), dbURL: dbURL}
}

func (in *instance) env() []string {
	return []string{"HOME=" + in.dir, "PATH=/usr/bin:/bin", "LANGFLOW_SECRET_KEY=" + sharedSecret, "LANGFLOW_AUTO_LOGIN=false"}
}

func (in *instance) common() []string {
	return []string{"--config-dir", in.dir, "--database-url", in.dbURL}
}

// cli runs a subcommand to completion and returns its stdout.
func (in *instance) cli(args ...string) string {
	in.t.Helper()
	cmd := exec.Command(in.bin, append(args, in.common()...)...)
	cmd.Env = in.env()
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	require.NoError(in.t, cmd.Run(), "%s %v: %s", in.name, args, errOut.String())
	return out.String()
}

// adminKey creates a key for the superuser with the CLI.
func (in *instance) adminKey() string {
	in.t.Helper()
	key := strings.TrimSpace(in.cli("api-key"))
	require.Regexp(in.t, keyRe, key)
	return key
}

// start runs `server run` and waits until it is ready.
func (in *instance) start() {
	in.t.Helper()
	args := append([]string{"run", "--port", "0"}, in.common()...)
	if in.debug {
		args = append(args, "--debug-addr", "127.0.0.1:0")
	}
	cmd := exec.Command(in.bin, args...)
	cmd.Env = in.env()
	stderr, err := cmd.StderrPipe()
	require.NoError(in.t, err)
	require.NoError(in.t, cmd.Start())
	done := make(chan struct{})
	ready := make(chan string, 1)
	in.mu.Lock()
	in.cmd, in.done, in.url, in.dbg = cmd, done, "", ""
	in.mu.Unlock()
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			line := sc.Text()
			in.mu.Lock()
			in.lines = append(in.lines, logLine{time.Now(), line})
			if m := debugRe.FindStringSubmatch(line); m != nil {
				in.dbg = m[1]
			}
			in.mu.Unlock()
			if m := readyRe.FindStringSubmatch(line); m != nil {
				ready <- m[1]
			}
		}
	}()
	in.t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-done
			_ = cmd.Wait()
		}
	})
	select {
	case u := <-ready:
		in.mu.Lock()
		in.url = u
		in.mu.Unlock()
	case <-done:
		_ = cmd.Wait()
		in.t.Fatalf("%s exited before it was ready:\n%s", in.name, in.logText())
	case <-time.After(30 * time.Second):
		in.t.Fatalf("%s not ready after 30 s:\n%s", in.name, in.logText())
	}
}

// URL is the instance's base URL (of its current process).
func (in *instance) URL() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.url
}

func (in *instance) pid() int { return in.cmd.Process.Pid }

// stop sends SIGTERM and requires a clean exit (which flushes usage).
func (in *instance) stop() {
	in.t.Helper()
	require.NoError(in.t, in.cmd.Process.Signal(syscall.SIGTERM))
	<-in.done
	require.NoError(in.t, in.cmd.Wait(), "%s exit:\n%s", in.name, in.logText())
}

// kill sends SIGKILL and waits for the process to be gone.
func (in *instance) kill() {
	in.t.Helper()
	require.NoError(in.t, in.cmd.Process.Signal(syscall.SIGKILL))
	<-in.done
	_ = in.cmd.Wait()
}

func (in *instance) logText() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	var b strings.Builder
	for _, l := range in.lines {
		b.WriteString(l.text + "\n")
	}
	return b.String()
}

// errorLines returns the Error lines logged so far.
func (in *instance) errorLines() []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	var out []string
	for _, l := range in.lines {
		if strings.Contains(l.text, "level=ERROR") {
			out = append(out, l.text)
		}
	}
	return out
}

// requireNoPanic fails on a Go panic or fatal error in the instance's log.
func (in *instance) requireNoPanic() {
	in.t.Helper()
	text := in.logText()
	for _, bad := range []string{"panic:", "fatal error:", "goroutine "} {
		require.NotContains(in.t, text, bad, "%s:\n%s", in.name, text)
	}
}

// client is the suite's own HTTP client (management requests and probes).
var client = &http.Client{Timeout: 15 * time.Second}

// call sends one request with key and returns the status and body; 0 and
// the error when it fails.
func call(method, u, key, body string) (int, []byte, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("x-api-key", key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = res.Body.Close() }()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, b, err
}

// createdKey is a key made through the API.
type createdKey struct {
	Key string `json:"api_key"`
	ID  string `json:"id"`
}

// createKey creates a key through base's API with the admin key.
func createKey(base, admin, name string) (createdKey, int, error) {
	code, body, err := call(http.MethodPost, base+"/api/v1/api_key/", admin, `{"name":"`+name+`"}`)
	if err != nil || code != http.StatusOK {
		return createdKey{}, code, err
	}
	var k createdKey
	if err := json.Unmarshal(body, &k); err != nil {
		return createdKey{}, code, err
	}
	if !keyRe.MatchString(k.Key) || k.ID == "" {
		return createdKey{}, code, fmt.Errorf("create key: unexpected answer %s", body)
	}
	return k, code, nil
}

// mustCreateKeys creates n keys through base's API.
func mustCreateKeys(t *testing.T, base, admin, prefix string, n int) []createdKey {
	t.Helper()
	keys := make([]createdKey, n)
	for i := range keys {
		k, code, err := createKey(base, admin, fmt.Sprintf("%s-%d", prefix, i))
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, code)
		keys[i] = k
	}
	return keys
}

// revokeUntilDone deletes a key through base's API, retrying (a revocation
// during a fault may be refused with 503) until it is deleted or limit
// passes; it returns when the DELETE that succeeded returned.
func revokeUntilDone(t *testing.T, base, admin, id string, limit time.Duration) (time.Time, []int) {
	t.Helper()
	var codes []int
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		code, body, err := call(http.MethodDelete, base+"/api/v1/api_key/"+id, admin, "")
		codes = append(codes, code)
		if err == nil && code == http.StatusOK {
			return time.Now(), codes
		}
		require.True(t, err != nil || code == http.StatusServiceUnavailable, "revocation answered %d %s", code, body)
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("key not revoked within %v: %v", limit, codes)
	return time.Time{}, nil
}

// pgDatabase is a fresh PostgreSQL schema for one scenario, with an admin
// connection that sees the whole server (pg_stat_activity).
type pgDatabase struct {
	dsn    string // KEYFLOW_TEST_POSTGRES_DSN
	schema string
	db     *sql.DB // search_path = schema
	admin  *sql.DB
	tag    string // prefix of every application_name of this scenario
}

func newPGDatabase(t *testing.T) *pgDatabase {
	t.Helper()
	db, schema := dbtest.PostgresSchema(t)
	dsn := dbtest.PostgresDSN(t)
	admin, err := sql.Open("pgx", dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = admin.Close() })
	return &pgDatabase{dsn: dsn, schema: schema, db: db, admin: admin, tag: fmt.Sprintf("kff%08x", rand.Uint32())}
}

// url returns the --database-url of an instance named name, connecting
// through proxy when it is not nil; application_name tells its sessions.
func (p *pgDatabase) url(t *testing.T, name string, proxy *dbtest.Proxy) string {
	t.Helper()
	u, err := url.Parse(p.dsn)
	require.NoError(t, err)
	q := u.Query()
	q.Set("search_path", p.schema)
	q.Set("application_name", p.app(name))
	q.Set("connect_timeout", "2")
	u.RawQuery = q.Encode()
	if proxy != nil {
		u.Host = proxy.Addr()
	}
	return u.String()
}

func (p *pgDatabase) app(name string) string { return p.tag + "_" + name }

// proxy starts a dbtest.Proxy in front of the PostgreSQL server.
func (p *pgDatabase) proxy(t *testing.T) *dbtest.Proxy {
	u, err := url.Parse(p.dsn)
	require.NoError(t, err)
	return dbtest.NewProxy(t, u.Host)
}

// sessions counts the backends of instance name; listening only those
// whose last statement was LISTEN.
func (p *pgDatabase) sessions(t *testing.T, name string, listening bool) int {
	t.Helper()
	q := "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1"
	if listening {
		q += " AND query LIKE 'LISTEN%'"
	}
	var n int
	require.NoError(t, p.admin.QueryRow(q, p.app(name)).Scan(&n))
	return n
}

// terminate ends every backend of this scenario's instances with
// pg_terminate_backend (what their clients see of a PostgreSQL restart),
// until none is left or limit passes; it returns how many it ended.
func (p *pgDatabase) terminate(t *testing.T, limit time.Duration) int {
	t.Helper()
	total := 0
	deadline := time.Now().Add(limit)
	for {
		var n int
		err := p.admin.QueryRow(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name LIKE $1 AND pid <> pg_backend_pid()`,
			p.tag+"\\_%").Scan(&n)
		require.NoError(t, err)
		total += n
		if n == 0 || time.Now().After(deadline) {
			return total
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// usage reads total_uses of every key.
func usage(t *testing.T, db *sql.DB) map[string]int64 {
	t.Helper()
	rows, err := db.Query("SELECT id, total_uses FROM apikey")
	require.NoError(t, err)
	defer func() { _ = rows.Close() }()
	out := map[string]int64{}
	for rows.Next() {
		var id string
		var n int64
		require.NoError(t, rows.Scan(&id, &n))
		out[id] = n
	}
	require.NoError(t, rows.Err())
	return out
}

// waitFor polls cond every 10 ms until it holds or limit passes, and
// returns how long it took.
func waitFor(limit time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	for {
		if cond() {
			return time.Since(start), true
		}
		if time.Since(start) > limit {
			return time.Since(start), false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// procStats reads a process's resident memory (kB) and open descriptors
// from /proc.
func procStats(t *testing.T, pid int) (rssKB int64, fds int) {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	for line := range strings.SplitSeq(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			rssKB, err = strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			require.NoError(t, err)
		}
	}
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	require.NoError(t, err)
	return rssKB, len(entries)
}

// goroutines reads the instance's goroutine count from its debug endpoint.
func (in *instance) goroutines(ctx context.Context) (int, error) {
	in.mu.Lock()
	base := in.dbg
	in.mu.Unlock()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/debug/pprof/goroutine?debug=1", nil)
	if err != nil {
		return 0, err
	}
	res, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer func() { _ = res.Body.Close() }()
	line, err := bufio.NewReader(res.Body).ReadString('\n')
	if err != nil {
		return 0, err
	}
	var n int
	if _, err := fmt.Sscanf(line, "goroutine profile: total %d", &n); err != nil {
		return 0, fmt.Errorf("goroutine profile: %q: %w", line, err)
	}
	return n, nil
}
