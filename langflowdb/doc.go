// Package langflowdb serves keyflow's stores from a Langflow database: an
// apikey.Store on Langflow's apikey table and a variables.Store on its
// variable table, so that a Go service next to a running Langflow accepts
// the keys Langflow issued, sees the revocations made in Langflow's UI, and
// reads and writes the same global variables.
//
// It works on SQLite and PostgreSQL through database/sql and imports no
// driver: the host opens the *sql.DB and names the Dialect. It never creates,
// migrates or alters a table: Open reads which columns Langflow's tables have
// and adapts to the schema generation it finds (see Schema):
//
//   - Langflow ≤ 1.7 keeps keys in clear in apikey.api_key;
//   - Langflow 1.8 keeps a Fernet token of the key there;
//   - later versions add api_key_hash (SHA-256 hex), and the newest
//     expires_at.
//
// Every generation's rows verify. A row without a hash (plaintext or token)
// is found through an in-memory index of the hashes of such rows, rebuilt
// from the table when a key is not in it; when the table has api_key_hash,
// a row that verifies gets its hash written, as Langflow does. Two rows that
// share a hash (or, without hashes, hold the same key) refuse to
// authenticate (Langflow logs a data integrity violation and refuses too).
// is_active and expires_at are respected.
// Usage is written as Langflow writes it: total_uses incremented and
// last_used_at set to the time of the latest use (UTC).
//
// Keys created through the store (apikey.Manager.Create, which calls
// KeyStore.InsertKey) are rows Langflow itself accepts: the key in clear for a
// ≤ 1.7 schema (the only form that Langflow version reads; see
// StoragePlaintext), a Fernet token under LANGFLOW_SECRET_KEY's
// key for 1.8, and a token with its hash for later schemas. Variables are
// stored as Langflow stores them: Credential values encrypted with the same
// secret and key derivation (package secrets), Generic values in clear,
// default_fields as a JSON list, and category Global where the column
// exists. Encrypt with DB.Keyring: a secret shorter than 32 characters has
// two keys, one for Langflow ≤ 1.10.0 and one for later versions, and
// DB.Keyring encrypts with the one the Langflow beside it uses
// (Config.ShortSecret). On SQLite, rows are written as SQLAlchemy writes
// them: UUIDs as 32 hexadecimal digits, booleans as 0 and 1, times as naive
// UTC text with microseconds.
//
// # Revocation bound
//
// (docs/langflow-compatibility.md#revocation-on-langflow-tables)
//
// Langflow's tables carry no change log, so no apikey.ChangeFeed can say
// which keys a running Langflow deleted or disabled. Instead a KeyStore is an
// apikey.CacheBound: a Manager on it caches verification results for at most
// Config.MaxCacheAge (900 ms by default), so a key deleted or deactivated
// in Langflow is refused by every Manager on the store within 1 s (the
// cache age, plus the Manager's millisecond clock and scheduling slack). A key
// created in Langflow verifies at once when the table has api_key_hash, and
// within MaxCacheAge plus Config.LegacyRescanInterval (200 ms) on older
// schemas.
//
// # Differences forced by Langflow's schema
//
// Langflow's apikey table has no scopes column: records with Scopes are
// refused. Before expires_at exists, records with ExpiresAt are refused.
// It has no column for usage limits either: the KeyStore is not an
// apikey.LimitStore, so a Manager on it refuses to create a key with limits,
// or to set them, with apikey.ErrLimitsUnsupported (and InsertKey refuses a
// record with limits).
// Rows must hold the key (or its token), so Insert without the key returns
// ErrKeyRequired; the Manager calls InsertKey. Langflow's variable table has
// no origin column and no unique (user, name) constraint: every variable
// reads as variables.OriginUser (so keyflow's environment import never
// overwrites a Langflow row), and uniqueness is checked by the store before
// it writes. User IDs must be UUIDs of rows in Langflow's user table.
//
// See docs/langflow-compatibility.md#langflow-database for the Langflow
// versions and source files this follows.
package langflowdb
