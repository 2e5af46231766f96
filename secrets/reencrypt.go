package secrets

import (
	"context"
	"errors"
	"fmt"

	"github.com/keyflow-dev/keyflow/internal/isnil"
)

// Ciphertext is one stored Fernet token and the ID it is stored under.
type Ciphertext struct{ ID, Token string }

// CiphertextStore is what Reencrypt needs from a store of Fernet tokens
// (the variables stores implement it for Credential values).
type CiphertextStore interface {
	// ListCiphertexts returns up to limit stored ciphertexts whose ID sorts after `after`
	// (all when after == ""), ordered by ID ascending.
	ListCiphertexts(ctx context.Context, after string, limit int) ([]Ciphertext, error)
	// SwapCiphertext sets the token of id to newToken only if it still equals oldToken,
	// and reports whether it did (false, nil when it changed or is gone meanwhile).
	SwapCiphertext(ctx context.Context, id, oldToken, newToken string) (bool, error)
}

// DefaultReencryptBatchSize is the batch size when ReencryptOptions.BatchSize is 0.
const DefaultReencryptBatchSize = 500

// ReencryptOptions tune Reencrypt. The zero value is ready to use.
type ReencryptOptions struct {
	BatchSize int                   // 0: 500
	Progress  func(ReencryptReport) // called after each batch with the totals so far; may be nil
	// After resumes a run after this ID (a previous report's LastID); ""
	// starts from the beginning. Starting over is always correct too, as
	// values already under the primary secret are only counted.
	After string
}

// ReencryptReport counts what Reencrypt did. Every value it saw is in
// exactly one of Rotated, Current, Failed and Skipped.
type ReencryptReport struct {
	Rotated int // re-encrypted under the primary secret and swapped in
	Current int // already under the primary secret's encryption key: left alone
	Failed  int // opened by no key of the keyring (or not a token at all): left alone
	Skipped int // changed or deleted by someone else between list and swap: left alone
	// LastID is the ID of the last value handled; pass it as
	// ReencryptOptions.After to resume.
	LastID string
}

// Reencrypt re-encrypts every ciphertext of s that k opens with a key other
// than its encryption key — a previous secret, or a legacy derivation of the
// primary — under the primary secret, keeping each token's timestamp (as
// Rotate). It works in batches of opts.BatchSize, in ID order, and swaps
// each value only if it is unchanged since it was listed, so it can run
// beside a live server.
//
// It is idempotent and resumable: values already current are only counted,
// and an interruption — an error, a cancelled ctx, a crash — at any point
// loses nothing, because each swap replaces one token that k opens by
// another that k opens; run it again (or from the report's LastID). Retire
// an old secret only after a run reports Rotated and Skipped 0, and after
// looking at the Failed values: no secret of k opens them, so retiring one
// cannot make them worse, but a secret missing from k might open them.
// On a store error or cancellation it returns the counts so far with the
// error. Values that do not open are counted as Failed and never changed.
// No value, plaintext or secret is logged or put in an error. A nil k is
// ErrNoKeyring; a nil s (a typed nil included) is an error, not a panic.
func Reencrypt(ctx context.Context, k *Keyring, s CiphertextStore, opts ReencryptOptions) (ReencryptReport, error) {
	var rep ReencryptReport
	if k == nil || len(k.keys) == 0 {
		return rep, ErrNoKeyring
	}
	if isnil.Value(s) { // nil, or a typed nil such as a nil *variables.MemoryStore
		return rep, errors.New("secrets: Reencrypt: nil store")
	}
	size := opts.BatchSize
	if size == 0 {
		size = DefaultReencryptBatchSize
	}
	if size < 0 {
		return rep, fmt.Errorf("secrets: Reencrypt: negative batch size %d", size)
	}
	after, prevFirst, first := opts.After, "", true
	rep.LastID = after
	for {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		batch, err := s.ListCiphertexts(ctx, after, size)
		if err != nil {
			return rep, fmt.Errorf("secrets: Reencrypt: list after %q: %w", after, err)
		}
		if len(batch) == 0 {
			return rep, nil
		}
		// A store that does not honour `after` would make this loop
		// forever. Only these two symptoms are checked, not the order
		// itself, which depends on the database's collation.
		if !first && batch[0].ID == prevFirst {
			return rep, fmt.Errorf("secrets: Reencrypt: store listed the same batch twice (from ID %q)", prevFirst)
		}
		prevFirst, first = batch[0].ID, false
		for _, c := range batch {
			if err := ctx.Err(); err != nil {
				return rep, err
			}
			if after != "" && c.ID == after {
				return rep, fmt.Errorf("secrets: Reencrypt: store listed ID %q, which is not after itself", c.ID)
			}
			if err := reencryptOne(ctx, k, s, c, &rep); err != nil {
				return rep, err
			}
			after = c.ID
			rep.LastID = c.ID
		}
		if opts.Progress != nil {
			opts.Progress(rep)
		}
	}
}

func reencryptOne(ctx context.Context, k *Keyring, s CiphertextStore, c Ciphertext, rep *ReencryptReport) error {
	msg, ts, key, err := k.open(c.Token)
	switch {
	case err != nil:
		rep.Failed++
		return nil
	case key == 0:
		rep.Current++
		return nil
	}
	tok, err := sealAt(k.keys[0], msg, ts)
	if err != nil {
		return err
	}
	swapped, err := s.SwapCiphertext(ctx, c.ID, c.Token, tok)
	if err != nil {
		return fmt.Errorf("secrets: Reencrypt: swap %q: %w", c.ID, err)
	}
	if swapped {
		rep.Rotated++
	} else {
		rep.Skipped++
	}
	return nil
}
