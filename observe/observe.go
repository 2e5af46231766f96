// Package observe defines the hooks through which keyflow reports what it
// does: every API-key verification with its outcome, whether the cache
// answered and how long it took; every request the middleware authenticated;
// the usage flushes (rows, lag, errors); the change feed's polls (lag, keys
// seen changed); the variables Service's operations; and spans around store
// reads.
//
// A [Hooks] is set in apikey.Config, middleware.Config and
// variables.ServiceConfig. Without one nothing is measured: no clock is read
// and nothing is allocated on the verification path. Adapters live in nested
// modules so that a program that does not use them never pulls in their
// dependencies: observe/promhooks (Prometheus) and observe/otelhooks
// (OpenTelemetry metrics and traces).
//
// The design follows net/http/httptrace and pgx's tracers: plain event
// structs passed by value (no allocation), and a Start/End pair for the spans
// around store reads, the Start returning the context that the End receives.
package observe

import (
	"context"
	"strconv"
	"time"
)

// Outcome is the verdict of one verification or authentication.
type Outcome uint8

// The outcomes. Their String forms are the label values the adapters use.
const (
	// OK: the key was accepted.
	OK Outcome = iota
	// Missing: no key was presented.
	Missing
	// Unknown: a malformed key, or one that no record has.
	Unknown
	// Expired: the key's record is past its expiry time.
	Expired
	// Disabled: the key's record is disabled (is_active false).
	Disabled
	// InactiveUser: the key is valid but its user is inactive or gone.
	// keyflow's packages do not know users: a host that refuses such a key
	// reports it (see Authentication).
	InactiveUser
	// RateLimited: the key is valid but over one of its usage limits.
	RateLimited
	// Unavailable: the store failed; nobody was authenticated.
	Unavailable
)

// NumOutcomes is the number of outcomes: Outcome values are 0 to
// NumOutcomes-1, so adapters can pre-resolve one metric child per outcome.
const NumOutcomes = int(Unavailable) + 1

var outcomeNames = [NumOutcomes]string{
	OK:           "ok",
	Missing:      "missing",
	Unknown:      "unknown",
	Expired:      "expired",
	Disabled:     "disabled",
	InactiveUser: "inactive_user",
	RateLimited:  "rate_limited",
	Unavailable:  "unavailable",
}

// String returns the outcome's label value: "ok", "missing", "unknown",
// "expired", "disabled", "inactive_user", "rate_limited" or "unavailable"
// ("outcome(N)" for a value out of range).
func (o Outcome) String() string {
	if int(o) < NumOutcomes {
		return outcomeNames[o]
	}
	return "outcome(" + strconv.Itoa(int(o)) + ")"
}

// ParseOutcome returns the Outcome whose String is s.
func ParseOutcome(s string) (Outcome, bool) {
	for i, name := range outcomeNames {
		if name == s {
			return Outcome(i), true
		}
	}
	return 0, false
}

// Verification is one apikey.Manager.Verify call.
type Verification struct {
	Outcome Outcome
	// Cached is true when the verification cache answered (the store was
	// not read). A key refused by its format alone (Missing, or a malformed
	// Unknown) is neither cached nor read.
	Cached bool
	// Duration is how long a verification that missed the cache took, from
	// the cache miss to the verdict (the store read, mostly), on the
	// monotonic clock. It is 0 when the store was not read: a cache hit does
	// no I/O and takes 100-250 ns, and timing it would cost two clock reads
	// (about 70 ns on a virtual machine), so it is not timed.
	Duration time.Duration
}

// Authentication is one request the middleware authenticated (not those it
// let through unauthenticated: Skip, CORS preflights). Outcome is the
// request's outcome: OK (Source then says how), Missing for a request
// without a key, else the Verifier's verdict.
//
// A host that refuses a request after the middleware accepted it (its user
// is inactive, say) reports that as a second Authentication with that
// outcome (InactiveUser); the request was counted OK before.
type Authentication struct {
	Outcome Outcome
	// Source is how an accepted request was authenticated: "db" (a stored
	// key), "env" (LANGFLOW_API_KEY) or "auto-login"; "" unless Outcome is
	// OK.
	Source string
}

// Flush is one write of batched usage counters (apikey.Manager.Flush).
type Flush struct {
	// Keys is the number of keys whose counters were written (rows).
	Keys int
	// Uses is the number of verifications those counters hold.
	Uses int64
	// Lag is how long the counters written had waited at most: the time
	// since the previous successful flush (or since the Manager was made).
	// While flushes fail it keeps growing.
	Lag time.Duration
	// Duration is how long the store took.
	Duration time.Duration
	// Err is the store's failure (the counts are then kept for the next
	// flush); nil on success.
	Err error
}

// FeedPoll is one poll of the change feed (apikey.Config.Changes).
type FeedPoll struct {
	// Changed is the number of keys the poll reported changed (revoked,
	// disabled, enabled or created elsewhere) and dropped from the cache.
	Changed int
	// Lost is true when the feed could not list every change (its log was
	// pruned past the cursor) and the whole cache was dropped.
	Lost bool
	// Lag is how far behind the cache may be at the end of this poll: the
	// time since the start of the latest successful poll (this one on
	// success). It grows while the feed fails; past ChangesMaxLag the cache
	// is no longer trusted.
	Lag time.Duration
	// Duration is how long the poll took.
	Duration time.Duration
	// Err is the poll's failure; nil on success.
	Err error
}

