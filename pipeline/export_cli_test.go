package pipeline

import (
	"io"
	"os"

	"github.com/sluice-ml/sluice/backends"
)

// ExecSignals is Main without the process, driven by the signals sent on
// sigs.
func ExecSignals(p *Pipeline, args []string, stdout, stderr io.Writer, sigs <-chan os.Signal, bs ...backends.Backend) int {
	return execSignals(p, args, stdout, stderr, sigs, bs...)
}

// SetProgressHook calls f with every status the run command reports, for
// the duration of a test.
func SetProgressHook(f func(*backends.RunStatus)) (restore func()) {
	old := progressHook.Swap(&f)
	return func() { progressHook.Store(old) }
}
