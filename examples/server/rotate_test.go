package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/examples/server/internal/cli"
	"github.com/keyflow-dev/keyflow/examples/server/internal/config"
	"github.com/keyflow-dev/keyflow/examples/server/internal/secretfile"
	"github.com/keyflow-dev/keyflow/examples/server/internal/sqldb"
	"github.com/keyflow-dev/keyflow/secrets"
	"github.com/keyflow-dev/keyflow/variables"
)

// noEnv is an environment with nothing set.
func noEnv(string) string { return "" }

// seedCredentials stores n Credential variables for the superuser in the
// SQLite database of config dir dir (created with its secret on the way)
// and returns name → plaintext.
func seedCredentials(t *testing.T, dir string, n int) map[string]string {
	t.Helper()
	a, err := openApp(context.Background(), config.Config{ConfigDir: dir, Getenv: noEnv}, quietLog())
	require.NoError(t, err)
	defer func() { require.NoError(t, a.Close()) }()
	want := make(map[string]string, n)
	for i := range n {
		name, value := fmt.Sprintf("CRED_%03d", i), fmt.Sprintf("sk-value-%03d-%s", i, strings.Repeat("x", i%40))
		_, err := a.Vars.Create(context.Background(), a.Superuser.ID, variables.CreateInput{Name: name, Value: value, Type: variables.Credential})
		require.NoError(t, err)
		want[name] = value
	}
	return want
}

// storedCredentials reads every Credential's stored value (name → token)
// straight from the SQLite database of config dir dir.
func storedCredentials(t *testing.T, dir string) map[string]string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "keyflow.db")+"?_pragma=busy_timeout(5000)")
	require.NoError(t, err)
	defer db.Close()
	rows, err := db.Query(`SELECT name, value FROM variable WHERE type = 'Credential'`)
	require.NoError(t, err)
	defer rows.Close()
	got := map[string]string{}
	for rows.Next() {
		var name, value string
		require.NoError(t, rows.Scan(&name, &value))
		got[name] = value
	}
	require.NoError(t, rows.Err())
	return got
}

// diskKeyring is what a server started now would decrypt with: secret_key
// as the primary and secret_key.new, when present, as a previous secret.
// onlyPrimary leaves secret_key.new out.
func diskKeyring(t *testing.T, dir string, onlyPrimary bool) *secrets.Keyring {
	t.Helper()
	primary, err := secrets.ReadSecretFile(dir)
	require.NoError(t, err, "secret_key must always exist")
	var previous []string
	if !onlyPrimary {
		previous = secretfile.Pending(dir)
	}
	k, err := secrets.NewKeyring(primary, previous...)
	require.NoError(t, err)
	return k
}

// assertEveryValueOpens checks that every seeded value is stored and opens,
// with its plaintext, under k. It reports how many opened with each of the
// two secret files (by trying secret_key alone first).
func assertEveryValueOpens(t *testing.T, dir string, k *secrets.Keyring, want map[string]string) (underPrimary int) {
	t.Helper()
	primaryOnly := diskKeyring(t, dir, true)
	stored := storedCredentials(t, dir)
	require.Len(t, stored, len(want))
	for name, plain := range want {
		got, err := k.Decrypt(stored[name])
		if !assert.NoError(t, err, "%s no longer opens with the secrets on disk", name) {
			continue
		}
		assert.Equal(t, plain, got, name)
		if _, err := primaryOnly.Decrypt(stored[name]); err == nil {
			underPrimary++
		}
	}
	return underPrimary
}

// rotateCmd is one rotate-secret child process on config dir dir.
func rotateCmd(bin, dir string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	cmd := exec.Command(bin, append([]string{"rotate-secret", "--config-dir", dir}, args...)...)
	cmd.Env = []string{"HOME=" + dir, "PATH=/usr/bin:/bin"}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	return cmd, &out
}

