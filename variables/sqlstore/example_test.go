package sqlstore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite" // the host's choice of driver

	"github.com/keyflow-dev/keyflow/secrets"
	"github.com/keyflow-dev/keyflow/sqldialect"
	"github.com/keyflow-dev/keyflow/sqlitedb"
	"github.com/keyflow-dev/keyflow/variables"
	"github.com/keyflow-dev/keyflow/variables/sqlstore"
)

// Keep variables in an SQLite file. With PostgreSQL, open the *sql.DB with
// pgx's stdlib driver and pass sqldialect.Postgres.
func Example() {
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
	defer func() { _ = store.Close() }()

	k, _ := secrets.NewKeyring("my-master-secret-0123456789-abcdefgh")
	svc, err := variables.NewService(variables.ServiceConfig{Store: store, Keyring: k})
	if err != nil {
		fmt.Println(err)
		return
	}
	_, _ = svc.Create(ctx, "user-1", variables.CreateInput{Name: "OPENAI_API_KEY", Value: "sk-abc"})

	// The row holds a Fernet token, never the value.
	var stored string
	_ = db.QueryRowContext(ctx, `SELECT value FROM variable WHERE name = 'OPENAI_API_KEY'`).Scan(&stored)
	fmt.Println(secrets.IsEncrypted(stored))
	v, _ := svc.Value(ctx, "user-1", "OPENAI_API_KEY")
	fmt.Println(v)
	// Output:
	// true
	// sk-abc
}
