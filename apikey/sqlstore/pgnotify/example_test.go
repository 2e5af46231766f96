package pgnotify_test

import (
	"context"
	"database/sql"
	"log"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/apikey/sqlstore"
	"github.com/keyflow-dev/keyflow/apikey/sqlstore/pgnotify"
	"github.com/keyflow-dev/keyflow/sqldialect"
)

// A server instance on a PostgreSQL database shared with other instances:
// the store is the change feed, and a Listener pushes its notifications, so
// that a key revoked on any instance is refused here within milliseconds
// (and within Config.ChangesMaxLag, 1 s, whatever happens to the
// notifications).
func Example() {
	ctx := context.Background()
	const dsn = "postgres://app@db.internal:5432/app?sslmode=verify-full"
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	store, err := sqlstore.New(ctx, db, sqlstore.Config{Dialect: sqldialect.Postgres})
	if err != nil {
		log.Fatal(err)
	}
	channel, payload := store.Notification()
	listener, err := pgnotify.New(pgnotify.Config{ConnString: dsn, Channel: channel, Payload: payload})
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = listener.Close() }() // after the Manager's Close
	keys, err := apikey.NewManager(apikey.Config{Store: store, Changes: store, ChangesNotifier: listener})
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = keys.Close() }()
	// ... serve, verifying with keys.Verify.
}
