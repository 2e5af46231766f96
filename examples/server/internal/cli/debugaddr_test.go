package cli

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDebugAddr: off without an address; on one, the goroutine profile
// says how many goroutines run.
func TestDebugAddr(t *testing.T) {
	var logs bytes.Buffer
	stop, err := startDebug("", slog.New(slog.NewTextHandler(&logs, nil)))
	require.NoError(t, err)
	stop()
	assert.Empty(t, logs.String(), "off by default")

	stop, err = startDebug("127.0.0.1:0", slog.New(slog.NewTextHandler(&logs, nil)))
	require.NoError(t, err)
	defer stop()
	url := regexp.MustCompile(`http://\S+/debug/pprof/`).FindString(logs.String())
	require.NotEmpty(t, url, logs.String())
	res, err := http.Get(url + "goroutine?debug=1")
	require.NoError(t, err)
	defer func() { _ = res.Body.Close() }()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	assert.Regexp(t, `^goroutine profile: total \d+`, string(body))

	_, err = startDebug("127.0.0.1:notaport", slog.New(slog.NewTextHandler(io.Discard, nil)))
	assert.Error(t, err)
}
