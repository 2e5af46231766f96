package audit

import (
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"
	"unicode/utf8"
)

// Action names what happened. Values are stable: they are stored and
// filtered on.
type Action string

// The actions keyflow's reference server records. A host may record actions
// of its own (letters, digits, '.', '_' and '-', at most 64 bytes).
const (
	KeyCreated       Action = "key.created"
	KeyDeleted       Action = "key.deleted"
	KeyDisabled      Action = "key.disabled"
	KeyEnabled       Action = "key.enabled"
	KeyLimitsChanged Action = "key.limits_changed"
	KeyScopesChanged Action = "key.scopes_changed"

	VariableCreated Action = "variable.created"
	VariableUpdated Action = "variable.updated"
	VariableDeleted Action = "variable.deleted"

	Login          Action = "auth.login"
	LoginFailed    Action = "auth.login_failed"
	Logout         Action = "auth.logout"
	TokenRefreshed Action = "auth.token_refreshed"

	UserCreated      Action = "user.created"
	UserChanged      Action = "user.changed"
	SuperuserCreated Action = "user.superuser_created" // by the CLI

	SecretRotated    Action = "secret.rotated"
	LangflowImported Action = "langflow.imported"
)

// Outcome says whether the action took place.
type Outcome string

// Outcomes.
const (
	// Success: the action was done.
	Success Outcome = "success"
	// Failure: the action was attempted and refused or failed (a failed
	// login, a key creation the store refused). Reason says why.
	Failure Outcome = "failure"
)

// Actor is who acted: a user, and how they were authenticated.
type Actor struct {
	// UserID is the acting user's ID; "" for an anonymous actor (a failed
	// login names the username tried in Username) or the system.
	UserID string `json:"user_id,omitempty"`
	// Username is the acting user's name at the time.
	Username string `json:"username,omitempty"`
	// KeyID is the ID of the API key that authenticated the request, when
	// one did (never the key).
	KeyID string `json:"key_id,omitempty"`
	// Session identifies the login session or token that acted, by an ID
	// that is not itself a credential (a token's jti or a hash of it), or
	// names the channel: "cli", "auto-login", "env-key".
	Session string `json:"session,omitempty"`
}

// Target is what the action was done to.
type Target struct {
	// Type is the kind of object: "api_key", "variable", "user", "secret",
	// "langflow".
	Type string `json:"type,omitempty"`
	// ID is the object's ID.
	ID string `json:"id,omitempty"`
	// Name is its display name: a key's name, a variable's name, a
	// username. Never a value.
	Name string `json:"name,omitempty"`
	// OwnerID is the user the object belongs to, when it is not the actor's
	// (a superuser acting on another user's key).
	OwnerID string `json:"owner_id,omitempty"`
}

// Event is one audit record. The fields from Seq on are set by the store when
// it appends the event; the others by the caller (Log.Record sets ID and
// Time when they are empty).
type Event struct {
	ID        string    // UUID
	Time      time.Time // UTC, microseconds
	Action    Action
	Actor     Actor
	Target    Target
	ClientIP  string // the client's address, without port
	UserAgent string
	Outcome   Outcome
	// Reason is a short, secret-free explanation of a Failure ("invalid
	// password", "name taken").
	Reason string
	// Details holds further secret-free facts, such as a key's 8-character
	// "prefix", a variable's "type", "scopes", counts of an import.
	Details map[string]string

	// Seq is the event's position in the chain: 1, 2, 3… without gaps.
	Seq int64
	// PrevHash is the Hash of the event before (the anchor's for the first
	// event kept after a prune; "" for the very first event).
	PrevHash string
	// Hash is the SHA-256 (hex) over this event's content, Seq and
	// PrevHash (see Seal).
	Hash string
}

// Limits on the length of an event's fields, in bytes. Longer values are
// refused by Validate (a user agent is cut instead).
const (
	MaxFieldLen     = 256  // IDs, names, addresses, reasons
	MaxUserAgentLen = 512  // longer user agents are cut
	MaxDetails      = 32   // entries in Details
	MaxDetailLen    = 1024 // each Details value
	PrefixLen       = 8    // Details["prefix"] of a key: its display prefix, at most this long
)

