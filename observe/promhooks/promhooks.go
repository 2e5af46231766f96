// Package promhooks exposes keyflow's events (package observe) as Prometheus
// metrics. It is a module of its own, so that programs that do not use
// Prometheus never pull in its client.
//
//	h, err := promhooks.New(prometheus.DefaultRegisterer)
//	m, err := apikey.NewManager(apikey.Config{Store: store, Hooks: h})
//	mw, err := middleware.New(middleware.Config{Verifier: m, Hooks: h})
//	http.Handle("/metrics", promhttp.Handler())
//
// Metrics (all prefixed keyflow_):
//
//	keyflow_apikey_verifications_total{outcome,cached}        counter
//	keyflow_apikey_verification_duration_seconds              histogram (cache misses: the store read)
//	keyflow_http_authentications_total{outcome,source}        counter
//	keyflow_apikey_usage_flushes_total{result}                counter (result "ok" or "error")
//	keyflow_apikey_usage_flushed_keys_total                   counter (rows written)
//	keyflow_apikey_usage_flushed_uses_total                   counter
//	keyflow_apikey_usage_flush_duration_seconds               histogram
//	keyflow_apikey_usage_flush_lag_seconds                    gauge (at the latest flush)
//	keyflow_apikey_change_feed_polls_total{result}            counter
//	keyflow_apikey_change_feed_changes_total                  counter (keys changed elsewhere)
//	keyflow_apikey_change_feed_lost_total                     counter (cache dropped: log pruned)
//	keyflow_apikey_change_feed_lag_seconds                    gauge (at the latest poll)
//	keyflow_variables_store_operations_total{op,result}       counter
//	keyflow_variables_store_duration_seconds{op}              histogram
//
// outcome is one of observe's outcomes ("ok", "missing", "unknown",
// "expired", "disabled", "inactive_user", "rate_limited", "unavailable");
// cached is "true" or "false"; result is "ok" or "error"; source is "db",
// "env", "auto-login" or "" (failures). No label holds a key, a user or a
// variable name, so the series are few and bounded.
//
// Every series of the verification path is created by New, so a
// verification looks up nothing: a cache hit adds to one counter, a miss
// also observes the histogram, allocation-free (see BENCHMARKS.md).
package promhooks

import (
	"context"
	"errors"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyflow-dev/keyflow/observe"
	"github.com/keyflow-dev/keyflow/variables"
)

// Hooks is an observe.Hooks that updates Prometheus metrics. Made by New; it
// is safe for concurrent use.
type Hooks struct {
	observe.Nop // StoreReadStart, StoreReadEnd: spans are OpenTelemetry's job

	verified   [observe.NumOutcomes][2]prometheus.Counter
	verifyTime prometheus.Observer
	authn      [observe.NumOutcomes]prometheus.Counter
	authnOK    map[string]prometheus.Counter // by source

	flushes               [2]prometheus.Counter // [ok, error]
	flushKeys, flushUses  prometheus.Counter
	flushTime             prometheus.Observer
	flushLag              prometheus.Gauge
	polls                 [2]prometheus.Counter
	feedChanges, feedLost prometheus.Counter
	feedLag               prometheus.Gauge
	varOps                *prometheus.CounterVec
	varTime               *prometheus.HistogramVec
	authnVec              *prometheus.CounterVec // for sources other than keyflow's
}

var _ observe.Hooks = (*Hooks)(nil)

// Buckets of the verification histogram: 1 µs (a cache fill without I/O) to
// about 1.8 s (a store read on a slow database), four per decade.
var verifyBuckets = prometheus.ExponentialBuckets(1e-6, 1.7783, 26)

