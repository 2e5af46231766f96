//go:build !unix

package sqldb

import "context"

// lockFile cannot lock on this platform: rotate-secret warns and relies on
// its verification pass (see LockForUse).
func lockFile(path string, exclusive bool, busy error) (release func(), locked bool, err error) {
	return func() {}, false, nil
}

// waitLockFile cannot lock on this platform: processes starting together on
// one fresh SQLite file are not serialised (see StartupLock).
func waitLockFile(ctx context.Context, path string) (release func(), err error) {
	return func() {}, nil
}
