package telemetry_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/examples/server/internal/telemetry"
)

// noOTLP clears the OTLP variables for the test.
func noOTLP(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
}

func TestOff(t *testing.T) {
	noOTLP(t)
	tel, err := telemetry.Start(context.Background(), telemetry.Config{})
	require.NoError(t, err)
	assert.Nil(t, tel.Hooks, "nothing configured, nothing measured")
	assert.Empty(t, tel.MetricsAddr())
	require.NoError(t, tel.Shutdown(context.Background()))
}

func TestMetrics(t *testing.T) {
	noOTLP(t)
	ctx := context.Background()
	tel, err := telemetry.Start(ctx, telemetry.Config{MetricsAddr: "127.0.0.1:0"})
	require.NoError(t, err)
	defer func() { _ = tel.Shutdown(ctx) }()
	m, err := apikey.NewManager(apikey.Config{Hooks: tel.Hooks, FlushInterval: -1})
	require.NoError(t, err)
	defer func() { _ = m.Close() }()
	key, _, err := m.Create(ctx, "u", "k", apikey.CreateOptions{})
	require.NoError(t, err)
	_, err = m.Verify(ctx, key)
	require.NoError(t, err)

	resp, err := http.Get("http://" + tel.MetricsAddr() + "/metrics")
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	require.Contains(t, fams, "keyflow_apikey_verifications_total")
	require.Contains(t, fams, "go_goroutines", "runtime metrics too")
	var ok float64
	for _, m := range fams["keyflow_apikey_verifications_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "outcome" && l.GetValue() == "ok" {
				ok += m.GetCounter().GetValue()
			}
		}
	}
	assert.EqualValues(t, 1, ok)
}

func TestMetricsAddrInUse(t *testing.T) {
	noOTLP(t)
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	_, err := telemetry.Start(context.Background(), telemetry.Config{MetricsAddr: srv.Listener.Addr().String()})
	assert.ErrorContains(t, err, "listen")
}

// TestTraces: with OTEL_EXPORTER_OTLP_ENDPOINT set, the spans around store
// reads reach an OTLP/HTTP receiver.
func TestTraces(t *testing.T) {
	var (
		mu    sync.Mutex
		names []string
	)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req coltrace.ExportTraceServiceRequest
		if r.URL.Path != "/v1/traces" || proto.Unmarshal(body, &req) != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		mu.Lock()
		for _, rs := range req.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				for _, s := range ss.GetSpans() {
					names = append(names, s.GetName())
				}
			}
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		b, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
		_, _ = w.Write(b)
	}))
	defer receiver.Close()
	noOTLP(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.URL)
	ctx := context.Background()
	tel, err := telemetry.Start(ctx, telemetry.Config{})
	require.NoError(t, err)
	require.NotNil(t, tel.Hooks)
	m, err := apikey.NewManager(apikey.Config{Hooks: tel.Hooks, FlushInterval: -1})
	require.NoError(t, err)
	key, _, err := m.Create(ctx, "u", "k", apikey.CreateOptions{})
	require.NoError(t, err)
	_, err = m.Verify(ctx, key)
	require.NoError(t, err)
	require.NoError(t, m.Close())
	require.NoError(t, tel.Shutdown(ctx), "flushes the spans")
	mu.Lock()
	defer mu.Unlock()
	assert.Contains(t, names, "keyflow.apikey.ByHash")
}
