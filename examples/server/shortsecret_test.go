package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyflow-dev/keyflow/examples/server/internal/cli"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A master secret shorter than 32 characters is accepted with one warning
// on stderr, as Langflow ≥ 1.11.3 gives, naming where the secret came from
// and never the secret; generated and long secrets give none.
func TestShortSecretWarning(t *testing.T) {
	tests := []struct {
		name     string
		env      string // LANGFLOW_SECRET_KEY
		file     string // secret_key written beforehand
		wantFrom string // "" when no warning is expected
	}{
		{name: "one character in the environment", env: "Q", wantFrom: "LANGFLOW_SECRET_KEY"},
		{name: "31 characters in the environment", env: "Zq9-sh0rt-but-not-1-char-secret", wantFrom: "LANGFLOW_SECRET_KEY"},
		{name: "31 code points, more bytes", env: strings.Repeat("鍵", 31), wantFrom: "LANGFLOW_SECRET_KEY"},
		{name: "short secret_key file", file: "Zq9-short-file-secret", wantFrom: "secret_key in the config dir"},
		{name: "32 characters", env: "Zq9-exactly-thirty-two-chars-xyz"},
		{name: "Langflow-generated shape", env: "dBuuRmX0a5Gx3kqzT0C7mB1g7eYcY2Jq2Vd9sRxk2M0"},
		{name: "generated on first start"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.file != "" {
				require.NoError(t, os.WriteFile(filepath.Join(dir, "secret_key"), []byte(tt.file), 0o600))
			}
			t.Setenv("LANGFLOW_SECRET_KEY", tt.env)
			t.Setenv("KEYFLOW_PREVIOUS_SECRET_KEYS", "")
			t.Setenv("LANGFLOW_LOG_LEVEL", "")
			var stdout, stderr bytes.Buffer
			code := cli.Main([]string{"encrypt", "--config-dir", dir}, strings.NewReader("value"), &stdout, &stderr)
			require.Equal(t, 0, code, stderr.String())
			assert.True(t, strings.HasPrefix(stdout.String(), "gAAAAA"), "a short secret is accepted")
			if tt.wantFrom == "" {
				assert.NotContains(t, stderr.String(), "shorter than 32 characters")
				return
			}
			assert.Equal(t, 1, strings.Count(stderr.String(), "shorter than 32 characters"), stderr.String())
			assert.Contains(t, stderr.String(), "level=WARN")
			assert.Regexp(t, `source="?`+tt.wantFrom+`"?\n`, stderr.String())
			for _, secret := range []string{tt.env, tt.file} {
				if len(secret) > 1 {
					assert.NotContains(t, stderr.String(), secret)
				}
			}
		})
	}
}
