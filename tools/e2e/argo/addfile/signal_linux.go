// The executor's process handling on Linux. Argo's module as the proxy
// serves it (v3.7.18) has this file for darwin and windows only, so
// cmd/argoexec does not build for Linux from it; tools/e2e/build adds
// this one to a copy of the module. It does what the darwin file does:
// signals go to the child's process group, and the child is reaped by
// polling, as a container's PID 1 would.

package osspecific

import (
	"os"
	"syscall"
	"time"

	"github.com/argoproj/argo-workflows/v3/util/errors"
)

// Term is the signal that asks the main process to stop.
var Term = syscall.SIGTERM

// CanIgnoreSignal reports whether the executor need not forward s.
func CanIgnoreSignal(s os.Signal) bool {
	return s == syscall.SIGCHLD || s == syscall.SIGURG
}

// Kill sends s to the process group of pid, or to pid alone when its
// group is unknown.
func Kill(pid int, s syscall.Signal) error {
	if pgid, err := syscall.Getpgid(pid); err == nil {
		return syscall.Kill(-pgid, s)
	}
	return syscall.Kill(pid, s)
}

// Setpgid makes the started process lead a process group of its own.
func Setpgid(a *syscall.SysProcAttr) { a.Setpgid = true }

// Wait waits for process to end and returns its exit status as an
// error (nil for 0). The process is released and reaped with Wait4, so
// that the processes it leaves behind are reaped as well.
func Wait(process *os.Process) error {
	pid := process.Pid
	if err := process.Release(); err != nil {
		return err
	}
	for {
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err != nil {
			return err
		}
		if got == pid {
			switch {
			case ws.Exited():
				return errors.NewExitErr(ws.ExitStatus())
			case ws.Signaled():
				return errors.NewExitErr(128 + int(ws.Signal()))
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}
