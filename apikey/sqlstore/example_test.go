package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // the host's choice of driver

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/apikey/sqlstore"
	"github.com/keyflow-dev/keyflow/sqldialect"
	"github.com/keyflow-dev/keyflow/sqlitedb"
)

// Two processes (here: two Managers, each with its own connection pool) share
// one database. The Store is also the change feed: a key disabled through A
// is refused by B within Config.ChangesMaxLag, although B had it cached.
func ExampleStore_Changes() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "keyflow-example")
	defer func() { _ = os.RemoveAll(dir) }()
	path := filepath.Join(dir, "keys.db") // PostgreSQL: sqldialect.Postgres on a pgx *sql.DB

	manager := func() (*apikey.Manager, error) {
		db, err := sqlitedb.Open(ctx, path) // the host opens the *sql.DB with its driver
		if err != nil {
			return nil, err
		}
		s, err := sqlstore.New(ctx, db, sqlstore.Config{Dialect: sqldialect.SQLite})
		if err != nil {
			return nil, err
		}
		return apikey.NewManager(apikey.Config{Store: s, Changes: s, ChangesMaxLag: time.Second})
	}
	a, errA := manager()
	b, errB := manager()
	if err := errors.Join(errA, errB); err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = a.Close(); _ = b.Close() }()

	key, rec, _ := a.Create(ctx, "alice", "ci", apikey.CreateOptions{})
	p, err := b.Verify(ctx, key) // a cache miss on B: read from the store
	fmt.Println("B:", p.KeyName, err)

	_ = a.SetActive(ctx, "alice", rec.ID, false)
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		if _, err = b.Verify(ctx, key); errors.Is(err, apikey.ErrInactive) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Println("B within a second:", err)
	// Output:
	// B: ci <nil>
	// B within a second: apikey: API key inactive
}
