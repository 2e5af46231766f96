package langflowtest_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite" // the test's choice of driver

	"github.com/keyflow-dev/keyflow/langflowdb/langflowtest"
	"github.com/keyflow-dev/keyflow/secrets"
	"github.com/keyflow-dev/keyflow/sqldialect"
	"github.com/keyflow-dev/keyflow/sqlitedb"
)

// A test builds a Langflow 1.8 database (token rows, then api_key_hash) with
// the keys and variables Langflow would have written, then checks its code
// against it: the fixture says which keys Langflow accepts and refuses.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "langflowtest-example") // t.TempDir() in a test
	defer func() { _ = os.RemoveAll(dir) }()
	db, err := sqlitedb.Open(ctx, filepath.Join(dir, "langflow.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = db.Close() }()
	keyring, _ := secrets.NewKeyring("dBuuRmX0a5Gx3kqzT0C7mB1g7eYcY2Jq2Vd9sRxk2M0") // LANGFLOW_SECRET_KEY

	fx, err := langflowtest.Create(ctx, db, sqldialect.SQLite, langflowtest.Gen18Hash, keyring)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(fx.Generation, fx.Superuser.Username)
	fmt.Println("accepted:", fx.Valid())
	fmt.Println("refused:", fx.Refused())
	fmt.Println(fx.Vars["MODEL_NAME"].Plain)
	// Output:
	// langflow-1.8-token-hash langflow
	// accepted: [plain alice token hashed]
	// refused: [inactive deleted shared]
	// gpt-4o-mini
}
