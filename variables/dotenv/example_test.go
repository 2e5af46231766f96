package dotenv_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/keyflow-dev/keyflow/variables/dotenv"
)

// Load a .env file as `langflow run --env-file` does: its values override
// the process environment.
func ExampleLoad() {
	dir, _ := os.MkdirTemp("", "keyflow-example")
	defer func() { _ = os.RemoveAll(dir) }()
	path := filepath.Join(dir, ".env")
	_ = os.WriteFile(path, []byte("KEYFLOW_EXAMPLE_KEY=from-file\n"), 0o600)

	_ = os.Setenv("KEYFLOW_EXAMPLE_KEY", "from-process")
	defer func() { _ = os.Unsetenv("KEYFLOW_EXAMPLE_KEY") }()

	if err := dotenv.Load(path); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(os.Getenv("KEYFLOW_EXAMPLE_KEY"))
	// Output: from-file
}
