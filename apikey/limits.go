package apikey

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Limits are a key's usage limits: zero or more rate limits and an optional
// quota. The zero value is an unlimited key, what every key is by default
// and what Langflow's keys are; such a key costs nothing extra to verify.
type Limits struct {
	// Rate are the key's rate limits, all enforced together (e.g. 100 a
	// minute and 10 000 a day); at most MaxRateLimits, with distinct names.
	Rate []RateLimit
	// Quota is the key's budget of uses; nil: none.
	Quota *Quota
}

// RateLimit allows Limit request units in each fixed window of length
// Window. Windows are aligned on the Unix epoch (UTC): a 1-minute window
// runs from one minute boundary to the next, a 24-hour window from midnight
// UTC to midnight UTC. At most Limit units are accepted within each window,
// exactly, on one instance and across instances sharing a Limiter. Like
// every fixed window, two windows back to back may accept up to 2·Limit
// within one Window's length across their boundary.
type RateLimit struct {
	// Name identifies the limit in the RateLimit-Policy and RateLimit
	// header fields and in errors: 1 to 32 characters among letters,
	// digits, '_', '-' and '.'; not "quota". "": derived from Window
	// ("second", "minute", "hour", "day", "week", else "90s", "5m", ...).
	Name string
	// Limit is the number of units (requests, or their cost) allowed per
	// window: 1 to MaxLimit.
	Limit int64
	// Window is the window length: whole seconds, 1 s to 366 days.
	Window time.Duration
}

// Quota is a budget of uses that requests draw from, optionally refilled at
// the start of every calendar Period (UTC). It is kept by the store, so it
// survives restarts and is shared exactly by every instance on that store.
type Quota struct {
	// Limit is the number of uses granted when the quota is set or reset
	// (Create, SetLimits with resetQuota): 0 to MaxLimit.
	Limit int64
	// Refill, when its Amount is positive, sets the remaining uses to
	// Amount at the start of every Refill.Period (unused uses do not carry
	// over). The zero value: never refilled.
	Refill Refill
	// Remaining is the number of uses left, as the store last computed it
	// (the Manager's List applies a refill that is due). Uses that running
	// Managers have reserved in advance are already deducted. Set by the
	// store; ignored on input.
	Remaining int64
	// PeriodStart is the start of the refill period Remaining belongs to
	// (zero without Refill). Set by the store; ignored on input.
	PeriodStart time.Time
}

// Refill is a quota's refill: Amount uses at the start of every Period.
type Refill struct {
	Amount int64  // 1 to MaxLimit; 0: no refill
	Period Period // required when Amount is positive
}

// Period is a calendar period of a quota refill, in UTC.
type Period string

// The refill periods. Each starts at 00:00:00 UTC: PeriodHour at every
// whole hour, PeriodDay every day, PeriodWeek every Monday (ISO 8601 weeks),
// PeriodMonth on the 1st of every month.
const (
	PeriodHour  Period = "hour"
	PeriodDay   Period = "day"
	PeriodWeek  Period = "week"
	PeriodMonth Period = "month"
)

// Bounds of limits.
const (
	MaxRateLimits = 8
	MaxLimit      = 1_000_000_000_000 // 10^12
	maxWindow     = 366 * 24 * time.Hour
	maxNameLen    = 32
	quotaPolicy   = "quota" // the quota's name in header fields
)

// Valid reports whether p is one of the four periods.
func (p Period) Valid() bool {
	switch p {
	case PeriodHour, PeriodDay, PeriodWeek, PeriodMonth:
		return true
	}
	return false
}

// Start returns the start of the period that contains t, in UTC.
func (p Period) Start(t time.Time) time.Time {
	t = t.UTC()
	switch p {
	case PeriodHour:
		return t.Truncate(time.Hour)
	case PeriodDay:
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	case PeriodWeek:
		d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
		return d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7)) // back to Monday
	case PeriodMonth:
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	return time.Time{}
}

// Next returns the start of the period after the one that contains t.
func (p Period) Next(t time.Time) time.Time {
	s := p.Start(t)
	switch p {
	case PeriodHour:
		return s.Add(time.Hour)
	case PeriodDay:
		return s.AddDate(0, 0, 1)
	case PeriodWeek:
		return s.AddDate(0, 0, 7)
	case PeriodMonth:
		return s.AddDate(0, 1, 0)
	}
	return time.Time{}
}

// IsZero reports whether l limits nothing.
func (l Limits) IsZero() bool { return len(l.Rate) == 0 && l.Quota == nil }

