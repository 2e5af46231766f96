package apikey

import (
	"context"
	"time"
)

// Usage is a batch entry for Store.AddUsage: Uses more successful
// verifications of key ID, the latest of them at LastUsed.
type Usage struct {
	ID       string    // the key's Record.ID
	Uses     int64     // ≥ 0
	LastUsed time.Time // the latest of those verifications
}

// Store keeps key records. A Manager is the usual client; package
// apikey/storetest checks that an implementation meets this contract.
//
// Implementations must be safe for concurrent use, must not retain or modify
// the records and slices they are given, and must return records that share
// no memory with their own state. Times must keep at least microsecond
// precision. Every method takes the context first and returns an error
// wrapping ctx.Err() when the context is done before the operation. Errors
// other than the sentinels listed below mean a system failure; the Manager
// reports them as ErrUnavailable and never authenticates on them.
type Store interface {
	// Insert adds r. It returns ErrDuplicate if a record with r.ID or
	// r.Hash exists, and changes nothing then.
	Insert(ctx context.Context, r Record) error

	// ByHash returns the record with hash h, or ErrNotFound.
	ByHash(ctx context.Context, h Hash) (Record, error)

	// ListByUser returns the user's records, oldest first (by CreatedAt, then
	// ID); an empty slice and no error when there are none.
	ListByUser(ctx context.Context, userID string) ([]Record, error)

	// Delete removes record id of userID and returns it as it was. It returns
	// ErrNotFound if there is no such record or it belongs to another user,
	// and then changes nothing.
	Delete(ctx context.Context, userID, id string) (Record, error)

	// SetActive sets the Active flag of record id of userID and returns the
	// updated record; ErrNotFound as for Delete.
	SetActive(ctx context.Context, userID, id string, active bool) (Record, error)

	// AddUsage applies a batch of usage counts atomically: for each entry,
	// TotalUses += Uses, and LastUsedAt = LastUsed if that is later (it never
	// moves back). Entries whose ID does not exist are ignored. The batch
	// holds at most one entry per ID. Concurrent calls (from several
	// processes) must not lose increments.
	AddUsage(ctx context.Context, batch []Usage) error
}

// IdempotentUsage is an optional capability of a Store: AddUsage applied at
// most once per batch. A Manager whose store has it sends every batch of
// usage counts with a new ID, and resends a batch that failed unchanged and
// under the same ID, so that a batch whose commit succeeded but whose reply
// was lost (a connection cut at the wrong moment) is not counted twice.
// Package apikey/sqlstore implements it.
type IdempotentUsage interface {
	// AddUsageOnce is AddUsage, unless a batch with this batchID was
	// applied before: then it changes nothing and returns nil. Applying the
	// batch and recording batchID happen atomically. batchID is a UUID.
	AddUsageOnce(ctx context.Context, batchID string, batch []Usage) error
}

// KeyInserter is an optional capability of a Store whose rows must hold more
// than the key's hash: a store on a table that another program also reads,
// such as package langflowdb on Langflow's own apikey table, where Langflow
// expects the key (in clear or encrypted, by Langflow version). When the
// Manager's store has it, Create and Import call InsertKey instead of Insert.
//
// key is the plaintext of r (HashKey(key) == r.Hash). InsertKey has Insert's
// contract otherwise; implementations must never log key or put it in an
// error.
type KeyInserter interface {
	InsertKey(ctx context.Context, r Record, key string) error
}

// CacheBound is an optional capability of a Store that other programs change
// without any ChangeFeed reporting it (package langflowdb: a running Langflow
// deletes and disables keys in its own table, which has no change log).
// MaxCacheAge is how long a verification result read from the store may be
// served from the cache. A Manager whose store has it, and whose
// Config.Changes is nil, caps Config.CacheTTL and Config.NegativeCacheTTL to
// it, so that a change made elsewhere is seen within MaxCacheAge. A value ≤ 0
// sets no cap.
type CacheBound interface {
	MaxCacheAge() time.Duration
}
