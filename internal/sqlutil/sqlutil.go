// Package sqlutil holds the small pieces of SQL plumbing that keyflow's
// SQL stores share: PostgreSQL placeholders, the migration lock and NullTime.
package sqlutil

import (
	"context"
	"database/sql"
	"hash/fnv"
	"strconv"
	"strings"
)

// Dollar rewrites ? placeholders to PostgreSQL's $1, $2, …; the queries it
// is given hold no literal question mark.
func Dollar(q string) string {
	var b strings.Builder
	b.Grow(len(q) + 8)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// LockMigrations takes PostgreSQL's transaction-scoped advisory lock named
// by name, so that processes migrating the same schema at once take turns;
// it is released when tx ends.
func LockMigrations(ctx context.Context, tx *sql.Tx, name string) error {
	h := fnv.New64a()
	_, _ = h.Write([]byte(name))
	_, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", int64(h.Sum64()))
	return err
}
