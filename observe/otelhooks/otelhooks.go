// Package otelhooks reports keyflow's events (package observe) through
// OpenTelemetry: metrics through a MeterProvider and a span around each
// store read through a TracerProvider. It is a module of its own, so that
// programs that do not use OpenTelemetry never pull in its API.
//
//	h, err := otelhooks.New(otelhooks.Config{}) // the global providers
//	m, err := apikey.NewManager(apikey.Config{Store: store, Hooks: h})
//
// Instruments (meter "github.com/keyflow-dev/keyflow"):
//
//	keyflow.apikey.verifications            counter    {outcome, cached}
//	keyflow.apikey.verification.duration    histogram  s (cache misses: the store read)
//	keyflow.http.authentications            counter    {outcome, source}
//	keyflow.apikey.usage.flushes            counter    {result}
//	keyflow.apikey.usage.flushed_keys       counter
//	keyflow.apikey.usage.flushed_uses       counter
//	keyflow.apikey.usage.flush.duration     histogram  s
//	keyflow.apikey.usage.flush.lag          gauge      s
//	keyflow.apikey.change_feed.polls        counter    {result}
//	keyflow.apikey.change_feed.changes      counter
//	keyflow.apikey.change_feed.lost         counter
//	keyflow.apikey.change_feed.lag          gauge      s
//	keyflow.variables.store.operations      counter    {op, result}
//	keyflow.variables.store.duration        histogram  s {op}
//
// Spans (tracer "github.com/keyflow-dev/keyflow"), kind client, named
// "keyflow.<store>.<Op>" ("keyflow.apikey.ByHash", "keyflow.variables.GetByName"…)
// with attributes keyflow.store and keyflow.op. A read that fails (other
// than a not-found answer) records the error and sets the span's status to
// Error. No attribute holds a key, a hash, a user or a variable's name or
// value.
package otelhooks

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/observe"
	"github.com/keyflow-dev/keyflow/variables"
)

// Scope is the instrumentation scope name of the meter and the tracer.
const Scope = "github.com/keyflow-dev/keyflow"

// Config configures New. The zero value uses the global providers.
type Config struct {
	// MeterProvider makes the instruments. nil: otel.GetMeterProvider().
	MeterProvider metric.MeterProvider
	// TracerProvider makes the spans around store reads. nil:
	// otel.GetTracerProvider().
	TracerProvider trace.TracerProvider
}

// Hooks is an observe.Hooks on OpenTelemetry, made by New. It is safe for
// concurrent use.
type Hooks struct {
	tracer trace.Tracer

	verifications metric.Int64Counter
	verifyTime    metric.Float64Histogram
	authn         metric.Int64Counter
	flushes       metric.Int64Counter
	flushKeys     metric.Int64Counter
	flushUses     metric.Int64Counter
	flushTime     metric.Float64Histogram
	flushLag      metric.Float64Gauge
	polls         metric.Int64Counter
	feedChanges   metric.Int64Counter
	feedLost      metric.Int64Counter
	feedLag       metric.Float64Gauge
	varOps        metric.Int64Counter
	varTime       metric.Float64Histogram

	// Attribute sets of the verification path, built once.
	verifiedAttrs [observe.NumOutcomes][2][]metric.AddOption
	results       [2][]metric.AddOption // ok, error
}

var _ observe.Hooks = (*Hooks)(nil)

// New makes the instruments and returns the Hooks that update them.
func New(cfg Config) (*Hooks, error) {
	mp, tp := cfg.MeterProvider, cfg.TracerProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	meter := mp.Meter(Scope)
	h := &Hooks{tracer: tp.Tracer(Scope)}
	var errs []error
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, err := meter.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	histogram := func(name, desc string, bounds ...float64) metric.Float64Histogram {
		hi, err := meter.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc), metric.WithExplicitBucketBoundaries(bounds...))
		errs = append(errs, err)
		return hi
	}
	gauge := func(name, desc string) metric.Float64Gauge {
		g, err := meter.Float64Gauge(name, metric.WithUnit("s"), metric.WithDescription(desc))
		errs = append(errs, err)
		return g
	}
	h.verifications = counter("keyflow.apikey.verifications", "{verification}", "API-key verifications by outcome, and whether the cache answered.")
	h.verifyTime = histogram("keyflow.apikey.verification.duration", "Time taken by API-key verifications that missed the cache (the store read).",
		1e-6, 3e-6, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1)
	h.authn = counter("keyflow.http.authentications", "{request}", "Requests authenticated by the middleware, by outcome and source.")
	h.flushes = counter("keyflow.apikey.usage.flushes", "{flush}", "Writes of batched usage counters, by result.")
	h.flushKeys = counter("keyflow.apikey.usage.flushed_keys", "{key}", "Keys whose usage counters were written (rows).")
	h.flushUses = counter("keyflow.apikey.usage.flushed_uses", "{verification}", "Verifications whose counts were written.")
	h.flushTime = histogram("keyflow.apikey.usage.flush.duration", "Time taken by usage flushes.",
		1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1, 3, 10)
	h.flushLag = gauge("keyflow.apikey.usage.flush.lag", "At the latest flush: time since the previous successful one.")
	h.polls = counter("keyflow.apikey.change_feed.polls", "{poll}", "Polls of the change feed, by result.")
	h.feedChanges = counter("keyflow.apikey.change_feed.changes", "{key}", "Keys reported changed by other processes.")
	h.feedLost = counter("keyflow.apikey.change_feed.lost", "{poll}", "Polls that found the change log pruned past the cursor.")
	h.feedLag = gauge("keyflow.apikey.change_feed.lag", "At the latest poll: time since the latest successful poll began.")
	h.varOps = counter("keyflow.variables.store.operations", "{operation}", "Store operations of the variables service, by method and result.")
	h.varTime = histogram("keyflow.variables.store.duration", "Time taken by store operations of the variables service.",
		1e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for o := range observe.NumOutcomes {
		for c := range 2 {
			set := attribute.NewSet(attribute.String("outcome", observe.Outcome(o).String()), attribute.Bool("cached", c == 1))
			h.verifiedAttrs[o][c] = []metric.AddOption{metric.WithAttributeSet(set)}
		}
	}
	h.results[0] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attribute.String("result", "ok")))}
	h.results[1] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attribute.String("result", "error")))}
	return h, nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Verified implements observe.Hooks.
