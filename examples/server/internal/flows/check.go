package flows

import (
	"fmt"

	"github.com/keyflow-dev/keyflow/names"
	"github.com/keyflow-dev/keyflow/variables"
)

// Limits of a flow, so that a request cannot store more than a flow needs
// (the body itself is capped at 1 MiB).
const (
	maxFlowFields     = 256      // fields per flow
	maxFieldValueSize = 64 << 10 // bytes of one literal value
)

// Answers of Check (400). None repeats a name or a value.
const (
	msgFlowNameEmpty   = "Flow name cannot be empty"
	msgFlowNameInvalid = "Flow name must be valid UTF-8 of at most 255 bytes without control or invisible characters"
	msgFieldNameEmpty  = "Field names cannot be empty"
	msgFieldName       = "Field names must be valid UTF-8 of at most 255 bytes without control or invisible characters"
)

var msgTooManyFields = fmt.Sprintf("A flow can have at most %d fields", maxFlowFields)

// Check validates a new flow: its name and field names with names.Check
// (the one rule for the names of keys, variables, flows and fields), at most
// maxFlowFields fields, literal values of at most maxFieldValueSize bytes,
// and variable references that are valid variable names. It returns the 400
// message, or "" when the flow is acceptable.
func Check(name string, fields map[string]Field) string {
	switch {
	case name == "":
		return msgFlowNameEmpty
	case names.Check(name) != nil:
		return msgFlowNameInvalid
	case len(fields) > maxFlowFields:
		return msgTooManyFields
	}
	for fname, f := range fields {
		switch {
		case fname == "":
			return msgFieldNameEmpty
		case names.Check(fname) != nil:
			return msgFieldName
		case f.Variable != "" && f.Value != "":
			return "Field '" + fname + "': set either a variable or a value, not both"
		case f.Variable != "" && variables.ValidateName(f.Variable) != nil:
			return "Field '" + fname + "': invalid variable name"
		case len(f.Value) > maxFieldValueSize:
			return fmt.Sprintf("Field '%s': a value can be at most %d bytes", fname, maxFieldValueSize)
		}
	}
	return ""
}
