package otelhooks_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/observe"
	"github.com/keyflow-dev/keyflow/observe/otelhooks"
	"github.com/keyflow-dev/keyflow/secrets"
	"github.com/keyflow-dev/keyflow/variables"
)

// failingStore fails ByHash while fail is set.
type failingStore struct {
	*apikey.MemoryStore
	fail bool
}

func (s *failingStore) ByHash(ctx context.Context, h apikey.Hash) (apikey.Record, error) {
	if s.fail {
		return apikey.Record{}, errors.New("connection refused")
	}
	return s.MemoryStore.ByHash(ctx, h)
}

func setup(t *testing.T) (*otelhooks.Hooks, *sdkmetric.ManualReader, *tracetest.InMemoryExporter) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	t.Cleanup(func() {
		_ = mp.Shutdown(context.Background())
		_ = tp.Shutdown(context.Background())
	})
	h, err := otelhooks.New(otelhooks.Config{MeterProvider: mp, TracerProvider: tp})
	require.NoError(t, err)
	return h, reader, spans
}

// sum returns the value of the int64 sum named name for the data point with
// exactly these attributes (-1 when absent).
func sum(t *testing.T, rm metricdata.ResourceMetrics, name string, attrs ...attribute.KeyValue) int64 {
	t.Helper()
	want := attribute.NewSet(attrs...)
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			s, ok := m.Data.(metricdata.Sum[int64])
			require.True(t, ok, "%s is a %T", name, m.Data)
			for _, dp := range s.DataPoints {
				if dp.Attributes.Equals(&want) {
					return dp.Value
				}
			}
		}
	}
	return -1
}

func find(rm metricdata.ResourceMetrics, name string) *metricdata.Metrics {
	for _, sm := range rm.ScopeMetrics {
		for i, m := range sm.Metrics {
			if m.Name == name {
				return &sm.Metrics[i]
			}
		}
	}
	return nil
}

func TestMetricsAndSpans(t *testing.T) {
	h, reader, spans := setup(t)
	ctx := context.Background()
	store := &failingStore{MemoryStore: apikey.NewMemoryStore()}
	m, err := apikey.NewManager(apikey.Config{Store: store, Hooks: h, FlushInterval: -1})
	require.NoError(t, err)
	defer func() { _ = m.Close() }()
	key, rec, err := m.Create(ctx, "u", "k", apikey.CreateOptions{})
	require.NoError(t, err)
	for range 3 {
		_, err := m.Verify(ctx, key)
		require.NoError(t, err)
	}
	m.Invalidate(rec.Hash)
	store.fail = true
	_, err = m.Verify(ctx, key)
	require.ErrorIs(t, err, apikey.ErrUnavailable)
	store.fail = false
	_, err = m.Verify(ctx, "sk-"+key[3:len(key)-4]+"AAAA")
	require.ErrorIs(t, err, apikey.ErrInvalid)
	require.NoError(t, m.Flush(ctx))
	h.FeedPolled(ctx, observe.FeedPoll{Changed: 2, Lag: time.Second})
	h.Authenticated(ctx, observe.Authentication{Outcome: observe.OK, Source: "db"})

	kr, err := secrets.NewKeyring("a master secret of enough length for the test")
	require.NoError(t, err)
	vs, err := variables.NewService(variables.ServiceConfig{Keyring: kr, Hooks: h})
	require.NoError(t, err)
	_, err = vs.Value(ctx, "u", "NOPE")
	require.ErrorIs(t, err, variables.ErrNotFound)

	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(ctx, &rm))
	ok := attribute.String("outcome", "ok")
	assert.EqualValues(t, 1, sum(t, rm, "keyflow.apikey.verifications", ok, attribute.Bool("cached", false)))
	assert.EqualValues(t, 2, sum(t, rm, "keyflow.apikey.verifications", ok, attribute.Bool("cached", true)))
	assert.EqualValues(t, 1, sum(t, rm, "keyflow.apikey.verifications", attribute.String("outcome", "unavailable"), attribute.Bool("cached", false)))
	assert.EqualValues(t, 1, sum(t, rm, "keyflow.apikey.verifications", attribute.String("outcome", "unknown"), attribute.Bool("cached", false)))
	assert.EqualValues(t, 1, sum(t, rm, "keyflow.http.authentications", ok, attribute.String("source", "db")))
	assert.EqualValues(t, 1, sum(t, rm, "keyflow.apikey.usage.flushes", attribute.String("result", "ok")))
	assert.EqualValues(t, 3, sum(t, rm, "keyflow.apikey.usage.flushed_uses"))
	assert.EqualValues(t, 2, sum(t, rm, "keyflow.apikey.change_feed.changes"))
	assert.EqualValues(t, 1, sum(t, rm, "keyflow.variables.store.operations", attribute.String("op", "GetByName"), attribute.String("result", "ok")))
	hist := find(rm, "keyflow.apikey.verification.duration")
	require.NotNil(t, hist)
	var n uint64
	for _, dp := range hist.Data.(metricdata.Histogram[float64]).DataPoints {
		n += dp.Count
	}
	assert.EqualValues(t, 3, n, "the three verifications that read the store")
	lag := find(rm, "keyflow.apikey.change_feed.lag")
	require.NotNil(t, lag)
	assert.Equal(t, 1.0, lag.Data.(metricdata.Gauge[float64]).DataPoints[0].Value)

	got := spans.GetSpans()
	var names []string
	for _, s := range got {
		names = append(names, s.Name)
	}
	assert.Equal(t, []string{"keyflow.apikey.ByHash", "keyflow.apikey.ByHash", "keyflow.apikey.ByHash", "keyflow.variables.GetByName"}, names,
		"a span per store read: first verification, the failed one, the unknown key, the variable")
	assert.Equal(t, codes.Unset, got[0].Status.Code)
	assert.Equal(t, codes.Error, got[1].Status.Code, "a failed read is an error")
	assert.Len(t, got[1].Events, 1, "with the error recorded")
	assert.Equal(t, codes.Unset, got[2].Status.Code, "not found is an answer, not an error")
	assert.Contains(t, got[2].Attributes, attribute.Bool("keyflow.found", false))
	for _, s := range got {
		for _, a := range s.Attributes {
			assert.NotContains(t, a.Value.String(), key[3:10], "no key in a span")
		}
	}
}

// TestSpanParent: the store read's span is a child of the caller's span.
func TestSpanParent(t *testing.T) {
	h, _, spans := setup(t)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	ctx, parent := tp.Tracer("test").Start(context.Background(), "request")
	m, err := apikey.NewManager(apikey.Config{Hooks: h, FlushInterval: -1})
	require.NoError(t, err)
	defer func() { _ = m.Close() }()
	key, _, err := m.Create(ctx, "u", "k", apikey.CreateOptions{})
	require.NoError(t, err)
	_, err = m.Verify(ctx, key)
	require.NoError(t, err)
	parent.End()
	got := spans.GetSpans()
	require.Len(t, got, 2)
	assert.Equal(t, parent.SpanContext().SpanID(), got[0].Parent.SpanID())
	assert.Equal(t, parent.SpanContext().TraceID(), got[0].SpanContext.TraceID())
}
