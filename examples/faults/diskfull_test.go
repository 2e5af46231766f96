package faults

import (
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/keyflowtest/dbtest"
)

// mountSmallDisk mounts a size-limited tmpfs on a new directory and
// unmounts it when the test ends; it skips (fails under CI) where mounting
// is impossible, e.g. without root.
func mountSmallDisk(t *testing.T, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "disk")
	require.NoError(t, os.Mkdir(dir, 0o700))
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		dbtest.SkipSuite(t, "disk-full test", fmt.Sprintf("it mounts a %s tmpfs, which needs root (mount: %v: %s)", size, err, strings.TrimSpace(string(out))))
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return dir
}

// fillDisk writes a file in dir until the filesystem is full, and returns
// its path.
func fillDisk(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	require.NoError(t, err)
	defer func() { _ = f.Close() }()
	chunk := make([]byte, 64*1024)
	for {
		if _, err := f.Write(chunk); err != nil {
			require.True(t, errors.Is(err, syscall.ENOSPC), "filling the disk: %v", err)
			break
		}
	}
	for size := 4096; size > 0; size /= 2 { // the last pages
		for {
			if _, err := f.Write(chunk[:size]); err != nil {
				break
			}
		}
	}
	return path
}

// integrityCheck runs PRAGMA integrity_check on the SQLite file.
func integrityCheck(t *testing.T, path string) string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	require.NoError(t, err)
	defer func() { _ = db.Close() }()
	var out string
	require.NoError(t, db.QueryRow("PRAGMA integrity_check").Scan(&out))
	return out
}

// TestSQLiteDiskFull: the SQLite database lives on a 4 MiB filesystem that
// fills up under load. Writes (new keys, new variables, a revocation)
// answer the documented 503, never a 500 or a panic; reads and key
// verification go on, keys never used before included; the database stays
// intact; writes resume as soon as space is freed, and the uses counted
// meanwhile are all written then.
func TestSQLiteDiskFull(t *testing.T) {
	bin := buildServer(t)
	disk := mountSmallDisk(t, "4m")
	dbPath := filepath.Join(disk, "keyflow.db")
	in := newInstance(t, "a", bin, "sqlite:///"+dbPath)
	admin := in.adminKey()
	in.start()
	base := in.URL()
	keys := mustCreateKeys(t, base, admin, "load", 8)
	load, fresh := keys[:5], keys[5:] // fresh: first used while the disk is full
	ids := map[string]string{}
	for _, k := range load {
		ids[k.Key] = k.ID
	}
	rec := newRecorder(load)
	stopLoad := startLoad(t, rec, 4, base)
	waitForTraffic(t, rec, 300, base)

	filler := fillDisk(t, disk)
	// Write until the database cannot grow: new keys and variables of 2 kB.
	value := strings.Repeat("v", 2000)
	codes := map[int]int{}
	var refused []string
	failedInARow := 0
	for i := 0; i < 5000 && failedInARow < 10; i++ {
		var code int
		var body []byte
		var err error
		if i%2 == 0 {
			code, body, err = call(http.MethodPost, base+"/api/v1/api_key/", admin, fmt.Sprintf(`{"name":"full-%d"}`, i))
		} else {
			code, body, err = call(http.MethodPost, base+"/api/v1/variables/", admin,
				fmt.Sprintf(`{"name":"FULL_%d","value":"%s","type":"Generic","default_fields":[]}`, i, value))
		}
		require.NoError(t, err)
		codes[code]++
		if code >= 200 && code < 300 {
			failedInARow = 0
			continue
		}
		failedInARow++
		require.Equal(t, http.StatusServiceUnavailable, code, "a write on a full disk: %s", body)
		require.True(t, documented503[strings.TrimSpace(string(body))], "undocumented 503 body %s", body)
		refused = append(refused, string(body))
	}
	require.Equal(t, 10, failedInARow, "the disk never filled: %v", codes)

	// Reads and verification go on: keys never used before, read from the
	// database now, are accepted.
	for _, k := range fresh {
		code, body, err := call(http.MethodGet, base+"/api/v1/flows/", k.Key, "")
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, code, "a fresh key on a full disk: %s", body)
	}
	// A revocation is refused, not half done: the key still works.
	code, body, err := call(http.MethodDelete, base+"/api/v1/api_key/"+fresh[0].ID, admin, "")
	require.NoError(t, err)
	require.Equal(t, http.StatusServiceUnavailable, code, "%s", body)
	code, _, err = call(http.MethodGet, base+"/api/v1/flows/", fresh[0].Key, "")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "ok", integrityCheck(t, dbPath), "intact while full")

	// Space freed: writes resume.
	require.NoError(t, os.Remove(filler))
	took, ok := waitFor(10*time.Second, func() bool {
		_, code, err := createKey(base, admin, "after")
		return err == nil && code == http.StatusOK
	})
	require.True(t, ok, "writes do not resume")
	code, _, err = call(http.MethodDelete, base+"/api/v1/api_key/"+fresh[0].ID, admin, "")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code, "the revocation goes through now")

	stopLoad()
	in.stop() // writes the uses counted while the disk was full
	in.requireNoPanic()
	requireNoViolations(t, rec)
	db, err := sql.Open("sqlite", dbPath)
	require.NoError(t, err)
	acked, inDB, lost := usageCheck(t, rec, ids, usage(t, db))
	_ = db.Close()
	assert.Zero(t, lost)
	assert.Equal(t, "ok", integrityCheck(t, dbPath))
	lines := in.errorLines()
	t.Logf("Error lines:\n%s", strings.Join(lines, "\n"))
	errLines := len(lines)
	assert.LessOrEqual(t, errLines, errorLinesBound())
	_, _, status, total := rec.snapshot()
	result(t, "writes on the full disk: %v (refused: %d, all the documented 503); reads during it: status %v of %d; "+
		"fresh keys verified; integrity_check ok; writes resumed %v after space was freed; %d acknowledged uses, %d in the database, none lost; %d Error lines",
		codes, len(refused), status, total, took.Round(time.Millisecond), acked, inDB, errLines)
}
