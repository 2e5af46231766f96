package apikey

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// How a Manager enforces usage limits (see the package documentation,
// "Usage limits").
//
// Each limited key has a keyLimiter in the Manager's registry, found from
// the cached entry with no lookup. Its rate limits hold, per window, a
// lease: units taken from the Limiter and not yet used. A request is
// charged against the lease under the key's mutex; only when the lease runs
// short does the Manager call Limiter.Take for a block. The quota works the
// same way against LimitStore.TakeQuota. Unlimited keys never reach any of
// this: their entry's lim is nil.

// leaseShare is the share of a limit one block may take from a shared
// Limiter or from a quota: 1/200. With N instances, at most N·0.5 % of a
// window's units are held unused by others when one instance is refused
// (2 % at N = 4), and a killed instance loses at most 0.5 % of a quota's
// grant (at most maxBlock).
const (
	leaseShare = 200
	maxBlock   = 10000
	leaseIdle  = time.Second // a quota lease unused this long goes back to the store
)

// limiting is the Manager's limits state.
type limiting struct {
	limiter  Limiter
	local    bool // limiter is in-process: a block is the whole window
	failOpen bool
	quotas   LimitStore // nil: the store keeps no limits

	mu   sync.Mutex
	keys map[string]*keyLimiter

	returning atomic.Bool  // the lease-return loop runs
	known     atomic.Int64 // len(keys), read without the lock
}

// KeyLimited reports whether key keyID has usage limits, as this Manager
// last read its record (a verification or SetLimits here). A host uses it
// to keep a caller authenticated by a limited key from creating keys or
// changing limits, which would let it escape its own limits (package
// apikeyhttp does).
func (m *Manager) KeyLimited(keyID string) bool {
	if m.ready() != nil || keyID == "" || m.lim.known.Load() == 0 {
		return false
	}
	m.lim.mu.Lock()
	defer m.lim.mu.Unlock()
	_, ok := m.lim.keys[keyID]
	return ok
}

func (l *limiting) init(cfg Config, store Store) {
	l.limiter, l.failOpen = cfg.Limiter, cfg.LimitsFailOpen
	if l.limiter == nil {
		l.limiter = NewMemoryLimiter()
	}
	_, l.local = l.limiter.(*MemoryLimiter)
	l.quotas, _ = store.(LimitStore)
	l.keys = make(map[string]*keyLimiter)
}

// keyLimiter is one key's limits and leases on one Manager.
type keyLimiter struct {
	id   string
	conf string // the limits it was made for (limitsKey)

	mu      sync.Mutex
	rates   []rateSlot
	quota   *quotaSlot
	lastUse int64 // Unix nanoseconds
}

type rateSlot struct {
	RateLimit
	index int64 // current window
	avail int64 // units of window index taken and not used
	left  int64 // units left in the Limiter after the last take
}

type quotaSlot struct {
	cfg   Quota
	take  QuotaTake // the last take: its period and epoch own avail
	has   bool      // take is set
	avail int64     // uses taken and not used
	left  int64     // uses left in the store after the last take
}

// limitsKey identifies a configuration of limits (not the quota's state).
func limitsKey(l Limits) string {
	s := ""
	for _, r := range l.Rate {
		s += fmt.Sprintf("%s=%d/%d;", r.Name, r.Limit, r.Window)
	}
	if q := l.Quota; q != nil {
		s += fmt.Sprintf("q=%d;%d/%s", q.Limit, q.Refill.Amount, q.Refill.Period)
	}
	return s
}

// forRecord returns the keyLimiter of rec, made or remade when its limits
// changed, or nil when it has none. It is called when an entry is made,
// never on a cache hit.
func (l *limiting) forRecord(rec Record) *keyLimiter {
	if rec.Limits.IsZero() {
		if l.known.Load() > 0 {
			l.mu.Lock()
			if _, ok := l.keys[rec.ID]; ok {
				delete(l.keys, rec.ID)
				l.known.Add(-1)
			}
			l.mu.Unlock()
		}
		return nil
	}
	lim := rec.Limits.Normalize()
	conf := limitsKey(lim)
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.keys[rec.ID]; !ok {
		l.known.Add(1)
	}
	if kl := l.keys[rec.ID]; kl != nil && kl.conf == conf {
		return kl
	}
	kl := &keyLimiter{id: rec.ID, conf: conf}
	for _, r := range lim.Rate {
		kl.rates = append(kl.rates, rateSlot{RateLimit: r, index: -1})
	}
	if lim.Quota != nil {
		kl.quota = &quotaSlot{cfg: *lim.Quota, left: lim.Quota.Remaining}
	}
	l.keys[rec.ID] = kl
	return kl
}

