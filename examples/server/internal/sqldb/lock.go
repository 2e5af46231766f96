package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// The database-use lock keeps rotate-secret from re-encrypting Credential
// values while another keyflow process uses the same database. A server
// that started before a rotation knows only the old secret: it could not
// read the values already re-encrypted, and what it writes meanwhile would
// be under a secret that the rotation then retires. So every process that
// opens the database (a server for its whole life, every other subcommand
// while it runs) holds the lock shared, and rotate-secret holds it
// exclusively, from before it reads the secret files until the new secret
// is in place. Neither waits: the one that comes second stops with
// ErrDatabaseInUse or ErrRotationRunning, having changed nothing.
//
//   - PostgreSQL: a session-level advisory lock, keyed on the schema
//     (current_schema()), on a connection of its own that the process keeps
//     open; it is unlocked explicitly on release, and PostgreSQL releases it
//     when the session ends, also when the process is killed (a moment
//     later: until PostgreSQL has noticed, rotate-secret reports the
//     database in use).
//   - SQLite: flock(2) on "<database file>-keyflow.lock" beside the database
//     file (mode 0600). The kernel releases it when the process exits,
//     however it exits. On systems without flock (Windows) there is no lock:
//     rotate-secret says so and relies on its final verification pass.
//
// The lock covers keyflow processes only: a program that writes the
// variable table on its own is not held back.

// ErrDatabaseInUse: rotate-secret could not take the lock.
var ErrDatabaseInUse = errors.New("a keyflow server or another keyflow command is using this database: " +
	"stop every server that uses it (and let other commands finish), then run rotate-secret again; nothing was changed")

// ErrRotationRunning: a process could not take the lock shared.
var ErrRotationRunning = errors.New("rotate-secret is re-encrypting the Credential values of this database: " +
	"start again once it has finished")

// rotationLockSQL takes the PostgreSQL lock without waiting; %s is
// "_shared" or "".
const rotationLockSQL = "SELECT pg_try_advisory_lock%s(hashtext('keyflow-rotate-secret:' || current_schema()))"

// LockForUse takes the database-use lock of dbc, exclusive for
// rotate-secret and shared otherwise, and returns its release. When another
// process holds it in a conflicting mode, the error is ErrDatabaseInUse
// (exclusive) or ErrRotationRunning (shared). locked is false where the
// platform cannot lock an SQLite file.
func LockForUse(ctx context.Context, dbc Address, exclusive bool) (release func(), locked bool, err error) {
	busy := ErrRotationRunning
	if exclusive {
		busy = ErrDatabaseInUse
	}
	if !dbc.Postgres {
		return lockFile(dbc.SQLitePath()+"-keyflow.lock", exclusive, busy)
	}
	// A pool of its own with one connection, so that the lock's session
	// lives exactly as long as this process holds the lock.
	db, err := sql.Open(dbc.Driver, dbc.DSN)
	if err != nil {
		return nil, false, fmt.Errorf("database lock: %w", err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		_ = db.Close()
		return nil, false, fmt.Errorf("database lock: connect to %s: %w", dbc.Display, err)
	}
	mode := "_shared"
	if exclusive {
		mode = ""
	}
	var ok bool
	if err := conn.QueryRowContext(ctx, fmt.Sprintf(rotationLockSQL, mode)).Scan(&ok); err != nil {
		_ = conn.Close()
		_ = db.Close()
		return nil, false, fmt.Errorf("database lock: %w", err)
	}
	if !ok {
		_ = conn.Close()
		_ = db.Close()
		return nil, false, busy
	}
	return func() {
		// Unlock explicitly: a closed session's locks are released only
		// once its backend has noticed, a moment later, which a process
		// that starts right after this one would run into.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, _ = conn.ExecContext(ctx, "SELECT pg_advisory_unlock_all()")
		_ = conn.Close()
		_ = db.Close() // ends the session, which would release the lock too
	}, true, nil
}

// startupLockSQL takes the PostgreSQL advisory lock that serialises the
// start-up of instances sharing a database schema (schema creation, the
// superuser, the demo flow); instances on other schemas do not wait.
const startupLockSQL = "SELECT pg_advisory_lock(hashtext('keyflow-startup:' || current_schema()))"

// StartupLock takes the start-up lock and returns its release. On
// PostgreSQL (file == "") it is a session lock held on one connection of
// db, which the other statements do not use. On SQLite it is flock(2) on
// file beside the database file ("<database file>-keyflow-startup.lock"):
// SQLite serialises each write, but not a migration's "is the column there?
// then add it", which two processes starting together on a fresh file
// would both run (systems without flock have no lock).
func StartupLock(ctx context.Context, db *sql.DB, file string) (func(), error) {
	if file != "" {
		release, err := waitLockFile(ctx, file)
		if err != nil {
			return nil, fmt.Errorf("start-up lock: %w", err)
		}
		return release, nil
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("start-up lock: %w", err)
	}
	if _, err := conn.ExecContext(ctx, startupLockSQL); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("start-up lock: %w", err)
	}
	return func() {
		_, _ = conn.ExecContext(context.Background(), "SELECT pg_advisory_unlock(hashtext('keyflow-startup:' || current_schema()))")
		_ = conn.Close()
	}, nil
}
