package names_test

import (
	"errors"
	"fmt"

	"github.com/keyflow-dev/keyflow/names"
)

// Check refuses names that could pass for others on screen or that a
// database refuses; the reason never repeats the name.
func ExampleCheck() {
	for _, name := range []string{"OPENAI_API_KEY", "OPENAI\u200b_API_KEY", "deploy\x00", "clé 🔑"} {
		err := names.Check(name)
		fmt.Println(err == nil, errors.Is(err, names.ErrInvalid), err)
	}
	// Output:
	// true false <nil>
	// false true name holds the invisible or control character U+200B
	// false true name holds the invisible or control character U+0000
	// true false <nil>
}

// CheckList checks a list such as a variable's default_fields.
func ExampleCheckList() {
	fmt.Println(names.CheckList([]string{"OpenAI", "api_key"}, 64))
	fmt.Println(names.CheckList([]string{"OpenAI", ""}, 64))
	fmt.Println(names.CheckList(make([]string, 100), 64))
	// Output:
	// <nil>
	// entry 1 is empty
	// more than 64 entries
}