// forget drops key id's limiter, first returning its quota lease unless
// reset (the store's quota was reset, so the lease is void).
func (m *Manager) forgetLimiter(ctx context.Context, id string, reset bool) {
	m.lim.mu.Lock()
	kl := m.lim.keys[id]
	if kl != nil {
		delete(m.lim.keys, id)
		m.lim.known.Add(-1)
	}
	m.lim.mu.Unlock()
	if kl != nil && !reset {
		kl.mu.Lock()
		m.returnLease(ctx, kl)
		kl.mu.Unlock()
	}
}

// block is how many units to ask for when need are missing from a lease of
// a limit of size limit.
func (l *limiting) block(limit, need int64) int64 {
	if l.local {
		return max(limit, need)
	}
	return max(need, min((limit+leaseShare-1)/leaseShare, maxBlock))
}

// Charge is what a verification charged to a limited key, returned by
// VerifyCharge: the key's limits as the charge left them (for the
// RateLimit header fields) and what Refund needs to give the quota back.
// The zero value is the charge of an unlimited key.
type Charge struct {
	kl     *keyLimiter
	quota  int64 // uses charged to the quota
	take   QuotaTake
	status []LimitStatus
}

// Limited reports whether the key has limits (and so the response should
// carry the RateLimit header fields).
func (c Charge) Limited() bool { return c.kl != nil }

// Status returns the key's limits after the charge, rate limits first,
// then the quota (named "quota"). The slice is the caller's.
func (c Charge) Status() []LimitStatus { return c.status }

// VerifyCharge is Verify charging cost units (cost < 1 counts as 1) to the
// key's rate limits and quota, and returning the Charge, for a host that
// charges requests by what they do and refunds failed ones. Verify is
// VerifyCharge with cost 1. An unlimited key's charge is the zero Charge,
// and costs nothing more than Verify.
func (m *Manager) VerifyCharge(ctx context.Context, key string, cost int64) (Principal, Charge, error) {
	var c Charge
	p, err := m.verify(ctx, key, cost, &c, nil)
	return p, c, err
}

// Refund gives back the quota uses of a charge, for a request that the
// server failed (package middleware refunds every 5xx). Rate-limit units
// are not refunded: a failed request still used the server's capacity. It
// does no I/O (the uses go back to this Manager's lease) and does nothing
// for an unlimited key, a charge refunded before, or a quota refilled or
// reset since the charge.
func (m *Manager) Refund(c *Charge) {
	if c == nil || c.kl == nil || c.quota == 0 {
		return
	}
	kl, n := c.kl, c.quota
	c.quota = 0
	kl.mu.Lock()
	defer kl.mu.Unlock()
	if q := kl.quota; q != nil && q.has && q.take.Epoch == c.take.Epoch && q.take.Period.Equal(c.take.Period) {
		q.avail += n
	}
}

// charge charges cost to kl at now. It returns a *LimitError when a limit is
// spent, an ErrUnavailable error when the Limiter or the store fails (unless
// Config.LimitsFailOpen), and fills c when it is not nil.
func (m *Manager) charge(ctx context.Context, kl *keyLimiter, now, cost int64, c *Charge) error {
	cost = max(cost, 1)
	kl.mu.Lock()
	defer kl.mu.Unlock()
	err := m.chargeLocked(ctx, kl, now, cost, c)
	if !errors.Is(err, ErrRateLimited) {
		return err
	}
	// A shared Limiter gives nothing for a window that another instance has
	// already closed, which looks like a spent window. If the clock has
	// since moved into a later window of a refused rate limit, the refusal
	// may be only this request's time being stale: charge it again, once,
	// at the current time (what it would have been charged had it come a
	// moment later; a refusal undoes everything it charged).
	fresh := m.nowNano()
	for _, r := range kl.rates {
		if fresh/int64(r.Window) > r.index {
			return m.chargeLocked(ctx, kl, fresh, cost, c)
		}
	}
	return err
}