// TestRotateSecretKilledAnywhere: rotate-secret is killed (SIGKILL) at
// random points of many runs, reruns alternate between a plain rerun and
// --new-secret with a fresh secret, and after every run each of a few
// hundred Credential values still opens with the secrets on disk
// (secret_key and secret_key.new, what a server loads). A final plain run
// finishes the rotation: every value then opens with secret_key alone.
// KEYFLOW_ROTATE_KILL_RUNS sets the number of runs (default 40); the seed
// is logged, and KEYFLOW_ROTATE_KILL_SEED replays one.
func TestRotateSecretKilledAnywhere(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the server and runs it many times")
	}
	runs := 40
	if v := os.Getenv("KEYFLOW_ROTATE_KILL_RUNS"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err)
		runs = n
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("KEYFLOW_ROTATE_KILL_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		require.NoError(t, err)
		seed = n
	}
	t.Logf("KEYFLOW_ROTATE_KILL_SEED=%d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))

	bin := buildServer(t)
	dir := t.TempDir()
	want := seedCredentials(t, dir, 300)

	// One uninterrupted run, with small batches, to learn how long a run
	// takes; kills land anywhere from the start to a little past that.
	cmd, out := rotateCmd(bin, dir, "--batch-size", "5")
	began := time.Now()
	require.NoError(t, cmd.Run(), out.String())
	full := time.Since(began)
	assert.Equal(t, len(want), assertEveryValueOpens(t, dir, diskKeyring(t, dir, true), want))
	t.Logf("one uninterrupted run: %v", full)

	outcomes := map[string]int{}
	for i := range runs {
		args := []string{"--batch-size", strconv.Itoa(1 + rng.IntN(20))}
		if rng.IntN(3) == 0 {
			args = append(args, "--new-secret", secrets.GenerateSecret())
		}
		cmd, out := rotateCmd(bin, dir, args...)
		require.NoError(t, cmd.Start())
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		select {
		case <-exited:
		case <-time.After(time.Duration(rng.Int64N(int64(full) * 5 / 4))):
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-exited
		}
		outcome := "killed"
		if st := cmd.ProcessState.Sys().(syscall.WaitStatus); !st.Signaled() {
			outcome = "exit " + strconv.Itoa(cmd.ProcessState.ExitCode())
		}
		outcomes[outcome]++
		if outcome == "exit 1" {
			assert.Contains(t, out.String(), "unfinished rotation", "run %d %v: the only refusal expected", i, args)
		}
		under := assertEveryValueOpens(t, dir, diskKeyring(t, dir, false), want)
		if under > 0 && under < len(want) {
			outcomes["left values under both secrets"]++
		}
		if t.Failed() {
			t.Fatalf("run %d (%v, %s) lost values:\n%s", i, args, outcome, out.String())
		}
	}
	t.Logf("outcomes over %d runs: %v", runs, outcomes)
	assert.NotZero(t, outcomes["killed"], "no run was killed: the delays are too long")

	cmd, out = rotateCmd(bin, dir)
	require.NoError(t, cmd.Run(), out.String())
	assert.NoFileExists(t, filepath.Join(dir, "secret_key.new"))
	assert.Equal(t, len(want), assertEveryValueOpens(t, dir, diskKeyring(t, dir, true), want),
		"after a finished rotation every value opens with secret_key alone")
}

// TestRotateSecretRefusesToReplaceAPendingSecret is the sequence:
// a rotation killed after saving its new secret Y, then rotate-secret
// --new-secret X. X must not replace Y; a plain rerun finishes the
// rotation to Y, and then --new-secret X works.
func TestRotateSecretRefusesToReplaceAPendingSecret(t *testing.T) {
	dir := t.TempDir()
	want := seedCredentials(t, dir, 20)
	old, err := secrets.ReadSecretFile(dir)
	require.NoError(t, err)

	// The state a kill leaves: Y pending, half the values under it.
	y := secrets.GenerateSecret()
	require.NoError(t, secretfile.Write(filepath.Join(dir, "secret_key.new"), y))
	both, err := secrets.NewKeyring(y, old)
	require.NoError(t, err)
	a, err := openApp(context.Background(), config.Config{ConfigDir: dir, Getenv: noEnv}, quietLog())
	require.NoError(t, err)
	list, err := a.VarStore.ListCiphertexts(context.Background(), "", 10)
	require.NoError(t, err)
	for _, c := range list {
		tok, err := both.Rotate(c.Token)
		require.NoError(t, err)
		ok, err := a.VarStore.SwapCiphertext(context.Background(), c.ID, c.Token, tok)
		require.NoError(t, err)
		require.True(t, ok)
	}
	require.NoError(t, a.Close())

	x := secrets.GenerateSecret()
	var stdout, stderr bytes.Buffer
	assert.Equal(t, 1, cli.Main([]string{"rotate-secret", "--config-dir", dir, "--new-secret", x}, nil, &stdout, &stderr))
	assert.Contains(t, stderr.String(), "unfinished rotation")
	assert.NotContains(t, stderr.String(), y)
	assert.Equal(t, y, secretfile.Read(filepath.Join(dir, "secret_key.new")), "the pending secret is kept")
	assert.Equal(t, old, secretfile.Read(filepath.Join(dir, "secret_key")))
	assertEveryValueOpens(t, dir, diskKeyring(t, dir, false), want)

	stdout.Reset()
	stderr.Reset()
	require.Equal(t, 0, cli.Main([]string{"rotate-secret", "--config-dir", dir}, nil, &stdout, &stderr), stderr.String())
	assert.Equal(t, "rotate-secret: 10 re-encrypted, 10 already current, 0 failed\n", stdout.String())
	assert.Equal(t, y, secretfile.Read(filepath.Join(dir, "secret_key")))
	assert.Equal(t, len(want), assertEveryValueOpens(t, dir, diskKeyring(t, dir, true), want))

	stderr.Reset()
	require.Equal(t, 0, cli.Main([]string{"rotate-secret", "--config-dir", dir, "--new-secret", x}, nil, &stdout, &stderr), stderr.String())
	assert.Equal(t, x, secretfile.Read(filepath.Join(dir, "secret_key")))
	assert.Equal(t, len(want), assertEveryValueOpens(t, dir, diskKeyring(t, dir, true), want))
}

