package names_test

import (
	"errors"
	"fmt"

	"github.com/keyflow-dev/keyflow/names"
)

// A host checks the names of its own things (here: a flow) with the rule
// keyflow applies to key and variable names.
func ExampleCheck() {
	for _, name := range []string{"OPENAI_API_KEY", "OPENAI_API\u200b_KEY", "report\x1b[2J"} {
		err := names.Check(name)
		fmt.Println(err == nil, errors.Is(err, names.ErrInvalid))
	}
	// Output:
	// true false
	// false true
	// false true
}
