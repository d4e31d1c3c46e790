//go:build !unix

package local

import "os/exec"

// ownProcessGroup leaves cmd as is: without process groups, canceling
// kills the process only.
func ownProcessGroup(cmd *exec.Cmd) {}

func killProcessGroup(cmd *exec.Cmd) {}
