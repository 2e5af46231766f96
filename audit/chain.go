package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
)

// Link is a position in the chain: an event's sequence number and hash.
type Link struct {
	Seq  int64
	Hash string
}

// Head is where a store's chain starts and ends.
type Head struct {
	// Anchor is the last event pruned: the first event kept has Seq
	// Anchor.Seq+1 and PrevHash Anchor.Hash. {0, ""} when nothing was
	// pruned.
	Anchor Link
	// Last is the newest event appended; equal to Anchor when the store
	// holds no event.
	Last Link
}

// timeLayout is the fixed form of times in the hashed content (and in
// SQLite): UTC, microseconds.
const timeLayout = "2006-01-02T15:04:05.000000Z"

// sealed is the hashed content of an event: every field, in this order, as
// JSON (encoding/json writes struct fields in order and map keys sorted, so
// the encoding is canonical).
type sealed struct {
	Seq       int64             `json:"seq"`
	Prev      string            `json:"prev"`
	ID        string            `json:"id"`
	Time      string            `json:"time"`
	Action    Action            `json:"action"`
	Actor     Actor             `json:"actor"`
	Target    Target            `json:"target"`
	ClientIP  string            `json:"client_ip"`
	UserAgent string            `json:"user_agent"`
	Outcome   Outcome           `json:"outcome"`
	Reason    string            `json:"reason"`
	Details   map[string]string `json:"details"`
}

// ComputeHash returns the hash an event must carry: SHA-256, in hex, over
// the canonical JSON encoding of its content, Seq and PrevHash. It ignores
// e.Hash.
func ComputeHash(e Event) string {
	b, err := json.Marshal(sealed{
		Seq: e.Seq, Prev: e.PrevHash, ID: e.ID, Time: e.Time.UTC().Format(timeLayout), Action: e.Action,
		Actor: e.Actor, Target: e.Target, ClientIP: e.ClientIP, UserAgent: e.UserAgent, Outcome: e.Outcome,
		Reason: e.Reason, Details: e.Details,
	})
	if err != nil { // strings and a map of strings always encode
		panic("audit: encode event: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Seal chains e after last: it sets e.Seq to last.Seq+1, e.PrevHash to
// last.Hash and e.Hash, and returns the new last link. A Store calls it
// while it holds its chain's head, so that appends are serialised.
func Seal(e *Event, last Link) Link {
	e.Seq, e.PrevHash = last.Seq+1, last.Hash
	e.Hash = ComputeHash(*e)
	return Link{Seq: e.Seq, Hash: e.Hash}
}

// ErrBroken is wrapped by the *BrokenError of Verify.
var ErrBroken = errors.New("audit: chain broken")

// BrokenError says where the chain is broken: the first event (in chain
// order) that does not follow from the one before.
type BrokenError struct {
	// Seq is the sequence number at which the chain breaks: that of the
	// event found there, or the one expected when events are missing.
	Seq int64
	// ID is the ID of the event found at Seq ("" when missing).
	ID string
	// Reason says what is wrong: its content was changed, the event before
	// it was deleted or moved, events are missing at the end.
	Reason string
}

func (e *BrokenError) Error() string {
	id := ""
	if e.ID != "" {
		id = " (id " + e.ID + ")"
	}
	return fmt.Sprintf("audit: chain broken at event %d%s: %s", e.Seq, id, e.Reason)
}

// Unwrap returns ErrBroken.
func (e *BrokenError) Unwrap() error { return ErrBroken }

// Report is the result of an intact Verify.
type Report struct {
	Events int   // events checked
	First  int64 // Seq of the first event kept (0 when none)
	Head   Head
}

// Verify walks store's chain from its anchor and checks every event: its
// Seq follows the previous one, its PrevHash is the previous event's Hash,
// and its Hash matches its content. It also checks that the chain reaches
// the store's head (events deleted at the end). It returns a *BrokenError
// (wrapping ErrBroken) naming the first event that does not follow, or the
// store's error. Events appended while it runs are checked too; do not
// prune meanwhile.
func Verify(ctx context.Context, store Store) (Report, error) {
	head, err := store.Head(ctx)
	if err != nil {
		return Report{}, err
	}
	r := Report{Head: head}
	prev := head.Anchor
	err = store.Walk(ctx, head.Anchor.Seq, func(e Event) error {
		switch {
		case e.Seq != prev.Seq+1 && e.Seq > prev.Seq+1:
			return &BrokenError{Seq: e.Seq, ID: e.ID, Reason: fmt.Sprintf("events %d to %d are missing", prev.Seq+1, e.Seq-1)}
		case e.Seq != prev.Seq+1:
			return &BrokenError{Seq: e.Seq, ID: e.ID, Reason: "out of order"}
		case e.PrevHash != prev.Hash:
			return &BrokenError{Seq: e.Seq, ID: e.ID, Reason: "does not follow the event before it (that one was changed, deleted or moved)"}
		case ComputeHash(e) != e.Hash:
			return &BrokenError{Seq: e.Seq, ID: e.ID, Reason: "its content does not match its hash (it was changed)"}
		}
		if r.First == 0 {
			r.First = e.Seq
		}
		r.Events++
		prev = Link{Seq: e.Seq, Hash: e.Hash}
		return nil
	})
	if err != nil {
		return Report{}, err
	}
	switch {
	case prev.Seq < head.Last.Seq:
		return Report{}, &BrokenError{Seq: prev.Seq + 1, Reason: fmt.Sprintf("events %d to %d are missing (the chain's head is %d)", prev.Seq+1, head.Last.Seq, head.Last.Seq)}
	case prev.Seq == head.Last.Seq && prev.Hash != head.Last.Hash:
		return Report{}, &BrokenError{Seq: prev.Seq, Reason: "the last event does not match the chain's head"}
	}
	return r, nil
}
