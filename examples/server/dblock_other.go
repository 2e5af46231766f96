//go:build !unix

package main

// lockFile cannot lock on this platform: rotate-secret warns and relies on
// its verification pass (see lockDatabase).
func lockFile(path string, exclusive bool, busy error) (release func(), locked bool, err error) {
	return func() {}, false, nil
}
