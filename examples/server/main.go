// Command server is keyflow's reference server: a Langflow-shaped API with
// per-user API keys, Fernet-encrypted global variables and a small web UI,
// on an embedded SQLite database (or PostgreSQL), plus Langflow's CLI.
//
//	go run ./examples/server                 # serve on http://127.0.0.1:7860
//	go run ./examples/server api-key         # a key for the superuser, in a box
//	go run ./examples/server superuser --username admin --password '…'
//	echo -n secret | go run ./examples/server encrypt
//	go run ./examples/server decrypt < token.txt
//	go run ./examples/server rotate-secret   # re-encrypt under a new master secret
//
// Every subcommand takes --config-dir, --database-url, --env-file,
// --log-level and --change-max-lag, and creates the database, its schema and
// the superuser (LANGFLOW_SUPERUSER, default "langflow") when they are
// missing, so the CLI and a running server share one database from the
// first command on. Logs go to stderr.
//
// The parts live in internal/ (see README.md, "The code"): cli runs the
// subcommands, startup opens the database and keyflow's services, httpserver
// routes requests to accounts, login, flows, keyflow's own handlers and
// webui.
package main

import (
	"os"

	"github.com/keyflow-dev/keyflow/examples/server/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
