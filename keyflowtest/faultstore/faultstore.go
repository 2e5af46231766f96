// Package faultstore wraps keyflow's stores so that tests can make them fail
// or stall on purpose, in the manner of Vault's physical.ErrorInjector: a
// chosen share of calls fails with ErrInjected or is delayed, decided by a
// seeded generator (deterministic sequence), by "fail the next N calls", or by
// a function that decides per call.
//
//	inj := faultstore.New(1)          // seed 1
//	inj.SetFailRate(0.2)              // 20 % of calls fail
//	keys, _ := apikey.NewManager(apikey.Config{Store: faultstore.Keys(apikey.NewMemoryStore(), inj)})
//
// KeyStore wraps an apikey.Store and VariableStore a variables.Store (and so
// a secrets.CiphertextStore). By default an injected failure happens before
// the wrapped call, which then does not run; SetFailAfter makes it happen
// after the call has run (a lost reply: the write took place but the caller
// sees an error). Delays honour the context: a call whose context ends while
// it waits returns an error wrapping ctx.Err() without running.
//
// It is test infrastructure: nothing in it logs, and it never inspects or
// stores the data passing through.
package faultstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// ErrInjected is the error every injected failure wraps (with the operation
// name).
var ErrInjected = errors.New("faultstore: injected failure")

// Injector decides the fate of each store call. Its zero value is not
// usable; call New. It is safe for concurrent use; the order in which
// concurrent calls draw decisions is the scheduler's, but the sequence of
// decisions for a given seed is fixed.
type Injector struct {
	mu        sync.Mutex
	rng       *rand.Rand
	failRate  float64
	delayRate float64
	delay     time.Duration
	failNext  int
	after     bool
	only      []string
	decide    func(op string) error
	hook      func(op string)
	calls     int
	callsOf   map[string]int
	failures  int
}

// New returns an Injector that injects nothing until configured, drawing its
// random decisions from a PCG generator seeded with seed.
func New(seed uint64) *Injector {
	return &Injector{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// SetFailRate makes a share rate (0…1) of the calls fail with ErrInjected.
func (i *Injector) SetFailRate(rate float64) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.failRate = rate
}

// SetDelay delays a share rate (0…1) of the calls by d before they run.
func (i *Injector) SetDelay(rate float64, d time.Duration) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.delayRate, i.delay = rate, d
}

// FailNext makes the next n calls (of the selected operations) fail,
// whatever the rates say.
func (i *Injector) FailNext(n int) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.failNext = n
}

// SetDecide installs f, which decides per call: a non-nil error fails the
// call with an error wrapping both ErrInjected and it. It is consulted after
// FailNext and before the rates; nil removes it.
func (i *Injector) SetDecide(f func(op string) error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.decide = f
}

// FailAll makes every call fail with an error wrapping err (and
// ErrInjected) until Reset, as a database that went away would.
func (i *Injector) FailAll(err error) {
	i.SetDecide(func(string) error { return err })
}

// SetFailAfter chooses when an injected failure happens: false (the default)
// before the wrapped call, which then does not run; true after it ran, so a
// write has taken effect although the caller sees an error.
func (i *Injector) SetFailAfter(after bool) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.after = after
}

// Only restricts faults and delays to the named operations (the method
// names of the wrapped interface, e.g. "ByHash", "SwapCiphertext"); no names:
// every operation.
func (i *Injector) Only(ops ...string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.only = slices.Clone(ops)
}

// SetHook installs f, called with the operation's name after each wrapped
// call has run (not for calls failed before running), before the wrapper
// returns: a test can stall a call there, between the store's read and the
// caller's use of it. nil removes it.
func (i *Injector) SetHook(f func(op string)) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.hook = f
}

// Reset turns every fault off (rates, delay, FailNext, SetDecide, SetHook,
// Only, SetFailAfter) and zeroes the counters; the generator keeps its state.
func (i *Injector) Reset() {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.failRate, i.delayRate, i.delay, i.failNext = 0, 0, 0, 0
	i.after, i.only, i.decide, i.hook = false, nil, nil, nil
	i.calls, i.failures, i.callsOf = 0, 0, nil
}

// CallsOf returns how many calls of operation op (e.g. "ByHash") went
// through the wrappers since New or Reset, failed ones included.
func (i *Injector) CallsOf(op string) int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.callsOf[op]
}

// Calls returns how many calls went through the wrappers since New or Reset.
func (i *Injector) Calls() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.calls
}

// Failures returns how many calls were failed on purpose since New or Reset.
func (i *Injector) Failures() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.failures
}

// plan is the decision for one call.
type plan struct {
	delay time.Duration
	err   error // nil: no failure
	after bool
}

func (i *Injector) plan(op string) plan {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.calls++
	if i.callsOf == nil {
		i.callsOf = map[string]int{}
	}
	i.callsOf[op]++
	if len(i.only) > 0 && !slices.Contains(i.only, op) {
		return plan{}
	}
	var p plan
	if i.delayRate > 0 && i.rng.Float64() < i.delayRate {
		p.delay = i.delay
	}
	switch {
	case i.failNext > 0:
		i.failNext--
		p.err = fmt.Errorf("%w: %s", ErrInjected, op)
	case i.decide != nil:
		if err := i.decide(op); err != nil {
			p.err = fmt.Errorf("%w: %s: %w", ErrInjected, op, err)
		}
	}
	if p.err == nil && i.failRate > 0 && i.rng.Float64() < i.failRate {
		p.err = fmt.Errorf("%w: %s", ErrInjected, op)
	}
	if p.err != nil {
		i.failures++
		p.after = i.after
	}
	return p
}

// call runs fn under the injector's decision for op.
func call(ctx context.Context, i *Injector, op string, fn func() error) error {
	p := i.plan(op)
	if p.delay > 0 {
		t := time.NewTimer(p.delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("faultstore: %s: %w", op, ctx.Err())
		}
	}
	if p.err != nil && !p.after {
		return p.err
	}
	err := fn()
	i.mu.Lock()
	hook := i.hook
	i.mu.Unlock()
	if hook != nil {
		hook(op)
	}
	if err != nil {
		return err
	}
	return p.err
}