// New registers keyflow's metrics with reg (nil: prometheus.DefaultRegisterer)
// and returns the Hooks that update them. It fails when reg refuses a metric
// (registered twice, say).
func New(reg prometheus.Registerer) (*Hooks, error) {
	if reg == nil {
		reg = prometheus.DefaultRegisterer
	}
	verifications := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keyflow_apikey_verifications_total",
		Help: "API-key verifications by outcome, and whether the verification cache answered.",
	}, []string{"outcome", "cached"})
	verifyTime := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "keyflow_apikey_verification_duration_seconds",
		Help:    "Time taken by API-key verifications that missed the cache, from the miss to the verdict (the store read).",
		Buckets: verifyBuckets,
	})
	authn := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keyflow_http_authentications_total",
		Help: "Requests authenticated by the middleware, by outcome and, for accepted ones, source.",
	}, []string{"outcome", "source"})
	flushes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keyflow_apikey_usage_flushes_total",
		Help: "Writes of batched usage counters to the store, by result.",
	}, []string{"result"})
	flushKeys := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "keyflow_apikey_usage_flushed_keys_total",
		Help: "Keys whose usage counters were written (rows), counted at each flush attempt.",
	})
	flushUses := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "keyflow_apikey_usage_flushed_uses_total",
		Help: "Verifications whose counts were written, counted at each flush attempt.",
	})
	flushTime := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "keyflow_apikey_usage_flush_duration_seconds",
		Help:    "Time taken by usage flushes.",
		Buckets: prometheus.ExponentialBuckets(1e-4, 2.5, 14),
	})
	flushLag := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "keyflow_apikey_usage_flush_lag_seconds",
		Help: "At the latest flush: time since the previous successful one (how long counts waited at most).",
	})
	polls := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keyflow_apikey_change_feed_polls_total",
		Help: "Polls of the change feed, by result.",
	}, []string{"result"})
	feedChanges := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "keyflow_apikey_change_feed_changes_total",
		Help: "Keys reported changed by other processes (revoked, disabled, enabled, created) and dropped from the cache.",
	})
	feedLost := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "keyflow_apikey_change_feed_lost_total",
		Help: "Polls that found the change log pruned past the cursor (the whole cache was dropped).",
	})
	feedLag := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "keyflow_apikey_change_feed_lag_seconds",
		Help: "At the latest poll: time since the latest successful poll began (how stale the cache may be).",
	})
	varOps := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keyflow_variables_store_operations_total",
		Help: "Store operations of the variables service, by method and result.",
	}, []string{"op", "result"})
	varTime := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "keyflow_variables_store_duration_seconds",
		Help:    "Time taken by store operations of the variables service, by method.",
		Buckets: prometheus.ExponentialBuckets(1e-5, 2.5, 16),
	}, []string{"op"})
	for _, c := range []prometheus.Collector{verifications, verifyTime, authn, flushes, flushKeys, flushUses,
		flushTime, flushLag, polls, feedChanges, feedLost, feedLag, varOps, varTime} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}

	h := &Hooks{
		verifyTime: verifyTime,
		flushKeys:  flushKeys, flushUses: flushUses, flushTime: flushTime, flushLag: flushLag,
		feedChanges: feedChanges, feedLost: feedLost, feedLag: feedLag,
		varOps: varOps, varTime: varTime, authnVec: authn,
		authnOK: make(map[string]prometheus.Counter),
	}
	for o := range observe.NumOutcomes {
		name := observe.Outcome(o).String()
		for c := range 2 {
			h.verified[o][c] = verifications.WithLabelValues(name, strconv.FormatBool(c == 1))
		}
		h.authn[o] = authn.WithLabelValues(name, "")
	}
	for _, src := range []string{"db", "env", "auto-login"} {
		h.authnOK[src] = authn.WithLabelValues(observe.OK.String(), src)
	}
	h.flushes[0], h.flushes[1] = flushes.WithLabelValues("ok"), flushes.WithLabelValues("error")
	h.polls[0], h.polls[1] = polls.WithLabelValues("ok"), polls.WithLabelValues("error")
	return h, nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func result(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}

// Verified implements observe.Hooks.
func (h *Hooks) Verified(_ context.Context, v observe.Verification) {
	if int(v.Outcome) >= observe.NumOutcomes {
		return
	}
	h.verified[v.Outcome][b2i(v.Cached)].Inc()
	if v.Duration > 0 {
		h.verifyTime.Observe(v.Duration.Seconds())
	}
}

// Authenticated implements observe.Hooks. A source other than keyflow's
// three is counted under its own label value.
func (h *Hooks) Authenticated(_ context.Context, a observe.Authentication) {
	switch {
	case int(a.Outcome) >= observe.NumOutcomes:
	case a.Outcome != observe.OK || a.Source == "":
		h.authn[a.Outcome].Inc()
	default:
		if c, ok := h.authnOK[a.Source]; ok {
			c.Inc()
		} else {
			h.authnVec.WithLabelValues(observe.OK.String(), a.Source).Inc()
		}
	}
}

// Flushed implements observe.Hooks.
func (h *Hooks) Flushed(_ context.Context, f observe.Flush) {
	h.flushes[b2i(f.Err != nil)].Inc()
	h.flushKeys.Add(float64(f.Keys))
	h.flushUses.Add(float64(f.Uses))
	h.flushTime.Observe(f.Duration.Seconds())
	h.flushLag.Set(f.Lag.Seconds())
}

// FeedPolled implements observe.Hooks.
func (h *Hooks) FeedPolled(_ context.Context, p observe.FeedPoll) {
	h.polls[b2i(p.Err != nil)].Inc()
	h.feedChanges.Add(float64(p.Changed))
	if p.Lost {
		h.feedLost.Inc()
	}
	h.feedLag.Set(p.Lag.Seconds())
}

// VariableAccessed implements observe.Hooks. Not-found, duplicate and
// conflict outcomes count as "ok": the store answered.
func (h *Hooks) VariableAccessed(_ context.Context, op observe.VariableOp) {
	res := "ok"
	if op.Err != nil && !isOutcome(op.Err) {
		res = result(op.Err)
	}
	h.varOps.WithLabelValues(op.Op, res).Inc()
	h.varTime.WithLabelValues(op.Op).Observe(op.Duration.Seconds())
}

// variableOutcomes are the store errors that are answers, not failures.
var variableOutcomes = []error{variables.ErrNotFound, variables.ErrDuplicate, variables.ErrConflict}

// isOutcome reports whether err is one of variableOutcomes.
func isOutcome(err error) bool {
	for _, o := range variableOutcomes {
		if errors.Is(err, o) {
			return true
		}
	}
	return false
}
