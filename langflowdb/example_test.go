package langflowdb_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite" // the host's choice of driver

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/langflowdb"
	"github.com/keyflow-dev/keyflow/langflowdb/langflowtest"
	"github.com/keyflow-dev/keyflow/secrets"
	"github.com/keyflow-dev/keyflow/sqldialect"
	"github.com/keyflow-dev/keyflow/sqlitedb"
	"github.com/keyflow-dev/keyflow/variables"
)

// A Go service next to a running Langflow: it opens Langflow's database
// (here a test copy of a Langflow 1.8 one), verifies the keys Langflow
// issued and reads the global variables Langflow stores, with Langflow's
// LANGFLOW_SECRET_KEY.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "langflowdb-example")
	defer os.RemoveAll(dir)
	db, err := sqlitedb.Open(ctx, filepath.Join(dir, "langflow.db")) // Langflow's database file
	if err != nil {
		panic(err)
	}
	defer db.Close()
	keyring, _ := secrets.NewKeyring("dBuuRmX0a5Gx3kqzT0C7mB1g7eYcY2Jq2Vd9sRxk2M0") // LANGFLOW_SECRET_KEY
	fx, _ := langflowtest.Create(ctx, db, sqldialect.SQLite, langflowtest.Gen18Hash, keyring)

	lf, err := langflowdb.Open(ctx, db, langflowdb.Config{Dialect: sqldialect.SQLite, Keyring: keyring})
	if err != nil {
		panic(err)
	}
	fmt.Println(lf.Schema().Generation())

	keys, _ := apikey.NewManager(apikey.Config{Store: lf.Keys()}) // revocations in Langflow seen within 1 s
	defer keys.Close()
	p, err := keys.Verify(ctx, fx.Keys[langflowtest.KeyToken].Plaintext)
	fmt.Println(p.UserID == fx.Superuser.ID, err)
	_, err = keys.Verify(ctx, fx.Keys[langflowtest.KeyDeleted].Plaintext)
	fmt.Println(err != nil)

	vs, _ := lf.Variables()
	svc, _ := variables.NewService(variables.ServiceConfig{Store: vs, Keyring: lf.Keyring()})
	model, _ := svc.Value(ctx, fx.Superuser.ID, "MODEL_NAME")
	fmt.Println(model)
	// Output:
	// keys as token and hash (Langflow 1.8 and later)
	// true <nil>
	// true
	// gpt-4o-mini
}
