//go:build !unix

package apikey_test

// hooksCPU is unknown on this platform.
func hooksCPU() int64 { return 0 }