// chargeLocked is charge with kl.mu held.
func (m *Manager) chargeLocked(ctx context.Context, kl *keyLimiter, now, cost int64, c *Charge) error {
	// now was read before the lock: a request that waited here behind
	// others may hold a time before theirs, even in a window they have
	// closed. It is charged at the latest time seen instead, so that the
	// key's windows only move forward: going back would drop the lease of
	// the current window and ask a shared Limiter for a window it has left
	// (none left: a refusal while the current window still has units).
	now = max(now, kl.lastUse)
	kl.lastUse = now
	var charged [MaxRateLimits]bool // rate slots charged, undone on a refusal
	undo := func() {
		for i := range kl.rates {
			if charged[i] {
				kl.rates[i].avail += cost
			}
		}
	}
	for i := range kl.rates {
		r := &kl.rates[i]
		if idx := now / int64(r.Window); idx != r.index {
			r.index, r.avail, r.left = idx, 0, r.Limit
		}
		if r.avail < cost {
			if cost <= r.Limit && r.left > 0 {
				w := Window{KeyID: kl.id, Name: r.Name, Limit: r.Limit, Length: r.Window, Index: r.index}
				taken, left, err := m.lim.limiter.Take(ctx, w, m.lim.block(r.Limit, cost-r.avail))
				if err != nil {
					if m.lim.failOpen {
						continue // admitted uncounted while the Limiter is down
					}
					undo()
					return unavailable("rate limit", err)
				}
				r.avail += taken
				r.left = left
			}
			if r.avail < cost {
				undo()
				return m.refusal(kl, now, ErrRateLimited, r.Name, time.Duration((r.index+1)*int64(r.Window)-now))
			}
		}
		r.avail -= cost
		charged[i] = true
	}
	if q := kl.quota; q != nil {
		t := time.Unix(0, now).UTC()
		var period time.Time
		if q.cfg.Refill.Amount > 0 {
			period = q.cfg.Refill.Period.Start(t)
		}
		if q.has && period.After(q.take.Period) {
			q.avail, q.left = 0, q.cfg.Refill.Amount // the store refills at the next take
		}
		if q.avail < cost {
			if err := m.takeQuota(ctx, kl, q, cost, period); err != nil {
				if !m.lim.failOpen {
					undo()
					return unavailable("quota", err)
				}
			} else if q.avail < cost {
				undo()
				var retry time.Duration
				if q.cfg.Refill.Amount > 0 {
					retry = q.cfg.Refill.Period.Next(t).Sub(t)
				}
				return m.refusal(kl, now, ErrQuotaExhausted, quotaPolicy, retry)
			}
		}
		if q.avail >= cost {
			q.avail -= cost
			if c != nil {
				c.quota, c.take = cost, q.take
			}
		}
	}
	if c != nil {
		c.kl = kl
		c.status = kl.status(now)
	}
	return nil
}

// takeQuota takes a block of uses for q, at least need beyond its lease.
// The caller holds kl.mu.
func (m *Manager) takeQuota(ctx context.Context, kl *keyLimiter, q *quotaSlot, cost int64, period time.Time) error {
	if m.lim.quotas == nil {
		return ErrLimitsUnsupported
	}
	size := q.cfg.Limit
	if q.cfg.Refill.Amount > 0 {
		size = q.cfg.Refill.Amount
	}
	need := cost - q.avail
	n := max(need, min(max(q.left, size)/leaseShare, maxBlock))
	qt, err := m.lim.quotas.TakeQuota(ctx, kl.id, n, period)
	if err != nil {
		return err
	}
	if q.has && (qt.Epoch != q.take.Epoch || !qt.Period.Equal(q.take.Period)) {
		q.avail = 0 // reserved under a grant that was reset or refilled since
	}
	q.take, q.has = qt, true
	q.avail += qt.Taken
	q.left = qt.Remaining
	if q.avail > 0 {
		m.startReturning()
	}
	return nil
}

func (m *Manager) refusal(kl *keyLimiter, now int64, kind error, policy string, retry time.Duration) error {
	return &LimitError{Kind: kind, Policy: policy, RetryAfter: max(retry, 0), Status: kl.status(now)}
}

// status reports kl's limits at now. The caller holds kl.mu.
func (kl *keyLimiter) status(now int64) []LimitStatus {
	out := make([]LimitStatus, 0, len(kl.rates)+1)
	for _, r := range kl.rates {
		s := LimitStatus{Name: r.Name, Limit: r.Limit, Window: r.Window, Remaining: r.Limit}
		idx := now / int64(r.Window)
		if idx == r.index {
			s.Remaining = max(r.left, 0) + r.avail
		}
		s.Reset = time.Duration((idx+1)*int64(r.Window) - now)
		out = append(out, s)
	}
	if q := kl.quota; q != nil {
		s := LimitStatus{Name: quotaPolicy, Limit: q.cfg.Limit, Remaining: max(q.left, 0) + q.avail}
		if f := q.cfg.Refill; f.Amount > 0 {
			t := time.Unix(0, now).UTC()
			start, next := f.Period.Start(t), f.Period.Next(t)
			s.Limit, s.Window, s.Reset = f.Amount, next.Sub(start), next.Sub(t)
			if q.has && start.After(q.take.Period) {
				s.Remaining = f.Amount
			}
		}
		out = append(out, s)
	}
	return out
}

// startReturning starts the loop that gives idle quota leases back to the
// store, unless it runs. It stops when no lease is left.
func (m *Manager) startReturning() {
	if m.lim.returning.Load() || !m.lim.returning.CompareAndSwap(false, true) {
		return
	}
	select {
	case <-m.done.Done():
		m.lim.returning.Store(false)
		return
	default:
	}
	m.wg.Add(1)
	go m.returnLoop()
}

