package audit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/keyflow-dev/keyflow/internal/ids"
	"github.com/keyflow-dev/keyflow/internal/isnil"
)

// ErrUnavailable is wrapped, with the cause, by the errors of Log's methods
// when the store fails. An action whose event could not be recorded must be
// reported as failed (see the package documentation).
var ErrUnavailable = errors.New("audit: audit store unavailable")

// DefaultRetention is how long events are kept by default: 400 days, a year
// of audit plus a margin.
const DefaultRetention = 400 * 24 * time.Hour

// Config configures a Log. The zero value is usable: a MemoryStore, the
// system clock, DefaultRetention.
type Config struct {
	// Store keeps the events. nil: a new MemoryStore.
	Store Store
	// Now returns the current time. nil: time.Now.
	Now func() time.Time
	// Retention is how long Prune keeps events. 0: DefaultRetention.
	// Negative: Prune deletes nothing.
	Retention time.Duration
}

// Log records audit events in a Store. It is safe for concurrent use.
type Log struct {
	store     Store
	now       func() time.Time
	retention time.Duration
}

// New returns a Log for cfg. It fails when cfg.Store holds a nil pointer.
func New(cfg Config) (*Log, error) {
	if cfg.Store != nil && isnil.Value(cfg.Store) {
		return nil, errors.New("audit: Config.Store holds a nil pointer")
	}
	l := &Log{store: cfg.Store, now: cfg.Now, retention: cfg.Retention}
	if l.store == nil {
		l.store = NewMemoryStore()
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.retention == 0 {
		l.retention = DefaultRetention
	}
	return l, nil
}

// Store returns the Log's store.
func (l *Log) Store() Store { return l.store }

// Prepare fills e's ID and Time when empty, cleans it (invalid UTF-8
// replaced, a long user agent cut) and validates it, as Record does before
// appending. Stores that append in a caller's transaction (audit/sqlstore's
// AppendTx) take the prepared event.
func (l *Log) Prepare(e Event) (Event, error) {
	if e.ID == "" {
		e.ID = ids.New()
	}
	if e.Time.IsZero() {
		e.Time = l.now()
	}
	e.Seq, e.PrevHash, e.Hash = 0, "", ""
	e.normalize()
	if err := e.Validate(); err != nil {
		return Event{}, err
	}
	return e, nil
}

// Record appends e to the chain and returns it as stored (with its ID, Time,
// Seq and hashes). Errors: one wrapping ErrInvalidEvent for an event that
// Validate refuses; one wrapping ErrUnavailable and the cause when the store
// fails: the caller must then not report the action as done (see the package
// documentation).
func (l *Log) Record(ctx context.Context, e Event) (Event, error) {
	e, err := l.Prepare(e)
	if err != nil {
		return Event{}, err
	}
	out, err := l.store.Append(ctx, e)
	if err != nil {
		return Event{}, fmt.Errorf("%w: append: %w", ErrUnavailable, err)
	}
	return out, nil
}

// List returns the events f selects, newest first, and the cursor of the
// next page (f.Before for the next call; 0 when this page is the last).
// f.Limit 0 is DefaultLimit; above MaxLimit it is MaxLimit.
func (l *Log) List(ctx context.Context, f Filter) (events []Event, next int64, err error) {
	switch {
	case f.Limit <= 0:
		f.Limit = DefaultLimit
	case f.Limit > MaxLimit:
		f.Limit = MaxLimit
	}
	// One more than asked tells whether there is a next page.
	want := f.Limit
	f.Limit++
	events, err = l.store.List(ctx, f)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: list: %w", ErrUnavailable, err)
	}
	if len(events) > want {
		events = events[:want]
		next = events[want-1].Seq
	}
	return events, next, nil
}

// Verify checks the store's chain (see the package function Verify).
func (l *Log) Verify(ctx context.Context) (Report, error) {
	r, err := Verify(ctx, l.store)
	if err != nil && !errors.Is(err, ErrBroken) {
		return Report{}, fmt.Errorf("%w: verify: %w", ErrUnavailable, err)
	}
	return r, err
}

// Prune deletes the events older than the retention period (Config.Retention)
// and returns how many; the chain stays verifiable from its new start. Hosts
// call it periodically (daily, say).
func (l *Log) Prune(ctx context.Context) (int64, error) {
	if l.retention < 0 {
		return 0, nil
	}
	n, err := l.store.Prune(ctx, l.now().Add(-l.retention))
	if err != nil {
		return 0, fmt.Errorf("%w: prune: %w", ErrUnavailable, err)
	}
	return n, nil
}
