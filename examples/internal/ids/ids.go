// Package ids makes and checks the record IDs of the example programs:
// random (version 4) UUIDs in the canonical 36-character form, the form
// keyflow's stores and Langflow use.
package ids

import "github.com/google/uuid"

// New returns a new random UUID in canonical lower-case form.
func New() string { return uuid.NewString() }

// Valid reports whether s is a UUID in the canonical 8-4-4-4-12 hexadecimal
// form (either case). Unlike uuid.Parse it refuses the other spellings
// (braces, "urn:uuid:", no dashes), so an ID in a URL has one form only.
func Valid(s string) bool { return len(s) == 36 && uuid.Validate(s) == nil }
