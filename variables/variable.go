package variables

import (
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keyflow-dev/keyflow/names"
)

// Type is the kind of a variable: Credential (the default) or Generic.
type Type string

const (
	// Credential values are encrypted at rest, never listed, and refused for
	// session_id fields. It is the default type, as in Langflow's API.
	Credential Type = "Credential"
	// Generic values are stored and listed as given.
	Generic Type = "Generic"
)

// Valid reports whether t is Credential or Generic.
func (t Type) Valid() bool { return t == Credential || t == Generic }

// Origin records who last wrote a variable's value: a user (through the
// Service or the API) or the environment import. It is kept apart from the
// timestamps so the import can tell its own rows from rows a user edited.
type Origin string

const (
	// OriginUser marks a variable created or last edited by a user.
	OriginUser Origin = "user"
	// OriginEnv marks a variable created or last refreshed by ImportEnv and
	// not edited by a user since.
	OriginEnv Origin = "env"
)

// Variable is one stored global variable.
type Variable struct {
	ID     string // a UUID, made by the Service
	UserID string // the user the variable belongs to
	Name   string // unique per user; checked by package names
	// Value is the value as stored: a Fernet token for Credential variables
	// (plaintext for Credential rows written by old versions of Langflow), the
	// plaintext for Generic ones (a Fernet token for Generic rows written by
	// Langflow before 1.7).
	Value         string
	Type          Type      // Credential or Generic
	DefaultFields []string  // "Apply To Fields": field names the variable fills when they are empty
	CreatedAt     time.Time // set by the Service, UTC
	UpdatedAt     time.Time // zero until the first update, as Langflow's NULL updated_at
	Origin        Origin    // who last set the value: the user or the environment import
}

// Hidden reports whether v is an internal variable that listings leave out:
// Langflow hides names that start and end with "__" (e.g. __enabled_models__).
func (v Variable) Hidden() bool {
	return strings.HasPrefix(v.Name, "__") && strings.HasSuffix(v.Name, "__")
}

// Sentinel errors. Store methods return ErrNotFound and ErrDuplicate (possibly
// wrapped); the Service returns them and the validation errors below.
var (
	// ErrNotFound: no such variable for this user (another user's variable
	// looks the same).
	ErrNotFound = errors.New("variables: variable not found")
	// ErrDuplicate: the user already has a variable of that name (or, from
	// a Store, a row with that ID exists). It is a *ValidationError whose
	// Message is Langflow's "Variable name already exists", so a handler
	// answers it with 400 like the other validation errors; a Store may
	// return it wrapped.
	ErrDuplicate error = &ValidationError{Message: "Variable name already exists"}
	// ErrConflict: Store.Update found the row changed since it was read.
	ErrConflict = errors.New("variables: variable changed concurrently")
	// ErrUnavailable: the store failed (any error other than ErrNotFound,
	// ErrDuplicate and ErrConflict). The Service and Resolver return an
	// error that wraps both ErrUnavailable and the store's cause; HTTP
	// handlers answer it with 503.
	ErrUnavailable = errors.New("variables: store unavailable")
)

