package apikey

import (
	"strings"
	"time"
)

// Record is what a store keeps for one key: never the key itself.
//
// Times are UTC with microsecond precision when they come from a Manager
// (the precision of PostgreSQL), so records read back from any store compare
// equal to those returned at creation.
type Record struct {
	ID         string     // UUID (internal/ids), chosen at creation
	UserID     string     // owner; keys are managed per user
	Name       string     // user-chosen label; may be empty
	Hash       Hash       // SHA-256 of the key (api_key_hash)
	Prefix     string     // first 8 characters of the key, for display
	Length     int        // length of the key in bytes, for MaskedKey; 0 means 46 (Langflow's)
	CreatedAt  time.Time  // creation time
	LastUsedAt *time.Time // nil: never used
	TotalUses  int64      // successful verifications, as flushed by the Manager
	Active     bool       // is_active: false disables the key without deleting it
	ExpiresAt  *time.Time // nil: never expires; the key is refused once now is after it
	Scopes     []string   // nil/empty: unrestricted
	Limits     Limits     // rate limits and quota; the zero value: unlimited (see LimitStore)
}

// MaskedKey returns the key as Langflow's list shows it
// (docs/langflow-compatibility.md#api-key-storage): the
// 8-character display prefix followed by one "*" for every other character,
// e.g. "sk-7htLx" and 38 "*" for a 46-character key.
func (r Record) MaskedKey() string {
	n := r.Length
	if n <= 0 {
		n = langflowLen
	}
	if n < len(r.Prefix) {
		n = len(r.Prefix)
	}
	return r.Prefix + strings.Repeat("*", n-len(r.Prefix))
}

// displayPrefixLen is how many leading characters of a key a Record keeps.
const displayPrefixLen = 8

// displayPrefix returns the first 8 bytes of key (all of it if shorter).
// Every accepted key is ASCII, so bytes and characters coincide.
func displayPrefix(key string) string {
	if len(key) > displayPrefixLen {
		return key[:displayPrefixLen]
	}
	return key
}

// clone returns a deep copy of r, so that callers and stores never share
// mutable memory.
func (r Record) clone() Record {
	if r.LastUsedAt != nil {
		t := *r.LastUsedAt
		r.LastUsedAt = &t
	}
	if r.ExpiresAt != nil {
		t := *r.ExpiresAt
		r.ExpiresAt = &t
	}
	if r.Scopes != nil {
		r.Scopes = append([]string(nil), r.Scopes...)
	}
	if !r.Limits.IsZero() {
		r.Limits = r.Limits.clone()
	}
	return r
}