// TestRotateSecretWhileServing: while a server writes Credential variables
// through the API, rotate-secret refuses to start and changes nothing;
// every value, old and new, still opens. Once the server is stopped the
// rotation runs, and every value opens with the new secret alone.
func TestRotateSecretWhileServing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server")
	}
	bin := buildServer(t)
	dir := t.TempDir()
	want := seedCredentials(t, dir, 50)
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".env"), nil, 0o600))
	e := &e2e{t: t, bin: bin, dir: dir}
	keyOut, errOut, code := e.cli("", nil, "api-key")
	require.Equal(t, 0, code, errOut)
	key := keyRe.FindString(keyOut)
	require.NotEmpty(t, key)
	oldSecret := secretfile.Read(filepath.Join(dir, "secret_key"))

	s := e.start("LANGFLOW_AUTO_LOGIN=false")
	var (
		mu      sync.Mutex
		written = map[string]string{}
		stop    = make(chan struct{})
		wg      sync.WaitGroup
	)
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			name, value := fmt.Sprintf("WRITTEN_%04d", i), fmt.Sprintf("sk-written-%04d", i)
			body, _ := json.Marshal(map[string]any{"name": name, "value": value, "type": "Credential", "default_fields": []string{}})
			req, _ := http.NewRequest(http.MethodPost, s.url+"/api/v1/variables/", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("x-api-key", key)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				continue
			}
			res.Body.Close()
			if res.StatusCode < 300 {
				mu.Lock()
				written[name] = value
				mu.Unlock()
			}
		}
	})
	// Wait until the writer is writing, then try to rotate, a few times.
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(written) >= 5 }, 20*time.Second, 10*time.Millisecond)
	for range 3 {
		out, errOut, code := e.cli("", nil, "rotate-secret")
		assert.Equal(t, 1, code)
		assert.Empty(t, out, "nothing was re-encrypted")
		assert.Contains(t, errOut, "is using this database")
		assert.NoFileExists(t, filepath.Join(dir, "secret_key.new"))
		assert.Equal(t, oldSecret, secretfile.Read(filepath.Join(dir, "secret_key")))
	}
	close(stop)
	wg.Wait()
	s.stop()

	mu.Lock()
	for name, value := range written {
		want[name] = value
	}
	mu.Unlock()
	assertEveryValueOpens(t, dir, diskKeyring(t, dir, false), want)

	out, errOut, code := e.cli("", nil, "rotate-secret")
	require.Equal(t, 0, code, errOut)
	assert.Regexp(t, `^rotate-secret: [1-9]\d* re-encrypted, 0 already current, 0 failed\n$`, out)
	assert.NotEqual(t, oldSecret, secretfile.Read(filepath.Join(dir, "secret_key")))
	assert.Equal(t, len(want), assertEveryValueOpens(t, dir, diskKeyring(t, dir, true), want))
}

// TestDatabaseLock: any number of processes share the database-use lock;
// rotate-secret's exclusive hold excludes them all, and theirs excludes it.
// A server or command cannot start while rotate-secret runs.
func TestDatabaseLock(t *testing.T) {
	dbs := map[string]string{"sqlite": ""}
	if os.Getenv("KEYFLOW_TEST_POSTGRES_DSN") != "" {
		dbs["postgres"] = sharedDatabase(t)
	} else {
		t.Log("KEYFLOW_TEST_POSTGRES_DSN unset: PostgreSQL advisory lock not tested")
	}
	for name, dbURL := range dbs {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			dbc, err := sqldb.ParseURL(dbURL, dir)
			require.NoError(t, err)
			ctx := context.Background()

			r1, locked, err := sqldb.LockForUse(ctx, dbc, false)
			require.NoError(t, err)
			require.True(t, locked)
			r2, _, err := sqldb.LockForUse(ctx, dbc, false)
			require.NoError(t, err, "shared with another user")
			_, _, err = sqldb.LockForUse(ctx, dbc, true)
			require.ErrorIs(t, err, sqldb.ErrDatabaseInUse)
			r1()
			_, _, err = sqldb.LockForUse(ctx, dbc, true)
			require.ErrorIs(t, err, sqldb.ErrDatabaseInUse, "one user is left")
			r2()

			release, _, err := sqldb.LockForUse(ctx, dbc, true)
			require.NoError(t, err)
			_, _, err = sqldb.LockForUse(ctx, dbc, false)
			require.ErrorIs(t, err, sqldb.ErrRotationRunning)
			_, _, err = sqldb.LockForUse(ctx, dbc, true)
			require.ErrorIs(t, err, sqldb.ErrDatabaseInUse)
			args := []string{"api-key", "--config-dir", dir}
			if dbURL != "" {
				args = append(args, "--database-url", dbURL)
			}
			var stdout, stderr bytes.Buffer
			assert.Equal(t, 1, cli.Main(args, nil, &stdout, &stderr))
			assert.Contains(t, stderr.String(), "rotate-secret is re-encrypting")
			release()

			stdout.Reset()
			stderr.Reset()
			assert.Equal(t, 0, cli.Main(args, nil, &stdout, &stderr), stderr.String())
			release, _, err = sqldb.LockForUse(ctx, dbc, true)
			require.NoError(t, err, "released by the command's Close")
			release()
		})
	}
}