func (m *Manager) returnLoop() {
	defer m.wg.Done()
	t := time.NewTicker(leaseIdle / 2)
	defer t.Stop()
	for {
		select {
		case <-m.done.Done():
			m.lim.returning.Store(false)
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(m.done, minFlushWait)
		held := m.returnLeases(ctx, m.nowNano()-int64(leaseIdle))
		cancel()
		if held == 0 {
			m.lim.returning.Store(false)
			// A lease taken between the sweep and the store above started
			// no loop: look once more.
			if m.returnLeases(context.Background(), -1) == 0 || !m.lim.returning.CompareAndSwap(false, true) {
				return
			}
		}
	}
}

// returnLeases gives back the quota leases of keys not used since before
// (every lease when before is math.MaxInt64), and returns how many keys
// still hold one (before < 0: only counts).
func (m *Manager) returnLeases(ctx context.Context, before int64) int {
	m.lim.mu.Lock()
	kls := make([]*keyLimiter, 0, len(m.lim.keys))
	for _, kl := range m.lim.keys {
		if kl.quota != nil {
			kls = append(kls, kl)
		}
	}
	m.lim.mu.Unlock()
	held := 0
	for _, kl := range kls {
		kl.mu.Lock()
		if before >= 0 && kl.lastUse < before {
			m.returnLease(ctx, kl)
		}
		if kl.quota.avail > 0 {
			held++
		}
		kl.mu.Unlock()
	}
	return held
}

// returnLease gives kl's unused quota uses back to the store. Uses whose
// return fails are dropped (they can only be under-spent) and logged. The
// caller holds kl.mu.
func (m *Manager) returnLease(ctx context.Context, kl *keyLimiter) {
	q := kl.quota
	if q == nil || q.avail == 0 || !q.has || m.lim.quotas == nil {
		return
	}
	n := q.avail
	q.avail = 0
	if err := m.lim.quotas.ReturnQuota(ctx, kl.id, n, q.take); err != nil {
		m.log.Warn("apikey: unused quota uses could not be returned to the store; they are lost", "key_id", kl.id, "uses", n, "err", err)
		return
	}
	q.left += n
}

// SetLimits replaces the limits of key id of userID (l's zero value removes
// them) and returns the updated record. With resetQuota, or when the key
// had no quota, the quota's remaining uses are set to l.Quota.Limit (a new
// grant, for the current refill period); without, the uses left are kept
// (a change of the rate limits or of the refill does not give uses back).
// Errors: ErrInvalidLimits; ErrLimitsUnsupported for a store that keeps no
// limits; ErrNotFound; ErrUnavailable. The change applies on this Manager at
// once, and on others sharing the store within their change feed's bound;
// after a reset, another Manager may still spend the rest of a block it
// reserved under the old grant (at most one block, 0.5 % of the grant).
func (m *Manager) SetLimits(ctx context.Context, userID, id string, l Limits, resetQuota bool) (Record, error) {
	if err := m.ready(); err != nil {
		return Record{}, err
	}
	if err := l.Validate(); err != nil {
		return Record{}, err
	}
	if m.lim.quotas == nil {
		return Record{}, ErrLimitsUnsupported
	}
	l = grantLimits(l.Normalize(), m.now())
	// Uses this Manager holds go back first, so that a kept quota counts them.
	m.forgetLimiter(ctx, id, false)
	rec, err := m.lim.quotas.SetLimits(ctx, userID, id, l, resetQuota)
	if err != nil {
		return Record{}, m.mutationError("set limits", id, err)
	}
	m.forgetLimiter(ctx, id, true)
	m.Invalidate(rec.Hash)
	m.presentLimits([]Record{rec}, m.now())
	return rec.clone(), nil
}

// grantLimits sets the state of a new grant of l's quota at now.
func grantLimits(l Limits, now time.Time) Limits {
	if q := l.Quota; q != nil {
		q.Remaining, q.PeriodStart = q.Limit, time.Time{}
		if q.Refill.Amount > 0 {
			q.PeriodStart = q.Refill.Period.Start(now)
		}
	}
	return l
}

// checkLimits validates the limits of a new key and that the store keeps
// them.
func (m *Manager) checkLimits(l Limits) error {
	if l.IsZero() {
		return nil
	}
	if err := l.Validate(); err != nil {
		return err
	}
	if m.lim.quotas == nil {
		return ErrLimitsUnsupported
	}
	return nil
}

// presentLimits applies the refills that are due at now to recs' quotas,
// as listings show them.
func (m *Manager) presentLimits(recs []Record, now time.Time) {
	for i := range recs {
		q := recs[i].Limits.Quota
		if q == nil || q.Refill.Amount == 0 {
			continue
		}
		if start := q.Refill.Period.Start(now); start.After(q.PeriodStart) {
			q.Remaining, q.PeriodStart = q.Refill.Amount, start
		}
	}
}