// Validate reports the first problem of l, wrapping ErrInvalidLimits.
// Names are filled in from windows first (Normalize).
func (l Limits) Validate() error {
	l = l.Normalize()
	if len(l.Rate) > MaxRateLimits {
		return fmt.Errorf("%w: more than %d rate limits", ErrInvalidLimits, MaxRateLimits)
	}
	seen := make(map[string]bool, len(l.Rate))
	for _, r := range l.Rate {
		if err := r.validate(); err != nil {
			return err
		}
		if seen[r.Name] {
			return fmt.Errorf("%w: two rate limits are named %q", ErrInvalidLimits, r.Name)
		}
		seen[r.Name] = true
	}
	if q := l.Quota; q != nil {
		if q.Limit < 0 || q.Limit > MaxLimit {
			return fmt.Errorf("%w: a quota must be 0 to %d uses", ErrInvalidLimits, int64(MaxLimit))
		}
		if err := q.Refill.validate(); err != nil {
			return err
		}
	}
	return nil
}

// Normalize returns a copy of l with every rate limit named (see
// RateLimit.Name) and no memory shared with l.
func (l Limits) Normalize() Limits {
	out := Limits{}
	if len(l.Rate) > 0 {
		out.Rate = make([]RateLimit, len(l.Rate))
		for i, r := range l.Rate {
			if r.Name == "" {
				r.Name = windowName(r.Window)
			}
			out.Rate[i] = r
		}
	}
	if l.Quota != nil {
		q := *l.Quota
		out.Quota = &q
	}
	return out
}

func (r RateLimit) validate() error {
	switch {
	case r.Limit < 1 || r.Limit > MaxLimit:
		return fmt.Errorf("%w: a rate limit must allow 1 to %d requests", ErrInvalidLimits, int64(MaxLimit))
	case r.Window < time.Second || r.Window > maxWindow || r.Window%time.Second != 0:
		return fmt.Errorf("%w: a rate limit's window must be whole seconds, from 1s to 366 days", ErrInvalidLimits)
	case r.Name == quotaPolicy:
		return fmt.Errorf("%w: the name %q is the quota's", ErrInvalidLimits, quotaPolicy)
	case !validPolicyName(r.Name):
		return fmt.Errorf("%w: a rate limit's name must be 1 to %d letters, digits, '_', '-' or '.'", ErrInvalidLimits, maxNameLen)
	}
	return nil
}

func (f Refill) validate() error {
	switch {
	case f.Amount == 0 && f.Period == "":
		return nil
	case f.Amount < 1 || f.Amount > MaxLimit:
		return fmt.Errorf("%w: a refill must be 1 to %d uses", ErrInvalidLimits, int64(MaxLimit))
	case !f.Period.Valid():
		return fmt.Errorf("%w: a refill period must be hour, day, week or month", ErrInvalidLimits)
	}
	return nil
}

func validPolicyName(s string) bool {
	if s == "" || len(s) > maxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// windowName is the default name of a rate limit with window w.
func windowName(w time.Duration) string {
	switch w {
	case time.Second:
		return "second"
	case time.Minute:
		return "minute"
	case time.Hour:
		return "hour"
	case 24 * time.Hour:
		return "day"
	case 7 * 24 * time.Hour:
		return "week"
	}
	return formatWindow(w)
}

// formatWindow writes w in the largest unit that divides it: "90s", "5m",
// "2h", "3d".
func formatWindow(w time.Duration) string {
	for _, u := range []struct {
		d time.Duration
		s string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}} {
		if w >= u.d && w%u.d == 0 {
			return strconv.FormatInt(int64(w/u.d), 10) + u.s
		}
	}
	return strconv.FormatInt(int64(w/time.Second), 10) + "s"
}

// String returns r as ParseRateLimit reads it: "100/1m", "10000/1d".
func (r RateLimit) String() string {
	return strconv.FormatInt(r.Limit, 10) + "/" + formatWindow(r.Window)
}

// String returns f as ParseRefill reads it ("10000/month"); "" for no
// refill.
func (f Refill) String() string {
	if f.Amount == 0 {
		return ""
	}
	return strconv.FormatInt(f.Amount, 10) + "/" + string(f.Period)
}

// ParseRateLimit reads a rate limit written "N/WINDOW": N requests per
// window, where WINDOW is a Go duration ("1m", "90s", "24h", "1h30m"), a
// number of days ("1d", "7d"), or one of second, minute, hour, day, week
// (a count of 1 implied). Examples: "100/1m", "10000/24h", "5/second". The
// name is derived from the window. Errors wrap ErrInvalidLimits.
func ParseRateLimit(s string) (RateLimit, error) {
	n, unit, err := splitSpec(s)
	if err != nil {
		return RateLimit{}, err
	}
	w, ok := parseWindow(unit)
	if !ok {
		return RateLimit{}, fmt.Errorf("%w: %q: the window must be a duration such as 1m, 24h or 7d", ErrInvalidLimits, clip(s))
	}
	r := RateLimit{Limit: n, Window: w, Name: windowName(w)}
	if err := r.validate(); err != nil {
		return RateLimit{}, err
	}
	return r, nil
}

