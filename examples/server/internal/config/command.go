package config

import (
	"path/filepath"
	"strings"
)

// Command is how the user started this program, for help texts and the
// commands the server suggests: "go run ./examples/server" when arg0 is a
// binary that go run (or go test) built in its temporary directory, else
// arg0 as typed.
func Command(arg0 string) string {
	if strings.Contains(filepath.ToSlash(arg0), "/go-build") {
		return "go run ./examples/server"
	}
	return arg0
}
