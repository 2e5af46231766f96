// Package keyflow is an API-key, secrets and variables library for Go HTTP
// servers, compatible with Langflow where that helps its users.
//
// keyflow gives any net/http server what Langflow gives its users:
//
//   - per-user API keys ("sk-…", sent in the x-api-key header or query
//     parameter), stored only as SHA-256 hashes, verified through a bounded
//     cache, with usage counters written in batches (package apikey, stores in
//     apikey/sqlstore, management handlers in apikey/apikeyhttp);
//   - net/http middleware that authenticates requests with those keys and
//     answers exactly as Langflow does (package middleware);
//   - a master secret and Fernet encryption compatible with Langflow's
//     LANGFLOW_SECRET_KEY derivations, with secret rotation (package secrets);
//   - global variables (Credential and Generic), imported from the
//     environment and resolved with the precedence flow value > request
//     override > stored variable > environment (package variables, stores in
//     variables/sqlstore, handlers in variables/variableshttp, .env files
//     in variables/dotenv).
//
// Every store is pluggable: memory stores serve tests and single processes,
// the SQL stores work on a *sql.DB for SQLite or PostgreSQL with the driver the
// host program chooses (package sqlitedb opens SQLite the way they need it),
// and the storetest packages hold the conformance suites every store passes.
//
// Quick start:
//
//	keys, _ := apikey.NewManager(apikey.Config{}) // in-memory store
//	defer keys.Close()
//	auth, _ := middleware.New(middleware.Config{Verifier: keys})
//	key, _, _ := keys.Create(ctx, "user-1", "my key", apikey.CreateOptions{})
//	http.ListenAndServe(":8080", auth(myHandler)) // curl -H "x-api-key: "+key
//
// The reference server in examples/server puts all of it together behind a
// Langflow-shaped HTTP API, a small web UI and a CLI.
package keyflow
