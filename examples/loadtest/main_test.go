package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPercentile(t *testing.T) {
	var lat []time.Duration
	for i := 1; i <= 100; i++ {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{
		{0.50, 50 * time.Millisecond},
		{0.90, 90 * time.Millisecond},
		{0.99, 99 * time.Millisecond},
		{1, 100 * time.Millisecond},
		{0, time.Millisecond},
	} {
		assert.Equal(t, tc.want, percentile(lat, tc.p), "p%v", tc.p)
	}
	assert.Equal(t, time.Duration(0), percentile(nil, 0.5))
	assert.Equal(t, 7*time.Second, percentile([]time.Duration{7 * time.Second}, 0.99))
}

func TestHistogram(t *testing.T) {
	lat := []time.Duration{
		300 * time.Microsecond, 120 * time.Microsecond, 110 * time.Microsecond,
		130 * time.Microsecond, 2 * time.Millisecond,
	}
	bs := histogram(lat)
	require.NotEmpty(t, bs)
	assert.Equal(t, 100*time.Microsecond, bs[0].lo, "leading empty buckets are dropped")
	var total int64
	for i, b := range bs {
		total += b.n
		if i > 0 {
			assert.Equal(t, bs[i-1].hi, b.lo)
			assert.Equal(t, 2*b.lo, b.hi)
		}
	}
	assert.Equal(t, int64(len(lat)), total)
	assert.Equal(t, int64(3), bs[0].n) // 110, 120, 130 µs in [100 µs, 200 µs)
	assert.True(t, bs[len(bs)-1].n > 0, "trailing empty buckets are dropped")

	out := bars(bs, total, 10)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	assert.Len(t, lines, len(bs))
	assert.Contains(t, lines[0], strings.Repeat("█", 10), "the largest bucket has the full width")
	assert.Contains(t, lines[0], "60.0%")
	assert.Nil(t, histogram(nil))

	slow := histogram([]time.Duration{2 * time.Minute})
	assert.Equal(t, time.Duration(0), slow[len(slow)-1].hi, "an open-ended last bucket")
	assert.Contains(t, bars(slow, 1, 5), "∞")
}

func TestParseFlags(t *testing.T) {
	keys := filepath.Join(t.TempDir(), "keys.txt")
	require.NoError(t, os.WriteFile(keys, []byte("# keys\nsk-a\n\n sk-b \n"), 0o600))
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string
		check   func(t *testing.T, c config)
	}{
		{"minimal", []string{"-url", "http://h:1/", "-keys", "sk-x"}, "", func(t *testing.T, c config) {
			assert.Equal(t, []string{"http://h:1"}, c.urls)
			assert.Equal(t, []string{"sk-x"}, c.keys)
			assert.Equal(t, 16, c.concurrency)
			assert.Equal(t, 10*time.Second, c.duration)
		}},
		{"two urls and a key file", []string{"-url", "http://a:1, http://b:2", "-keys-file", keys, "-n", "50", "-unknown", "0.1"}, "", func(t *testing.T, c config) {
			assert.Equal(t, []string{"http://a:1", "http://b:2"}, c.urls)
			assert.Equal(t, []string{"sk-a", "sk-b"}, c.keys)
			assert.Equal(t, int64(50), c.requests)
			assert.InDelta(t, 0.1, c.unknown, 1e-9)
		}},
		{"only unknown keys", []string{"-url", "http://a:1", "-unknown", "1"}, "", nil},
		{"no url", []string{"-keys", "k"}, "-url is required", nil},
		{"bad scheme", []string{"-url", "ftp://a", "-keys", "k"}, "want http://", nil},
		{"no keys", []string{"-url", "http://a:1"}, "no keys", nil},
		{"missing key file", []string{"-url", "http://a:1", "-keys-file", filepath.Join(t.TempDir(), "none")}, "-keys-file", nil},
		{"unknown share", []string{"-url", "http://a:1", "-keys", "k", "-unknown", "1.5"}, "-unknown", nil},
		{"concurrency", []string{"-url", "http://a:1", "-keys", "k", "-c", "0"}, "-c must be", nil},
		{"duration", []string{"-url", "http://a:1", "-keys", "k", "-d", "0"}, "-d must be positive", nil},
		{"negative n", []string{"-url", "http://a:1", "-keys", "k", "-n", "-1"}, "-n must not", nil},
		{"path", []string{"-url", "http://a:1", "-keys", "k", "-path", "health"}, "-path must start", nil},
		{"extra args", []string{"-url", "http://a:1", "-keys", "k", "x"}, "unexpected arguments", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseFlags(tc.args, &bytes.Buffer{})
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}

// TestRun drives an httptest server that knows one key: every request is
// counted, unknown keys get 401, and the report has the expected parts.
func TestRun(t *testing.T) {
	const good = "sk-good"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("x-api-key") != good {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	var out, errOut bytes.Buffer
	code := run([]string{"-url", srv.URL + "," + srv.URL, "-keys", good, "-n", "200", "-c", "4", "-unknown", "0.25", "-progress=false"}, &out, &errOut)
	require.Equal(t, 0, code, "stderr: %s\nstdout: %s", errOut.String(), out.String())
	s := out.String()
	assert.Contains(t, s, "200 requests in")
	assert.Contains(t, s, "latency histogram")
	assert.Contains(t, s, "p50 ")
	assert.Contains(t, s, "200×")
	assert.Contains(t, s, "401×")
	assert.Contains(t, s, "unexpected: 0")

	out.Reset()
	code = run([]string{"-url", srv.URL, "-keys", "sk-wrong", "-n", "10", "-progress=false"}, &out, &errOut)
	assert.Equal(t, 1, code, "known keys refused are unexpected")
	assert.Contains(t, out.String(), "unexpected: 10")
	assert.Equal(t, 2, run([]string{"-c", "0"}, &out, &errOut))
}

// TestRunBodyNoAuth: -method and -body make the request; with -no-auth,
// unknown keys answered 2xx are expected, and a refusal is not.
func TestRunBodyNoAuth(t *testing.T) {
	var bad atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || string(b) != `{"input_value":"hi"}` || r.Header.Get("Content-Type") != "application/json" {
			bad.Add(1)
		}
		if r.URL.Path == "/deny" {
			w.WriteHeader(http.StatusForbidden)
		}
	}))
	defer srv.Close()
	var out, errOut bytes.Buffer
	args := []string{"-url", srv.URL, "-unknown", "1", "-n", "50", "-c", "2", "-progress=false", "-no-auth",
		"-method", "POST", "-path", "/api/v1/run/x", "-body", `{"input_value":"hi"}`}
	require.Equal(t, 0, run(args, &out, &errOut), "stderr: %s\nstdout: %s", errOut.String(), out.String())
	assert.Contains(t, out.String(), "200×50")
	assert.Zero(t, bad.Load(), "requests without the method, body or content type")

	out.Reset()
	args[len(args)-3] = "/deny"
	assert.Equal(t, 1, run(args, &out, &errOut), "a refusal is unexpected without authentication")
	assert.Contains(t, out.String(), "unexpected: 50")
}
