package promhooks_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/middleware"
	"github.com/keyflow-dev/keyflow/observe"
	"github.com/keyflow-dev/keyflow/observe/promhooks"
	"github.com/keyflow-dev/keyflow/secrets"
	"github.com/keyflow-dev/keyflow/variables"
)

// scrape serves reg's exposition over HTTP, as a Prometheus server reads
// it, and parses it with Prometheus's own text parser.
func scrape(t *testing.T, reg *prometheus.Registry) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	return families
}

// value returns the counter, gauge or histogram count of the series of
// family name with exactly these labels (-1 when absent).
func value(families map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	f := families[name]
	if f == nil {
		return -1
	}
	for _, m := range f.GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		if len(got) != len(labels) {
			continue
		}
		match := true
		for k, v := range labels {
			if got[k] != v {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	return -1
}

// TestMetrics drives a real Manager, middleware and variables Service with
// the hooks and checks the scraped exposition.
func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	h, err := promhooks.New(reg)
	require.NoError(t, err)
	ctx := context.Background()

	m, err := apikey.NewManager(apikey.Config{Hooks: h, FlushInterval: -1})
	require.NoError(t, err)
	defer func() { _ = m.Close() }()
	key, rec, err := m.Create(ctx, "u", "k", apikey.CreateOptions{})
	require.NoError(t, err)
	mw, err := middleware.New(middleware.Config{Verifier: m, Hooks: h})
	require.NoError(t, err)
	handler := mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for _, k := range []string{key, key, key, "", "sk-nope"} {
		r := httptest.NewRequest("GET", "/", nil)
		if k != "" {
			r.Header.Set("x-api-key", k)
		}
		handler.ServeHTTP(httptest.NewRecorder(), r)
	}
	require.NoError(t, m.SetActive(ctx, "u", rec.ID, false))
	_, err = m.Verify(ctx, key)
	require.ErrorIs(t, err, apikey.ErrInactive)
	require.NoError(t, m.Flush(ctx))
	h.Authenticated(ctx, observe.Authentication{Outcome: observe.InactiveUser})

	kr, err := secrets.NewKeyring("a master secret of enough length for the test")
	require.NoError(t, err)
	vs, err := variables.NewService(variables.ServiceConfig{Keyring: kr, Hooks: h})
	require.NoError(t, err)
	_, err = vs.Create(ctx, "u", variables.CreateInput{Name: "N", Value: "v"})
	require.NoError(t, err)
	_, err = vs.Create(ctx, "u", variables.CreateInput{Name: "N", Value: "v"})
	require.Error(t, err)
	h.FeedPolled(ctx, observe.FeedPoll{Changed: 3, Lag: 250 * time.Millisecond})
	h.FeedPolled(ctx, observe.FeedPoll{Err: errors.New("down"), Lag: 2 * time.Second, Lost: true})

	fams := scrape(t, reg)
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"keyflow_apikey_verifications_total", map[string]string{"outcome": "ok", "cached": "false"}, 1},
		{"keyflow_apikey_verifications_total", map[string]string{"outcome": "ok", "cached": "true"}, 2},
		{"keyflow_apikey_verifications_total", map[string]string{"outcome": "unknown", "cached": "false"}, 1},
		{"keyflow_apikey_verifications_total", map[string]string{"outcome": "disabled", "cached": "false"}, 1},
		{"keyflow_apikey_verifications_total", map[string]string{"outcome": "rate_limited", "cached": "false"}, 0},
		{"keyflow_apikey_verification_duration_seconds", nil, 2}, // the first use and the disabled key read the store
		{"keyflow_http_authentications_total", map[string]string{"outcome": "ok", "source": "db"}, 3},
		{"keyflow_http_authentications_total", map[string]string{"outcome": "missing", "source": ""}, 1},
		{"keyflow_http_authentications_total", map[string]string{"outcome": "unknown", "source": ""}, 1},
		{"keyflow_http_authentications_total", map[string]string{"outcome": "inactive_user", "source": ""}, 1},
		{"keyflow_apikey_usage_flushes_total", map[string]string{"result": "ok"}, 1},
		{"keyflow_apikey_usage_flushed_keys_total", nil, 1},
		{"keyflow_apikey_usage_flushed_uses_total", nil, 3},
		{"keyflow_apikey_usage_flush_duration_seconds", nil, 1},
		{"keyflow_apikey_change_feed_polls_total", map[string]string{"result": "ok"}, 1},
		{"keyflow_apikey_change_feed_polls_total", map[string]string{"result": "error"}, 1},
		{"keyflow_apikey_change_feed_changes_total", nil, 3},
		{"keyflow_apikey_change_feed_lost_total", nil, 1},
		{"keyflow_apikey_change_feed_lag_seconds", nil, 2},
		{"keyflow_variables_store_operations_total", map[string]string{"op": "Create", "result": "ok"}, 2},
		{"keyflow_variables_store_duration_seconds", map[string]string{"op": "Create"}, 2},
	} {
		assert.Equal(t, tc.want, value(fams, tc.name, tc.labels), "%s%v", tc.name, tc.labels)
	}
	for name := range fams {
		assert.True(t, strings.HasPrefix(name, "keyflow_"), name)
	}
	// The exposition passes Prometheus's own linter.
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	assert.Empty(t, problems)
}

func TestNewRegistersOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	_, err := promhooks.New(reg)
	require.NoError(t, err)
	_, err = promhooks.New(reg)
	assert.Error(t, err, "a second set of the same metrics is refused")
}

// TestVerifyNoAllocs: with the adapter, a warm verification still
// allocates nothing.
func TestVerifyNoAllocs(t *testing.T) {
	h, err := promhooks.New(prometheus.NewRegistry())
	require.NoError(t, err)
	m, err := apikey.NewManager(apikey.Config{Hooks: h, FlushInterval: -1})
	require.NoError(t, err)
	defer func() { _ = m.Close() }()
	ctx := context.Background()
	key, _, err := m.Create(ctx, "u", "k", apikey.CreateOptions{})
	require.NoError(t, err)
	_, err = m.Verify(ctx, key)
	require.NoError(t, err)
	assert.Zero(t, testing.AllocsPerRun(100, func() { _, _ = m.Verify(ctx, key) }))
}

// BenchmarkVerifyPrometheus: a warm verification (1024 keys, memory store)
// without hooks and with this adapter, in one run; the difference is what
// the adapter costs per verification.
func BenchmarkVerifyPrometheus(b *testing.B) {
	for _, tc := range []struct {
		name  string
		hooks func(b *testing.B) observe.Hooks
	}{
		{"none", func(*testing.B) observe.Hooks { return nil }},
		{"prometheus", func(b *testing.B) observe.Hooks {
			h, err := promhooks.New(prometheus.NewRegistry())
			if err != nil {
				b.Fatal(err)
			}
			return h
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			m, err := apikey.NewManager(apikey.Config{Hooks: tc.hooks(b)})
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = m.Close() }()
			ctx := context.Background()
			keys := make([]string, 1024)
			for i := range keys {
				if keys[i], _, err = m.Create(ctx, "u", "bench", apikey.CreateOptions{}); err != nil {
					b.Fatal(err)
				}
				if _, err := m.Verify(ctx, keys[i]); err != nil {
					b.Fatal(err)
				}
			}
			i := 0
			b.ReportAllocs()
			cpu0 := processCPU()
			for b.Loop() {
				if _, err := m.Verify(ctx, keys[i&1023]); err != nil {
					b.Fatal(err)
				}
				i++
			}
			if cpu := processCPU() - cpu0; cpu0 > 0 {
				b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
			}
		})
	}
}
