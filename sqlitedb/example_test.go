package sqlitedb_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite" // registers the driver named sqlitedb.Driver

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/apikey/sqlstore"
	"github.com/keyflow-dev/keyflow/sqldialect"
	"github.com/keyflow-dev/keyflow/sqlitedb"
)

// Open an SQLite file for the API-key store.
func ExampleOpen() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "keyflow-example")
	defer func() { _ = os.RemoveAll(dir) }()

	db, err := sqlitedb.Open(ctx, filepath.Join(dir, "keyflow.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = db.Close() }()
	store, err := sqlstore.New(ctx, db, sqlstore.Config{Dialect: sqldialect.SQLite})
	if err != nil {
		fmt.Println(err)
		return
	}
	keys, err := apikey.NewManager(apikey.Config{Store: store})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer keys.Close()
	key, _, _ := keys.Create(ctx, "user-1", "ci", apikey.CreateOptions{})
	p, err := keys.Verify(ctx, key)
	fmt.Println(p.UserID, err)
	// Output: user-1 <nil>
}

// The DSN alone, for a host that opens the *sql.DB itself.
func ExampleDSN() {
	fmt.Println(sqlitedb.DSN("/var/lib/app/keyflow.db"))
	// Output: file:/var/lib/app/keyflow.db?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_txlock=immediate
}
