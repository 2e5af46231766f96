package apikey

import (
	"errors"
	"fmt"
)

// Outcomes of [Manager.Verify] and of the management methods. Test them with
// errors.Is: the errors returned often wrap them with a reason. No error
// message of this package contains a key.
var (
	// ErrMissing means that no key was presented (the empty string).
	ErrMissing = errors.New("apikey: no API key")
	// ErrInvalid means a malformed key, or a well-formed key that no record
	// has. Format checks wrap it with the reason (wrong prefix, bad checksum…).
	ErrInvalid = errors.New("apikey: invalid API key")
	// ErrExpired means the key's record has an expiry time in the past.
	ErrExpired = errors.New("apikey: API key expired")
	// ErrInactive means the key's record is disabled (is_active false).
	ErrInactive = errors.New("apikey: API key inactive")
	// ErrNotFound is returned by the Manager and by stores when there is no
	// such key for this user. A key of another user looks exactly the same,
	// so callers cannot learn that it exists.
	ErrNotFound = errors.New("apikey: API key not found")
	// ErrDuplicate is returned by Store.Insert (and so by Import) when a
	// record with the same ID or the same hash exists.
	ErrDuplicate = errors.New("apikey: API key already exists")
	// ErrUnavailable means the store failed (or the context ended). The
	// returned error wraps both ErrUnavailable and the cause. A caller should
	// answer 503 and log the error; it never means that a key is valid.
	ErrUnavailable = errors.New("apikey: key store unavailable")
	// ErrInvalidName is returned by Create and Import for a key name that
	// package names refuses (control, invisible or bidi characters, invalid
	// UTF-8, U+FFFD, over names.MaxLen bytes). The error wraps it and
	// names.ErrInvalid, with a reason that never contains the name. HTTP
	// handlers answer it with 400.
	ErrInvalidName = errors.New("apikey: invalid key name")
	// ErrScopeNotAllowed is returned by Create when CreateOptions.Creator
	// has scopes and the new key's are not a non-empty subset of them: a
	// scoped key cannot mint a key with more rights than its own. HTTP
	// handlers answer it with 403.
	ErrScopeNotAllowed = errors.New("apikey: a key with scopes can only create keys with a subset of its scopes")
	// ErrUninitialized is returned by every method of a Manager that was
	// not made by NewManager (a nil pointer or a zero value), instead of a
	// panic.
	ErrUninitialized = errors.New("apikey: Manager not created with NewManager")
)

// invalidError is ErrInvalid with a reason. The values below are allocated
// once, so that rejecting a key allocates nothing.
type invalidError struct{ reason string }

func (e *invalidError) Error() string        { return "apikey: invalid API key: " + e.reason }
func (e *invalidError) Is(target error) bool { return target == ErrInvalid }

var (
	errEmpty        error = &invalidError{"empty"}
	errTooLong      error = &invalidError{"longer than 256 bytes"}
	errPrefix       error = &invalidError{"wrong prefix"}
	errLength       error = &invalidError{"wrong length"}
	errAlphabet     error = &invalidError{"character outside the key alphabet"}
	errNonCanonical error = &invalidError{"non-canonical encoding"}
	errChecksum     error = &invalidError{"bad checksum"}
	errUnknown      error = &invalidError{"unknown key"}
)

// unavailable wraps a store failure of operation op in ErrUnavailable.
func unavailable(op string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, op, err)
}
