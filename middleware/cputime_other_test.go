//go:build !unix

package middleware_test

// processCPU is unknown on this platform.
func processCPU() int64 { return 0 }