func (h *Hooks) Verified(ctx context.Context, v observe.Verification) {
	if int(v.Outcome) >= observe.NumOutcomes {
		return
	}
	h.verifications.Add(ctx, 1, h.verifiedAttrs[v.Outcome][b2i(v.Cached)]...)
	if v.Duration > 0 {
		h.verifyTime.Record(ctx, v.Duration.Seconds())
	}
}

// Authenticated implements observe.Hooks.
func (h *Hooks) Authenticated(ctx context.Context, a observe.Authentication) {
	h.authn.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", a.Outcome.String()), attribute.String("source", a.Source)))
}

// Flushed implements observe.Hooks.
func (h *Hooks) Flushed(ctx context.Context, f observe.Flush) {
	h.flushes.Add(ctx, 1, h.results[b2i(f.Err != nil)]...)
	h.flushKeys.Add(ctx, int64(f.Keys))
	h.flushUses.Add(ctx, f.Uses)
	h.flushTime.Record(ctx, f.Duration.Seconds())
	h.flushLag.Record(ctx, f.Lag.Seconds())
}

// FeedPolled implements observe.Hooks.
func (h *Hooks) FeedPolled(ctx context.Context, p observe.FeedPoll) {
	h.polls.Add(ctx, 1, h.results[b2i(p.Err != nil)]...)
	h.feedChanges.Add(ctx, int64(p.Changed))
	if p.Lost {
		h.feedLost.Add(ctx, 1)
	}
	h.feedLag.Record(ctx, p.Lag.Seconds())
}

// VariableAccessed implements observe.Hooks. Not-found, duplicate and
// conflict answers count as result "ok": the store answered.
func (h *Hooks) VariableAccessed(ctx context.Context, op observe.VariableOp) {
	res := "ok"
	if op.Err != nil && !isAnswer(op.Err) {
		res = "error"
	}
	h.varOps.Add(ctx, 1, metric.WithAttributes(attribute.String("op", op.Op), attribute.String("result", res)))
	h.varTime.Record(ctx, op.Duration.Seconds(), metric.WithAttributes(attribute.String("op", op.Op)))
}

// StoreReadStart implements observe.Hooks: it starts a client span named
// "keyflow.<store>.<op>".
func (h *Hooks) StoreReadStart(ctx context.Context, r observe.StoreRead) context.Context {
	ctx, _ = h.tracer.Start(ctx, "keyflow."+r.Store+"."+r.Op, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("keyflow.store", r.Store), attribute.String("keyflow.op", r.Op)))
	return ctx
}

// StoreReadEnd implements observe.Hooks: it ends the span, recording a
// failure (not a not-found answer) as an error.
func (h *Hooks) StoreReadEnd(ctx context.Context, _ observe.StoreRead, err error) {
	span := trace.SpanFromContext(ctx)
	switch {
	case err == nil:
		span.SetAttributes(attribute.Bool("keyflow.found", true))
	case isAnswer(err):
		span.SetAttributes(attribute.Bool("keyflow.found", false))
	default:
		span.RecordError(err)
		span.SetStatus(codes.Error, "store read failed")
	}
	span.End()
}

// answers are store errors that are answers, not failures.
var answers = []error{apikey.ErrNotFound, variables.ErrNotFound, variables.ErrDuplicate, variables.ErrConflict}

func isAnswer(err error) bool {
	for _, a := range answers {
		if errors.Is(err, a) {
			return true
		}
	}
	return false
}