// Validation errors: inputs the Service refuses. Each is a *ValidationError
// whose Message is Langflow's exact text (or, for checks Langflow lacks, a
// message in the same style); the Service returns these values (or, for
// ErrCredentialSessionID, one that errors.Is matches), so callers can test
// with errors.Is and show Error() to the client.
var (
	ErrEmptyNameAndValue = &ValidationError{Message: "Variable name and value cannot be empty"}
	ErrEmptyName         = &ValidationError{Message: "Variable name cannot be empty"}
	ErrEmptyValue        = &ValidationError{Message: "Variable value cannot be empty"}
	// ErrInvalidName: package names refuses the name: longer than
	// MaxNameLen bytes, not valid UTF-8, or holding a control, invisible or
	// bidirectional character, or U+FFFD (keyflow's check; Langflow has
	// none). The error returned matches it with errors.Is and adds the
	// reason (never the name).
	ErrInvalidName = &ValidationError{Message: "Variable name must be at most 255 bytes of valid UTF-8 without control, invisible or bidirectional characters"}
	// ErrInvalidDefaultFields: default_fields has more than
	// MaxDefaultFields entries, or an entry that is empty or that package
	// names refuses (keyflow's check; Langflow stores any list). The error
	// returned matches it with errors.Is and adds the reason.
	ErrInvalidDefaultFields = &ValidationError{Message: "Variable default_fields must hold at most 64 non-empty field names of at most 255 bytes, without control, invisible or bidirectional characters"}
	// ErrInvalidValue: a Generic value holds a NUL character or invalid UTF-8,
	// which SQL text columns cannot store (keyflow's check).
	ErrInvalidValue = &ValidationError{Message: "Variable value must be valid UTF-8 without NUL characters"}
	// ErrInvalidType: the type is neither Credential nor Generic (Langflow
	// stores any string).
	ErrInvalidType = &ValidationError{Message: "Variable type must be Credential or Generic"}
	// ErrCredentialSessionID: a Credential variable was bound to a session_id
	// field. The error returned carries Langflow's message, which names the
	// variable, and matches this value with errors.Is.
	ErrCredentialSessionID = &ValidationError{Message: "Credential variables cannot be used in a Session ID field"}
	// ErrCredentialToGeneric: an update would turn a Credential into a
	// Generic variable without giving a new value. Generic values are listed
	// in clear, so keeping the old value would reveal the decrypted
	// Credential (keyflow's check; Langflow decrypts and shows it).
	ErrCredentialToGeneric = &ValidationError{Message: "A Credential variable can become Generic only with a new value: its current value is never shown"}
	// ErrEncryptedGenericValue: a new Generic value is a Fernet token that
	// opens with the Service's keyring. Generic values are shown decrypted
	// (for Langflow's legacy encrypted Generic rows), so storing such a token
	// would turn the API into a decryption oracle for anyone holding a copy
	// of a Credential's ciphertext (keyflow's check).
	ErrEncryptedGenericValue = &ValidationError{Message: "A Generic variable's value cannot be a token encrypted with this server's secret"}
)

// ValidationError is an input the Service refused. Message is safe to show to
// the client (HTTP 400): it never contains a value.
type ValidationError struct {
	Message string
	kind    *ValidationError // the sentinel this error is an instance of, if not itself
}

// Error returns Message.
func (e *ValidationError) Error() string { return e.Message }

// Is makes an instance match its sentinel.
func (e *ValidationError) Is(target error) bool {
	return e.kind != nil && target == error(e.kind)
}

func credentialSessionIDError(name string) error {
	return &ValidationError{
		Message: "variable " + name + " of type 'Credential' cannot be used in a Session ID field " +
			"because its purpose is to prevent the exposure of values.",
		kind: ErrCredentialSessionID,
	}
}

// MaxNameLen is the longest variable name accepted, in bytes.
const MaxNameLen = names.MaxLen

// MaxDefaultFields is the most entries a variable's default_fields may hold.
const MaxDefaultFields = 64

// ValidateName checks a variable name: non-empty (ErrEmptyName), and
// accepted by package names (ErrInvalidName): at most MaxNameLen bytes of
// valid UTF-8 without control, invisible or bidirectional characters.
// Langflow checks only emptiness; the other rules keep names storable in
// every SQL database, printable in logs, and distinct on screen (no
// "OPENAI_API_KEY" with a zero-width space that looks like the real one).
func ValidateName(name string) error {
	if name == "" {
		return ErrEmptyName
	}
	if err := names.Check(name); err != nil {
		return &ValidationError{Message: ErrInvalidName.Message + " (" + err.Error() + ")", kind: ErrInvalidName}
	}
	return nil
}

// ValidateDefaultFields checks a variable's default_fields: at most
// MaxDefaultFields entries, each non-empty and accepted by package names
// (ErrInvalidDefaultFields). nil and empty lists are valid.
func ValidateDefaultFields(fields []string) error {
	if err := names.CheckList(fields, MaxDefaultFields); err != nil {
		return &ValidationError{Message: ErrInvalidDefaultFields.Message + " (" + err.Error() + ")", kind: ErrInvalidDefaultFields}
	}
	return nil
}

// validateStoredText refuses what a SQL text column cannot hold.
func validateStoredText(value string) error {
	if !utf8.ValidString(value) || strings.IndexByte(value, 0) >= 0 {
		return ErrInvalidValue
	}
	return nil
}
