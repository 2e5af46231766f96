// Package apikey issues, stores and verifies per-user API keys the way
// Langflow does, and stores them better than Langflow does (see
// docs/langflow-compatibility.md#api-keys).
//
// A key is shown once, when it is created; the store keeps only its SHA-256
// hash (Langflow's api_key_hash, hex in storage, [Hash] in memory), an
// 8-character display prefix and the record's metadata, never the key or a
// reversible form of it.
//
// # Key formats
//
// [Langflow] is Langflow's format, "sk-" followed by 32 random bytes in
// unpadded base64url: 46 characters. [NewChecksumFormat] makes an opt-in,
// GitHub-style format, a custom prefix, 43 random base62 characters and a
// 6-character CRC32 checksum, so that secret scanners can find leaked keys
// and junk is rejected without I/O. A Manager refuses a key over
// MaxKeyLength before hashing it, and a malformed one before any I/O (a
// warm key is found in the cache by its hash first: only well-formed keys
// are ever cached).
//
// # Verification
//
// [Manager.Verify] runs: format check → SHA-256 → cache → key index (with a
// change feed, next section) → [Store.ByHash] → status checks (active, not
// expired) → [Principal]. Outcomes that a caller answers with 401/403 are the
// sentinel errors [ErrMissing], [ErrInvalid], [ErrExpired] and
// [ErrInactive]; a store failure is [ErrUnavailable] (which wraps the cause)
// and never authenticates anybody.
//
// Verification on a warm cache does no I/O and no allocation. The cache keeps
// positive entries for [Config.CacheTTL] and negative ones ("no such key")
// for [Config.NegativeCacheTTL], within [Config.CacheSize] entries. Every
// change made through a Manager (Delete, SetActive, Import) evicts the key on
// that Manager at once: once Delete returns, no Verify on that Manager
// accepts the key. Changes made elsewhere (another process sharing the store)
// are seen when the cached entry expires, or within a bound when the store
// offers a change feed (next section).
//
// # Several processes on one store
//
// When several server instances share one database, set [Config.Changes] to
// a [ChangeFeed] (package apikey/sqlstore's Store is one, on PostgreSQL and
// SQLite). The bound is [Config.ChangesMaxLag], 1 s by default: a key
// revoked, disabled or deleted on one instance is refused by every other
// instance within it, and a key created or imported on one is never refused
// elsewhere because of a cached "unknown" for longer. It is kept thus:
//
//   - the store's triggers log the hash of every changed key in the
//     transaction of the change (so no writer is missed), and the feed's
//     cursor is commit-safe (a PostgreSQL snapshot, not the highest id read,
//     as ids may commit out of order);
//   - the Manager polls the feed every [Config.ChangesPollInterval] (200 ms)
//     while keys are being verified, and calls Invalidate for each changed
//     key;
//   - a cached result is served only while the last successful poll began
//     less than ChangesMaxLag ago: the poll is the freshness confirmation,
//     and nothing else extends it. When polls fail for longer (the database
//     is unreachable from this instance), the Manager logs it, drops its
//     whole cache and every verification reads the store — failing closed
//     with ErrUnavailable while it is down — until a poll succeeds again;
//   - when the feed cannot say what changed (its cursor is older than the
//     pruned log, or it has just started), the Manager drops its whole cache.
//
// Push, then poll as a safety net: with a [ChangeNotifier]
// ([Config.ChangesNotifier]; package apikey/sqlstore/pgnotify on
// PostgreSQL, whose triggers NOTIFY in the transaction of the change) the
// Manager polls as soon as a change commits, so other instances refuse a
// revoked key within milliseconds instead of within a poll interval. A
// notification only says "read the feed now": the feed remains the source of
// truth and the timed polls go on, so a lost notification, a dead listening
// connection or a notifier that is not configured costs latency, never the
// bound.
//
// Idle is idle: after 25 polls in a row without a verification (5 s by
// default) the poller stops. Its last poll then stops being recent, so the
// cache is no longer trusted; the next verification reads the store (as a
// cache miss would: about 25 µs on SQLite, 120 µs on PostgreSQL), wakes the
// poller, and the cache serves again once the poll it triggers has caught up
// from the saved cursor (a cursor too old for the pruned log drops the
// cache, as above). A notification wakes a sleeping poller for one poll. So
// an idle process does no I/O for the feed, and there is no window in which
// a stale cached verdict could be served. One SQLite process with a feed
// costs nothing while idle; a poll, when keys are being verified, is one
// indexed query (see BENCHMARKS.md).
//
// Measured (BENCHMARKS.md, "Revocation propagation"): with notifications,
// another instance refuses a revoked key in a few milliseconds (p99 well
// under 50 ms); by polling alone, within about 200 ms.
//
// A cache miss reads the store, so a key created on one instance verifies on
// every other at once, with one exception that keeps a flood of made-up keys
// off the store: the key index. When the store lists its hashes
// ([HashLister]; MemoryStore and apikey/sqlstore do), the Manager keeps the
// set of every key hash in the store (up to about 40 bytes a key), loaded at
// the feed's first poll and after the feed lost track of changes, and kept
// complete by the feed and by this Manager's own writes. While the feed is
// trusted, a key missing from the index is one that did not exist when the
// last poll began: up to [Config.UnknownKeyReads] such keys a second (100)
// still read the store, so that a key just created elsewhere is found at
// once; the others are refused without I/O (about 0.6 µs, no allocation),
// and a key created elsewhere is then accepted within ChangesMaxLag, as the
// feed reports it.
//
// # Usage counters
//
// total_uses and last_used_at are counted in memory and written in batches,
// one [Store.AddUsage] call per [Config.FlushInterval] with one entry per
// key, and on [Manager.Close]. Counts are exact: stores apply them as atomic
// increments, so the counts of several processes add up, and last_used_at
// only moves forward. A failed write keeps them in memory for the next one,
// for up to [Config.MaxPendingUsage] keys (beyond, the excess is dropped and
// an error logged). A write whose commit succeeded but whose reply was lost
// is retried; with a store that implements [IdempotentUsage] (apikey/sqlstore
// does) it is resent under its batch ID and applied once, with others it is
// counted twice. [Config.DisableUsageTracking] (Langflow's
// LANGFLOW_DISABLE_TRACK_APIKEY_USAGE) turns counting off.
//
// # Usage limits
//
// A key may carry [Limits] (see docs/langflow-compatibility.md#usage-limits):
// zero or more rate limits ([RateLimit]: Limit units per Window, e.g. 100 a
// minute and 10 000 a day together) and an optional [Quota] (uses granted,
// optionally refilled at the start of every calendar [Period] in UTC: hour,
// day, week from Monday, month from the 1st; a refill sets the uses left to
// its Amount, nothing carries over). They are set with
// [CreateOptions].Limits and changed with [Manager.SetLimits]; listings show
// them with the quota's uses left. Keys without limits, the default and
// Langflow's, cost one nil check: no lock, no I/O, no allocation.
//
// Verify charges a limited key one unit, [Manager.VerifyCharge] any cost
// (a host that charges by what a request does), and refuses a key over its
// budget with a [*LimitError] wrapping [ErrRateLimited] (RetryAfter: the end
// of the window) or [ErrQuotaExhausted] (RetryAfter: the next refill; 0 for
// a quota never refilled). A refused request takes nothing from any limit.
// [Manager.Refund] gives a charge's quota back, for requests the server
// failed; package middleware refunds every 5xx, and a panic before any
// answer. Rate-limit units are never refunded: a failed request still used
// the server.
//
// Rate limits count fixed windows aligned on the Unix epoch (a minute window
// from :00 to :00 UTC): at most Limit units are accepted within each window,
// exactly, on one instance and across instances sharing a [Limiter]. As with
// every fixed window, up to 2·Limit can be accepted within one window's
// length across a boundary; the RateLimit header fields say when each window
// resets. Windows are read from each instance's clock; a store or Redis
// never moves a counter back to an older window, so a lagging clock cannot
// reopen one.
//
// Leases. A Manager does not ask its Limiter (or its store, for quotas) for
// every request: it takes units in blocks and spends them in memory under
// the key's mutex. The in-process [MemoryLimiter] (the default) gives a
// whole window at once: exact, and the counting is a mutex and a subtraction.
// A shared Limiter (apikey/sqlstore's Store, apikey/redislimit) and a
// quota give blocks of 0.5 % of the limit (at least the request's cost, at
// most 10 000), taken atomically, so:
//
//   - instances never accept more than a window's limit or a quota's grant
//     between them: a block is deducted from the shared count before any of
//     it is used;
//   - an instance may refuse while others hold unused blocks: with N
//     instances, at most N · 0.5 % of a limit is held back (2 % at N = 4);
//     rate-limit blocks lapse with their window, and quota blocks go back to
//     the store after a second without use and at Close;
//   - an instance that dies without Close (SIGKILL, a crash) loses the
//     unused part of its last block of each quota, at most
//     max(cost, min(0.5 % of the grant, 10 000)) uses per key per instance
//     (the grant: Quota.Limit, or the refill amount when refilled), and the
//     requests it had charged but not answered; they are not accepted
//     anywhere, so the bound is on uses lost, never on uses overspent;
//   - a request needs a round trip only when its lease runs out: once per
//     block, about one request in 200 at full speed (measured in
//     BENCHMARKS.md).
//
// Outages: when the Limiter or the quota's store fails, a limited key's
// verification fails closed with [ErrUnavailable] (503), unless
// [Config.LimitsFailOpen] admits it uncounted. Keys without limits never
// reach either and are never affected. A store that cannot keep limits
// (package langflowdb) is not a [LimitStore]: creating or setting limits
// on it fails with [ErrLimitsUnsupported].
//
// # Stores
//
// [Store] is the storage contract. [MemoryStore] serves tests and single
// processes; package apikey/sqlstore stores keys in SQLite or PostgreSQL
// through database/sql; package apikey/storetest is the conformance suite
// every store, including third-party ones, should pass. Package langflowdb
// serves the keys of a Langflow database from Langflow's own table; such a
// store uses two optional capabilities: [KeyInserter] (its rows hold the key
// in Langflow's form, so Create and Import hand it the key) and [CacheBound]
// (its rows change behind the Manager's back with no change feed, so the
// cache's lifetime is capped to the store's bound).
//
// # Principals and scopes
//
// [Principal] is who a request acts for: what Verify returns, what package
// middleware puts in the request context, and what the HTTP handlers of
// package apikeyhttp are told. A key without scopes is unrestricted, as
// Langflow's keys are; a key with scopes may create only keys whose scopes
// are a non-empty subset of its own ([CreateOptions].Creator,
// [ErrScopeNotAllowed]).
//
// # Names and misuse
//
// Key names are checked by package names (no control, invisible or bidi
// characters, no U+FFFD, at most 255 bytes): [ErrInvalidName]. A Manager not
// made by [NewManager] (a zero value or a nil pointer) returns
// [ErrUninitialized] from every method instead of panicking.
//
// Nothing in this package logs or returns a key in an error message.
package apikey
