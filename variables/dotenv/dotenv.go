// Package dotenv loads .env files into the process environment, so that the
// provider keys Langflow users keep there (OPENAI_API_KEY=…, …) reach
// variables.Service.ImportEnv and the Resolver's environment fallback.
//
// It is a thin layer over github.com/joho/godotenv, kept apart from package
// variables so that the core packages depend on the standard library only.
package dotenv

import (
	"errors"
	"fmt"
	"os"

	"github.com/joho/godotenv"
)

// Load loads KEY=VALUE lines from .env files into the process environment,
// like `langflow run --env-file` (which calls load_dotenv(path,
// override=True)): a value in a file overrides a variable already set in the
// process environment, and when several paths are given, later files
// override earlier ones. With no paths it loads ".env" in the working
// directory. A missing or malformed file is an error naming the path; values
// are never included, and nothing is logged. Files are loaded one at a time:
// those before a failing one stay loaded, the failing one sets nothing.
func Load(paths ...string) error {
	if len(paths) == 0 {
		paths = []string{".env"}
	}
	for _, p := range paths {
		if err := godotenv.Overload(p); err != nil {
			return fmt.Errorf("dotenv: load %s: %w", p, errKind(err))
		}
	}
	return nil
}

// errKind keeps the kind of a godotenv failure without its text, which may
// quote a line of the file (and so a secret).
func errKind(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return errors.New("malformed file")
}