// ErrInvalidEvent is wrapped by the error Validate returns.
var ErrInvalidEvent = errors.New("audit: invalid event")

// normalize cleans what a caller cannot be trusted to have cleaned: invalid
// UTF-8 is replaced, a long user agent cut, times moved to UTC microseconds,
// empty Details dropped.
func (e *Event) normalize() {
	e.Time = e.Time.UTC().Truncate(time.Microsecond)
	for _, s := range []*string{&e.ID, (*string)(&e.Action), &e.Actor.UserID, &e.Actor.Username, &e.Actor.KeyID,
		&e.Actor.Session, &e.Target.Type, &e.Target.ID, &e.Target.Name, &e.Target.OwnerID, &e.ClientIP,
		&e.UserAgent, (*string)(&e.Outcome), &e.Reason} {
		*s = strings.ToValidUTF8(*s, "\uFFFD")
	}
	if len(e.UserAgent) > MaxUserAgentLen {
		cut := MaxUserAgentLen
		for cut > 0 && !utf8.RuneStart(e.UserAgent[cut]) {
			cut--
		}
		e.UserAgent = e.UserAgent[:cut]
	}
	if len(e.Details) == 0 {
		e.Details = nil
		return
	}
	d := make(map[string]string, len(e.Details))
	for k, v := range e.Details {
		d[strings.ToValidUTF8(k, "\uFFFD")] = strings.ToValidUTF8(v, "\uFFFD")
	}
	e.Details = d
}

// Validate checks an event before it is appended: an action of letters,
// digits, '.', '_', '-'; an outcome; a time; lengths within the limits;
// no NUL byte (PostgreSQL refuses them in text); and a key "prefix" detail
// no longer than PrefixLen, so that a whole key cannot be recorded as its
// prefix. The error wraps ErrInvalidEvent.
func (e *Event) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidEvent, fmt.Sprintf(format, args...))
	}
	if e.Action == "" || len(e.Action) > 64 {
		return bad("action must be 1 to 64 bytes")
	}
	for _, c := range []byte(e.Action) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return bad("action %q holds a character other than letters, digits, '.', '_', '-'", e.Action)
		}
	}
	if e.Outcome != Success && e.Outcome != Failure {
		return bad("outcome must be %q or %q", Success, Failure)
	}
	if e.Time.IsZero() {
		return bad("no time")
	}
	for name, s := range map[string]string{"id": e.ID, "actor user ID": e.Actor.UserID, "actor username": e.Actor.Username,
		"actor key ID": e.Actor.KeyID, "actor session": e.Actor.Session, "target type": e.Target.Type, "target ID": e.Target.ID,
		"target name": e.Target.Name, "target owner": e.Target.OwnerID, "client address": e.ClientIP, "reason": e.Reason} {
		if len(s) > MaxFieldLen {
			return bad("%s longer than %d bytes", name, MaxFieldLen)
		}
		if strings.IndexByte(s, 0) >= 0 {
			return bad("%s holds a NUL byte", name)
		}
	}
	if strings.IndexByte(e.UserAgent, 0) >= 0 {
		return bad("user agent holds a NUL byte")
	}
	if len(e.Details) > MaxDetails {
		return bad("more than %d details", MaxDetails)
	}
	for k, v := range e.Details {
		if k == "" || len(k) > 64 || len(v) > MaxDetailLen || strings.IndexByte(k+v, 0) >= 0 {
			return bad("a detail's name must be 1 to 64 bytes, its value at most %d, without NUL", MaxDetailLen)
		}
	}
	if p, ok := e.Details["prefix"]; ok && len(p) > PrefixLen {
		return bad("a key prefix is at most %d characters", PrefixLen)
	}
	return nil
}

// Clone returns a copy of e that shares no memory with it (for stores).
func (e Event) Clone() Event {
	e.Details = maps.Clone(e.Details)
	return e
}
