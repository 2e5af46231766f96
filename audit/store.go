package audit

import (
	"context"
	"time"
)

// Filter selects events for List. Zero fields select everything.
type Filter struct {
	// Actions keeps events with one of these actions.
	Actions []Action
	// ActorID keeps events whose Actor.UserID is this user.
	ActorID string
	// Since and Until keep events with Since <= Time < Until.
	Since, Until time.Time
	// Before is a cursor: events with Seq < Before (the Seq of the last
	// event of the previous page). 0: from the newest.
	Before int64
	// Limit is the most events returned, 1 to MaxLimit. 0: DefaultLimit.
	Limit int
}

// Page sizes of List.
const (
	DefaultLimit = 50
	MaxLimit     = 1000
)

// Store keeps the chain of events. Package audit/storetest checks that an
// implementation meets this contract; audit/sqlstore implements it on SQLite
// and PostgreSQL.
//
// Implementations must be safe for concurrent use, also by several processes
// sharing the store: appends are serialised so that the chain never forks.
// They must not retain or modify the events they are given, and return
// events that share no memory with their own state. Times keep microsecond
// precision.
type Store interface {
	// Append seals e after the current last event (Seal) and stores it,
	// atomically: two appends never get the same Seq, and no append is
	// lost. It returns the event as stored. e has been validated by the
	// caller.
	Append(ctx context.Context, e Event) (Event, error)
	// Head returns the chain's anchor and last event.
	Head(ctx context.Context) (Head, error)
	// Walk calls fn for every event with Seq > after, in Seq order, and
	// stops at fn's first error, which it returns.
	Walk(ctx context.Context, after int64, fn func(Event) error) error
	// List returns the events that f selects, newest (highest Seq) first.
	// f.Limit is between 1 and MaxLimit.
	List(ctx context.Context, f Filter) ([]Event, error)
	// Prune deletes the oldest events, up to (not including) the first one
	// whose Time is not before before, and makes the last one deleted the
	// anchor, atomically. It returns how many it deleted.
	Prune(ctx context.Context, before time.Time) (int64, error)
}
