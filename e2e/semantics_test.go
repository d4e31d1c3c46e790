package e2e

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/local"
	"github.com/sluice-ml/sluice/backends/runstate"
	"github.com/sluice-ml/sluice/e2e/internal/pipelines"
	"github.com/sluice-ml/sluice/pipeline"
)

// TestFanOutTolerance runs a fan-out of five instances, two of which
// fail: tolerating two (Tolerant), on kubejob and Argo it ends as on the
// local backend, word for word, with the successful outputs collected;
// tolerating a quarter (TolerantOver: one, counted at run time), the
// fan-out and the run fail as on the local backend and the step after it
// is skipped.
func TestFanOutTolerance(t *testing.T) {
	need(t)
	for _, backend := range clusterBackends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
			defer cancel()
			ns, _ := namespace(t, true)
			b := clusterBackend(t, backend, ns, imageFor(t, backend, pipelines.Tolerant))
			want, werr := pipeline.Run(ctx, pipelines.Build(pipelines.Tolerant), local.New(nil), nil)
			require.NoError(t, werr)
			got, gerr := pipeline.Run(ctx, pipelines.Build(pipelines.Tolerant), b, nil)
			require.NoError(t, gerr)
			assert.Equal(t, observable(want), observable(got))
			assert.Equal(t, "60", string(got.Step("count").Output), "0 + 20 + 40")
			assert.Contains(t, got.Step("try").Message, "2 of 5 instances failed (at most 2 tolerated)")

			want, werr = pipeline.Run(ctx, pipelines.Build(pipelines.TolerantOver), local.New(nil), nil)
			require.ErrorIs(t, werr, pipeline.ErrRunFailed)
			b = clusterBackend(t, backend, ns, imageFor(t, backend, pipelines.TolerantOver))
			got, gerr = pipeline.Run(ctx, pipelines.Build(pipelines.TolerantOver), b, nil)
			require.ErrorIs(t, gerr, pipeline.ErrRunFailed)
			assert.Equal(t, observable(want), observable(got))
			assert.Contains(t, got.Step("try").Message, "2 of 5 instances failed, more than the 1 tolerated")
			assert.Equal(t, backends.PhaseSkipped, got.Step("count").Phase)
		})
	}
}

// TestCancelMidRun cancels a run on the real control plane once one step
// has failed and another runs: the running step's pod is stopped and the
// step ends Canceled, the steps after it never start (one of them also
// after the failed step: Cancel wins), the exit handler still runs and
// learns the run was canceled and what failed, and (on kubejob, whose
// pods the orchestrator deletes) no pod of the run is left running.
func TestCancelMidRun(t *testing.T) {
	need(t)
	for _, backend := range clusterBackends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
			defer cancel()
			ns, _ := namespace(t, true)
			b := clusterBackend(t, backend, ns, imageFor(t, backend, pipelines.Cancel))
			runCtx, stop := context.WithCancel(ctx)
			defer stop()
			var once sync.Once
			progress := func(st *backends.RunStatus) {
				bad, block := st.Step("bad"), st.Step("block")
				if bad != nil && block != nil && bad.Phase == backends.PhaseFailed && block.Phase == backends.PhaseRunning {
					once.Do(stop)
				}
			}
			st, err := pipeline.Run(runCtx, pipelines.Build(pipelines.Cancel), b, &pipeline.RunOptions{Progress: progress})
			require.NotNil(t, st, "%v", err)
			require.Error(t, err)
			assert.Equal(t, backends.PhaseCanceled, st.Phase)
			assert.Equal(t, runstate.MsgCanceled, st.Message)
			assert.Equal(t, backends.PhaseFailed, st.Step("bad").Phase)
			assert.Equal(t, "bad: scripted failure", st.Step("bad").Message)
			block := st.Step("block")
			assert.Equal(t, backends.PhaseCanceled, block.Phase)
			assert.Equal(t, runstate.MsgCanceled, block.Message)
			if assert.NotEmpty(t, block.Attempts) {
				last := block.Attempts[len(block.Attempts)-1]
				assert.Equal(t, backends.PhaseCanceled, last.Phase)
				assert.Equal(t, runstate.MsgCanceled, last.Message)
			}
			for _, name := range []string{"join", "later"} {
				s := st.Step(name)
				assert.Equal(t, backends.PhaseCanceled, s.Phase, name)
				assert.Equal(t, runstate.MsgNotStarted, s.Message, name)
			}
			report := st.Step("report")
			assert.Equal(t, backends.PhaseSucceeded, report.Phase)
			var info backends.RunInfo
			require.NoError(t, json.Unmarshal(report.Output, &info), "%s", report.Output)
			assert.Equal(t, backends.RunInfo{Phase: backends.PhaseCanceled, Failed: []string{"bad"}}, info)

			if backend == "argo" {
				// Argo's controller stops a running pod by exec'ing
				// "argoexec kill 15 1" in it (workflow/signal), which
				// the test kubelet, a host process with no exec
				// endpoint, cannot serve: on Argo, stopping the pod is
				// the controller's and a real kubelet's.
				return
			}
			require.Eventually(t, func() bool {
				pods, err := cl.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
				if err != nil {
					return false
				}
				for _, p := range pods.Items {
					if p.Status.Phase == corev1.PodRunning || p.Status.Phase == corev1.PodPending {
						return false
					}
				}
				return true
			}, time.Minute, 200*time.Millisecond, "a pod of the canceled run is left running")
		})
	}
}
