// Package telemetry wires the reference server's metrics and traces: a
// Prometheus endpoint on a listen address of its own (--metrics-addr,
// KEYFLOW_METRICS_ADDR), and OTLP traces when the standard
// OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set.
// It returns the observe.Hooks to give the Manager, the middleware and the
// variables Service; nil when neither is configured, so nothing is measured.
//
// The metrics listen on their own address, not on the API's, so that they
// can be kept off the public network (bind it to 127.0.0.1 or an internal
// interface) without authentication: the metrics hold no key, user or
// variable name, but they do show traffic and failure rates.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"

	"github.com/keyflow-dev/keyflow/observe"
	"github.com/keyflow-dev/keyflow/observe/otelhooks"
	"github.com/keyflow-dev/keyflow/observe/promhooks"
)

// EnvMetricsAddr is the environment variable of Config.MetricsAddr.
const EnvMetricsAddr = "KEYFLOW_METRICS_ADDR"

// Config configures Start.
type Config struct {
	// MetricsAddr is the HOST:PORT that serves Prometheus text at
	// /metrics. "": no metrics.
	MetricsAddr string
	// Logger receives the metrics server's errors. nil: slog.Default().
	Logger *slog.Logger
}

// Telemetry is what Start set up.
type Telemetry struct {
	// Hooks reports to the metrics and traces configured; nil when none is.
	Hooks observe.Hooks

	metrics *http.Server
	addr    string
	traces  *sdktrace.TracerProvider
}

// Start sets up what cfg and the environment ask for. It fails when the
// metrics address cannot be listened on or the OTLP exporter cannot be made
// (a malformed endpoint).
func Start(ctx context.Context, cfg Config) (*Telemetry, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	t := &Telemetry{}
	var hooks []observe.Hooks
	if cfg.MetricsAddr != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		h, err := promhooks.New(reg)
		if err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
		ln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			return nil, fmt.Errorf("metrics: listen on %s: %w", cfg.MetricsAddr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		t.metrics = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		t.addr = ln.Addr().String()
		go func() {
			if err := t.metrics.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("metrics server stopped", "err", err)
			}
		}()
		hooks = append(hooks, h)
	}
	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" {
		// The exporter reads the endpoint, headers, timeout and TLS settings
		// from the standard OTEL_EXPORTER_OTLP_* variables itself.
		exp, err := otlptracehttp.New(ctx)
		if err != nil {
			_ = t.Shutdown(ctx)
			return nil, fmt.Errorf("traces: %w", err)
		}
		res, err := resource.Merge(resource.Default(), resource.NewSchemaless(semconv.ServiceName("keyflow")))
		if err != nil {
			res = resource.Default()
		}
		t.traces = sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
		// Metrics go to Prometheus; OpenTelemetry here carries the spans.
		h, err := otelhooks.New(otelhooks.Config{MeterProvider: noop.NewMeterProvider(), TracerProvider: t.traces})
		if err != nil {
			_ = t.Shutdown(ctx)
			return nil, fmt.Errorf("traces: %w", err)
		}
		hooks = append(hooks, h)
	}
	t.Hooks = observe.Join(hooks...)
	return t, nil
}

// MetricsAddr is the address the metrics are served on ("" when off): the
// one asked for, with the port chosen when it was 0.
func (t *Telemetry) MetricsAddr() string { return t.addr }

// TracerProvider returns the provider of the OTLP traces, nil when off; the
// server makes its request spans with it.
func (t *Telemetry) TracerProvider() *sdktrace.TracerProvider { return t.traces }

// Shutdown stops the metrics server and flushes the spans not yet exported.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	var errs []error
	if t.metrics != nil {
		errs = append(errs, t.metrics.Shutdown(ctx))
	}
	if t.traces != nil {
		errs = append(errs, t.traces.Shutdown(ctx))
	}
	return errors.Join(errs...)
}
