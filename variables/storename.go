package variables

// InvalidNameError returns the error a Store gives for a name that
// ValidateName accepts but the store cannot hold (a Kubernetes Secret key,
// for instance, holds only ASCII letters, digits, '-', '_' and '.'). It is a
// *ValidationError that matches ErrInvalidName with errors.Is; message is
// its Message, shown to clients as is, so it must say what the store
// accepts and never contain a value.
//
// The Service returns such an error from Create and Update as it returns
// its own validation errors: an outcome, not wrapped in ErrUnavailable.
func InvalidNameError(message string) error {
	return &ValidationError{Message: message, kind: ErrInvalidName}
}
