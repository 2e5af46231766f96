// Package audit keeps a tamper-evident audit trail: who did what to which
// key, variable or user, from where, and whether it worked.
//
// An [Event] names its [Action] (key created, variable deleted, login
// failed…), its [Actor] (the user, and the API key ID or session that
// acted), its [Target] (type, ID, name), the client's address and user
// agent, its [Outcome], and secret-free details. An event never holds a
// secret: keys appear by ID and 8-character prefix only, variables by name
// and type, never a value, sessions by an ID that is not a credential.
// [Event.Validate] refuses a key prefix longer than 8 characters.
//
// # Tamper evidence
//
// Events form a hash chain: each carries Seq (1, 2, 3…), the hash of the
// event before it (PrevHash) and its own Hash, a SHA-256 over its content,
// Seq and PrevHash ([ComputeHash]). [Verify] walks the chain and names the
// first event that does not follow from the one before, so an event changed,
// deleted or moved in the database is detected (a [BrokenError]); so are
// events deleted at the end, against the store's head. Pruning ([Log.Prune],
// by age) deletes the oldest events and keeps the last one deleted as the
// chain's anchor, so the chain stays verifiable from its new start.
//
// What the chain cannot prove: someone who can write to the database can
// also rewrite every hash after the event they changed, and the head. To
// catch that, keep copies of the head elsewhere (Verify's Report.Head, or
// the latest event's Hash, logged or exported regularly): a chain that no
// longer passes through a recorded hash was rewritten.
//
// Appends are serialised by the store (audit/sqlstore: a lock on a head row
// in the appending transaction), so several processes appending to one
// database never fork the chain.
//
// # No action without its record
//
// A failure to record an event is a failure of the action that caused it.
// Callers do one of:
//
//   - record the event in the transaction that makes the change, when the
//     audit table lives in the same database (audit/sqlstore's AppendTx):
//     the change and its record commit together or not at all;
//   - otherwise, record the event before acknowledging the action, and
//     answer an error (HTTP 503) when [Log.Record] fails. For an action
//     that cannot be undone once made, record it before making it, and
//     record a Failure event if it then fails.
//
// [Log.Record] returns an error wrapping [ErrUnavailable] when the store
// fails, and [ErrInvalidEvent] for an event it refuses.
package audit
