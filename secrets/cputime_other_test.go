//go:build !unix

package secrets

// processCPU is unknown on this platform.
func processCPU() int64 { return 0 }