// ParseRefill reads a quota refill written "N/PERIOD", PERIOD one of hour,
// day, week, month (also hourly, daily, weekly, monthly): "10000/month".
// Errors wrap ErrInvalidLimits.
func ParseRefill(s string) (Refill, error) {
	n, unit, err := splitSpec(s)
	if err != nil {
		return Refill{}, err
	}
	var p Period
	switch strings.ToLower(unit) {
	case "hour", "hourly":
		p = PeriodHour
	case "day", "daily":
		p = PeriodDay
	case "week", "weekly":
		p = PeriodWeek
	case "month", "monthly":
		p = PeriodMonth
	}
	f := Refill{Amount: n, Period: p}
	if p == "" {
		return Refill{}, fmt.Errorf("%w: %q: the refill period must be hour, day, week or month", ErrInvalidLimits, clip(s))
	}
	if err := f.validate(); err != nil {
		return Refill{}, err
	}
	return f, nil
}

// splitSpec splits "N/UNIT" and reads N (a positive decimal integer).
func splitSpec(s string) (int64, string, error) {
	num, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok || num == "" || unit == "" {
		return 0, "", fmt.Errorf("%w: %q: write N/WINDOW, e.g. 100/1m", ErrInvalidLimits, clip(s))
	}
	for i := 0; i < len(num); i++ {
		if num[i] < '0' || num[i] > '9' {
			return 0, "", fmt.Errorf("%w: %q: N must be a whole number", ErrInvalidLimits, clip(s))
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 1 || n > MaxLimit {
		return 0, "", fmt.Errorf("%w: %q: N must be 1 to %d", ErrInvalidLimits, clip(s), int64(MaxLimit))
	}
	return n, unit, nil
}

func parseWindow(s string) (time.Duration, bool) {
	switch strings.ToLower(s) {
	case "second", "sec", "s":
		return time.Second, true
	case "minute", "min", "m":
		return time.Minute, true
	case "hour", "h":
		return time.Hour, true
	case "day", "d":
		return 24 * time.Hour, true
	case "week", "w":
		return 7 * 24 * time.Hour, true
	}
	if rest, ok := strings.CutSuffix(s, "d"); ok && rest != "" && len(rest) <= 3 {
		n, err := strconv.Atoi(rest)
		if err != nil || n < 1 || rest[0] == '+' || rest[0] == '-' {
			return 0, false
		}
		return time.Duration(n) * 24 * time.Hour, true
	}
	if len(s) > 32 || s[0] == '+' || s[0] == '-' { // N is unsigned: so is the window
		return 0, false
	}
	d, err := time.ParseDuration(s)
	return d, err == nil
}

// clip bounds user input quoted in an error message.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// ErrInvalidLimits is wrapped by the errors of limits that cannot be used
// (Validate, ParseRateLimit, ParseRefill, Create, SetLimits).
var ErrInvalidLimits = errors.New("apikey: invalid limits")

// Outcomes of verifying a limited key over its budget. Verify returns a
// *LimitError that wraps one of them.
var (
	// ErrRateLimited: one of the key's rate limits is spent for the
	// current window; LimitError.RetryAfter says when it ends.
	ErrRateLimited = errors.New("apikey: API key rate limit exceeded")
	// ErrQuotaExhausted: the key's quota has no uses left; with a refill,
	// LimitError.RetryAfter says when the next period starts.
	ErrQuotaExhausted = errors.New("apikey: API key quota exhausted")
	// ErrLimitsUnsupported: Create or SetLimits asked for limits on a store
	// that cannot keep them (it does not implement LimitStore, as package
	// langflowdb's tables have no column for them).
	ErrLimitsUnsupported = errors.New("apikey: this key store cannot keep usage limits")
)

// LimitError is the error Verify returns for a limited key over its budget.
// errors.Is(err, ErrRateLimited) or errors.Is(err, ErrQuotaExhausted) tells
// which; errors.As gives the details:
//
//	var le *apikey.LimitError
//	if errors.As(err, &le) { w.Header().Set("Retry-After", ...le.RetryAfter) }
type LimitError struct {
	// Kind is ErrRateLimited or ErrQuotaExhausted.
	Kind error
	// Policy is the name of the spent limit ("quota" for the quota).
	Policy string
	// RetryAfter is how long until the request could succeed: the end of
	// the rate limit's window, or the quota's next refill. For a quota
	// without refill, 0: only raising the quota helps.
	RetryAfter time.Duration
	// Status is every limit of the key at the time of the refusal, for the
	// RateLimit header fields.
	Status []LimitStatus
}

// Error is Kind's message, followed for a rate limit by the spent limit's
// name, e.g. "apikey: API key rate limit exceeded (minute)".
func (e *LimitError) Error() string {
	if e.Policy == quotaPolicy {
		return e.Kind.Error()
	}
	return e.Kind.Error() + " (" + e.Policy + ")"
}

// Unwrap returns Kind.
func (e *LimitError) Unwrap() error { return e.Kind }

// LimitStatus is one limit of a key as a verification left it, what the
// RateLimit-Policy and RateLimit header fields say.
type LimitStatus struct {
	Name      string        // the rate limit's name, or "quota"
	Limit     int64         // units per window, or the quota's grant (its refill amount when refilled)
	Window    time.Duration // the rate limit's window, or the current refill period's length; 0: a quota never refilled
	Remaining int64         // units left in the window or the quota (other instances' use is seen when this one next reserves)
	Reset     time.Duration // until the window ends or the quota is refilled; 0: never
}

// LimitStore is the capability of a Store that keeps usage limits: the
// limits in each record (Insert, ByHash, ListByUser return them) and the
// state of quotas, taken in blocks atomically so that instances sharing the
// store never spend more than granted. MemoryStore and package
// apikey/sqlstore implement it; a store without it refuses limits
// (ErrLimitsUnsupported). Package apikey/storetest checks it.
type LimitStore interface {
	// SetLimits replaces the limits of record id of userID and returns the
	// updated record; ErrNotFound as for Store.Delete. With resetQuota, or
	// when the key had no quota, the quota's remaining uses are set to
	// l.Quota.Limit for the period starting at l.Quota.PeriodStart, and
	// uses reserved before (TakeQuota) can no longer be returned; without,
	// they are kept.
	SetLimits(ctx context.Context, userID, id string, l Limits, resetQuota bool) (Record, error)
	// TakeQuota atomically takes up to n uses from key id's quota and
	// returns what it took. period is the start of the current refill
	// period (zero for a quota without refill): if the stored period is
	// older, the quota is first refilled to its refill amount. A key
	// without a quota, or no such key, returns ErrNotFound.
	TakeQuota(ctx context.Context, id string, n int64, period time.Time) (QuotaTake, error)
	// ReturnQuota gives back n unused uses taken by a TakeQuota that
	// returned t; nothing happens if the quota was refilled or reset since.
	ReturnQuota(ctx context.Context, id string, n int64, t QuotaTake) error
}

// QuotaTake is the result of LimitStore.TakeQuota.
type QuotaTake struct {
	Taken     int64     // uses taken, 0 to n
	Remaining int64     // uses left in the store after the take
	Period    time.Time // the stored period start after the take
	Epoch     int64     // changes whenever the quota is reset
}

// Limiter counts rate-limited requests in fixed windows. A Manager takes
// units from it in blocks (a lease), and uses them locally until they run
// out, so that a key's check reaches the Limiter about once per block, not
// once per request; units taken are never given back, and those not used
// when the window ends are lost (which can only refuse, never over-accept).
// NewMemoryLimiter is the in-process Limiter (the default); package
// apikey/sqlstore's Store is one on the key database (for instances
// sharing keys on PostgreSQL or SQLite), package apikey/redislimit one on
// Redis.
//
// Implementations must be safe for concurrent use, and must never take more
// than w.Limit units from one window in all.
type Limiter interface {
	// Take takes up to n units of window w and returns how many it took
	// and how many are left in the window after the take.
	Take(ctx context.Context, w Window, n int64) (taken, left int64, err error)
}

// Window identifies one window of one rate limit of one key.
type Window struct {
	KeyID  string        // the key's Record.ID
	Name   string        // the rate limit's name
	Limit  int64         // units the window allows
	Length time.Duration // the rate limit's window
	Index  int64         // which window: its start is Index·Length after the Unix epoch
}

// Start returns the start of the window.
func (w Window) Start() time.Time { return time.Unix(0, w.Index*int64(w.Length)).UTC() }

// End returns the end of the window.
func (w Window) End() time.Time { return time.Unix(0, (w.Index+1)*int64(w.Length)).UTC() }

// clone returns a copy of l that shares no memory with it.
func (l Limits) clone() Limits {
	out := Limits{}
	if l.Rate != nil {
		out.Rate = append([]RateLimit(nil), l.Rate...)
	}
	if l.Quota != nil {
		q := *l.Quota
		out.Quota = &q
	}
	return out
}
