//go:build !unix

package promhooks_test

// processCPU is unknown on this platform.
func processCPU() int64 { return 0 }
