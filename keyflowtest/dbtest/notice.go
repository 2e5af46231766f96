package dbtest

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// skipped remembers the suites already announced by this test binary.
var skipped sync.Map

// SkipSuite skips t because suite cannot run here, saying how to enable it.
// Besides the usual skip message (shown with -v), the first skip of each
// suite in a test binary writes one line to the terminal of the person
// running go test, since go test shows nothing else of a passing package:
//
//	keyflow apikey/sqlstore: PostgreSQL tests skipped: set KEYFLOW_TEST_POSTGRES_DSN=...
//
// Without a terminal (CI logs, pipes) only the skip message remains. Where
// the CI environment variable is set, CI promises every suite, so a skip
// would hide a regression: SkipSuite fails the test instead.
func SkipSuite(t testing.TB, suite, howToEnable string) {
	t.Helper()
	msg := suite + " skipped: " + howToEnable
	if os.Getenv("CI") != "" {
		t.Fatalf("CI is set, so the %s must run: %s", suite, howToEnable)
	}
	if _, seen := skipped.LoadOrStore(suite, true); !seen {
		tellTerminal(fmt.Sprintf("keyflow %s: %s\n", packageDir(), msg))
	}
	t.Skip(msg)
}

// tellTerminal writes line to the controlling terminal, if there is one.
func tellTerminal(line string) {
	tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0)
	if err != nil {
		return
	}
	defer tty.Close()
	_, _ = tty.WriteString(line)
}

// packageDir is the test's package directory (go test runs a test binary in
// it) relative to the repository root, the nearest directory with go.work.
func packageDir() string {
	wd, err := os.Getwd()
	if err != nil {
		return filepath.Base(os.Args[0])
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			if rel, err := filepath.Rel(dir, wd); err == nil {
				return filepath.ToSlash(rel)
			}
		}
		if dir == filepath.Dir(dir) {
			return filepath.Base(wd)
		}
	}
}
