package argo_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"sync/atomic"
	"testing"

	"github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned/fake"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/backends/argo"
	"github.com/sluice-ml/sluice/backends/local"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

// progEnv selects the pipeline the test binary runs as a pipeline
// program (see TestProgRunBackendArgo).
const progEnv = "SLUICE_ARGO_TEST_PROG"

// progMain is the pipeline program: "prog run -backend argo" on the
// simulator. It exits.
func progMain(mode string) {
	var calls atomic.Int32
	p := pipeline.New("prog", nil)
	first := pipeline.Add(p, task.New("flaky", func(context.Context, struct{}) (num, error) {
		if calls.Add(1) == 1 {
			return num{}, errors.New("connection reset")
		}
		return num{V: 1}, nil
	}).WithRetry(task.Retry{App: 1}), struct{}{})
	last := pipeline.Add(p, inc.WithName("last"), one{X: first.Output()})
	if mode == "fail" {
		pipeline.Add(p, task.New("broken", func(context.Context, one) (num, error) { return num{}, errors.New("bad input") }), one{X: last.Output()})
	}
	cs := fake.NewSimpleClientset()
	nameOnCreate(cs)
	os.Args = []string{"prog", "run", "-backend", "argo"}
	pipeline.Main(p, local.New(nil), &simBackend{Backend: argo.New(cs, testOptions()), sim: newSim(cs, nil)})
}

// "prog run -backend argo" submits the run, streams its progress (failed
// attempts and steps on stderr), prints the summary and exits with the
// run's result: 0 when it succeeded, 1 when it failed.
func TestProgRunBackendArgo(t *testing.T) {
	if mode := os.Getenv(progEnv); mode != "" {
		progMain(mode)
		return
	}
	for _, tc := range []struct {
		mode         string
		code         int
		stdout       []string
		stderr       []string
		stderrAbsent string
	}{
		{"ok", 0, []string{"run prog-00001 of prog: Succeeded", "flaky", "last"}, []string{"flaky: attempt 1 failed (app): connection reset"}, "broken"},
		{"fail", 1, []string{"run prog-00001 of prog: Failed"}, []string{"flaky: attempt 1 failed (app)", "broken: failed", "bad input"}, ""},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestProgRunBackendArgo$")
			cmd.Env = append(os.Environ(), progEnv+"="+tc.mode)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, tc.code, code, "stdout:\n%s\nstderr:\n%s", &stdout, &stderr)
			for _, s := range tc.stdout {
				assert.Contains(t, stdout.String(), s)
			}
			for _, s := range tc.stderr {
				assert.Contains(t, stderr.String(), s)
			}
			if tc.stderrAbsent != "" {
				assert.NotContains(t, stderr.String(), tc.stderrAbsent)
			}
		})
	}
}
