package envbool_test

import (
	"fmt"

	"github.com/keyflow-dev/keyflow/envbool"
)

// A server reads a boolean setting of its own as Langflow reads its
// settings: unset gives the default, any of Langflow's spellings is read,
// anything else is an error that names the setting, never its value.
func Example() {
	env := map[string]string{"MY_FEATURE": "Yes", "MY_OTHER": "maybe"}
	lookup := func(name string) (string, bool) { v, ok := env[name]; return v, ok }

	on, err := envbool.Lookup(lookup, "MY_FEATURE", false)
	fmt.Println(on, err)
	on, err = envbool.Lookup(lookup, "MY_UNSET", true)
	fmt.Println(on, err)
	_, err = envbool.Lookup(lookup, "MY_OTHER", false)
	fmt.Println(err)
	// Output:
	// true <nil>
	// true <nil>
	// MY_OTHER must be a boolean (true/false, 1/0, yes/no, on/off, t/f, y/n)
}
