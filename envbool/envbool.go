// Package envbool parses boolean environment settings the way Langflow's
// settings (pydantic) do. keyflow's packages read every LANGFLOW_* boolean
// with it, and a server that reads more settings of its own uses it to read
// them alike (see docs/langflow-compatibility.md#boolean-settings):
//
//	autoLogin, err := envbool.Lookup(nil, "LANGFLOW_AUTO_LOGIN", true)
package envbool

import (
	"fmt"
	"os"
	"strings"
)

// Parse returns the boolean that v spells: 1, true, t, yes, y, on (true) or
// 0, false, f, no, n, off (false), letters in any case, with nothing around
// them. Anything else is an error naming the setting (never its value),
// including the empty string: Langflow refuses to start on an empty boolean
// setting, and so does keyflow.
func Parse(name, v string) (bool, error) {
	switch {
	case v == "1" || strings.EqualFold(v, "true") || strings.EqualFold(v, "t") ||
		strings.EqualFold(v, "yes") || strings.EqualFold(v, "y") || strings.EqualFold(v, "on"):
		return true, nil
	case v == "0" || strings.EqualFold(v, "false") || strings.EqualFold(v, "f") ||
		strings.EqualFold(v, "no") || strings.EqualFold(v, "n") || strings.EqualFold(v, "off"):
		return false, nil
	case v == "":
		return false, fmt.Errorf("%s is set but empty; it must be a boolean (true/false, 1/0, yes/no, on/off, t/f, y/n), or unset for the default", name)
	}
	return false, fmt.Errorf("%s must be a boolean (true/false, 1/0, yes/no, on/off, t/f, y/n)", name)
}

// Lookup reads the setting name through lookup (nil: os.LookupEnv): def when
// it is unset, else Parse's result.
func Lookup(lookup func(string) (string, bool), name string, def bool) (bool, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	v, ok := lookup(name)
	if !ok {
		return def, nil
	}
	return Parse(name, v)
}
