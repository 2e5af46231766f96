//go:build !linux

package kubetest

import "os/exec"

// dieWithParent does nothing where the kernel cannot kill a child with its
// parent: Close stops the processes.
func dieWithParent(*exec.Cmd) {}
