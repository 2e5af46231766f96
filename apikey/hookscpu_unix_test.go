//go:build unix

package apikey_test

import "syscall"

// hooksCPU returns the user+system CPU time this process has used, in
// nanoseconds (0 if unknown).
func hooksCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
