// Package apikey issues, stores and verifies per-user API keys the way
// Langflow does (reference §3), and stores them better than Langflow does.
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
// and junk is rejected without I/O. Every format rejects malformed input
// before any hashing or I/O.
//
// # Verification
//
// [Manager.Verify] runs: format check → SHA-256 → cache → [Store.ByHash] →
// status checks (active, not expired) → [Principal]. Outcomes that a caller
// answers with 401/403 are the sentinel errors [ErrMissing], [ErrInvalid],
// [ErrExpired] and [ErrInactive]; a store failure is [ErrUnavailable] (which
// wraps the cause) and never authenticates anybody.
//
// Verification on a warm cache does no I/O and no allocation. The cache keeps
// positive entries for [Config.CacheTTL] and negative ones ("no such key")
// for [Config.NegativeCacheTTL], within [Config.CacheSize] entries. Every
// change made through a Manager (Delete, SetActive, Import) evicts the key on
// that Manager at once: once Delete returns, no Verify on that Manager
// accepts the key. Changes made elsewhere (another process sharing the store)
// are seen when the cached entry expires, or at once when the host calls
// [Manager.Invalidate] from a change feed.
//
// # Usage counters
//
// total_uses and last_used_at are counted in memory and written in batches,
// one [Store.AddUsage] call per [Config.FlushInterval] with one entry per
// key, and on [Manager.Close]. Counts are exact; a failed write keeps them for
// the next one. [Config.DisableUsageTracking] (Langflow's
// LANGFLOW_DISABLE_TRACK_APIKEY_USAGE) turns counting off.
//
// # Stores
//
// [Store] is the storage contract. [MemoryStore] serves tests and single
// processes; package apikey/sqlstore stores keys in SQLite or PostgreSQL
// through database/sql; package apikey/storetest is the conformance suite
// every store, including third-party ones, should pass.
//
// Nothing in this package logs or returns a key in an error message.
package apikey