// VariableOp is one store operation made by variables.Service (a Service
// call makes one or a few: Update reads, then writes).
type VariableOp struct {
	// Op is the store method: "Create", "Get", "GetByName", "ListByUser",
	// "Update", "Delete", "ListCiphertexts" or "SwapCiphertext".
	Op string
	// Err is the store's error (nil on success): an outcome such as
	// variables.ErrNotFound or ErrConflict, or a failure.
	Err error
	// Duration is how long the operation took.
	Duration time.Duration
}

// StoreRead names a read of a store, for a span around it.
type StoreRead struct {
	// Store is the package whose store is read: "apikey" or "variables".
	Store string
	// Op is the store method: "ByHash", "ListByUser", "Get", "GetByName",
	// "ListCiphertexts".
	Op string
}

// Hooks receives keyflow's events. Every method is called synchronously on
// the goroutine of the operation (a Verify, a request, the flusher, the
// change feed poller), so it must be fast, safe for concurrent use, and must
// not call back into the reporting component. Events never carry a key, a
// key hash or a variable's value.
//
// Embed [Nop] in an implementation so that it keeps compiling when methods
// are added, and implement the methods of interest.
type Hooks interface {
	// Verified reports one apikey.Manager.Verify call.
	Verified(ctx context.Context, v Verification)
	// Authenticated reports one request authenticated by the middleware.
	Authenticated(ctx context.Context, a Authentication)
	// Flushed reports one usage flush.
	Flushed(ctx context.Context, f Flush)
	// FeedPolled reports one change feed poll.
	FeedPolled(ctx context.Context, p FeedPoll)
	// VariableAccessed reports one variables.Service operation.
	VariableAccessed(ctx context.Context, op VariableOp)
	// StoreReadStart is called before a store read; the context it returns
	// is passed to the read and to StoreReadEnd (a tracer puts its span in
	// it). It must return ctx or a context derived from it.
	StoreReadStart(ctx context.Context, r StoreRead) context.Context
	// StoreReadEnd is called after the read with StoreReadStart's context
	// and the read's error (nil on success; a not-found outcome included).
	StoreReadEnd(ctx context.Context, r StoreRead, err error)
}

// Nop is a Hooks that does nothing. Embed it in an implementation of Hooks
// to implement only some methods.
type Nop struct{}

var _ Hooks = Nop{}

// Verified implements Hooks.
func (Nop) Verified(context.Context, Verification) {}

// Authenticated implements Hooks.
func (Nop) Authenticated(context.Context, Authentication) {}

// Flushed implements Hooks.
func (Nop) Flushed(context.Context, Flush) {}

// FeedPolled implements Hooks.
func (Nop) FeedPolled(context.Context, FeedPoll) {}

// VariableAccessed implements Hooks.
func (Nop) VariableAccessed(context.Context, VariableOp) {}

// StoreReadStart implements Hooks: it returns ctx.
func (Nop) StoreReadStart(ctx context.Context, _ StoreRead) context.Context { return ctx }

// StoreReadEnd implements Hooks.
func (Nop) StoreReadEnd(context.Context, StoreRead, error) {}

// Join returns a Hooks that calls each of hs in order (nil entries are
// skipped): for example a Prometheus adapter for metrics and an
// OpenTelemetry one for traces. StoreReadStart passes each hook the context
// the previous one returned. It returns nil when no hook is left, so that a
// component given the result measures nothing.
func Join(hs ...Hooks) Hooks {
	var list multi
	for _, h := range hs {
		switch h := h.(type) {
		case nil:
		case multi:
			list = append(list, h...)
		default:
			list = append(list, h)
		}
	}
	switch len(list) {
	case 0:
		return nil
	case 1:
		return list[0]
	}
	return list
}

type multi []Hooks

func (m multi) Verified(ctx context.Context, v Verification) {
	for _, h := range m {
		h.Verified(ctx, v)
	}
}

func (m multi) Authenticated(ctx context.Context, a Authentication) {
	for _, h := range m {
		h.Authenticated(ctx, a)
	}
}

func (m multi) Flushed(ctx context.Context, f Flush) {
	for _, h := range m {
		h.Flushed(ctx, f)
	}
}

func (m multi) FeedPolled(ctx context.Context, p FeedPoll) {
	for _, h := range m {
		h.FeedPolled(ctx, p)
	}
}

func (m multi) VariableAccessed(ctx context.Context, op VariableOp) {
	for _, h := range m {
		h.VariableAccessed(ctx, op)
	}
}

func (m multi) StoreReadStart(ctx context.Context, r StoreRead) context.Context {
	for _, h := range m {
		ctx = h.StoreReadStart(ctx, r)
	}
	return ctx
}

func (m multi) StoreReadEnd(ctx context.Context, r StoreRead, err error) {
	for i := len(m) - 1; i >= 0; i-- {
		m[i].StoreReadEnd(ctx, r, err)
	}
}
