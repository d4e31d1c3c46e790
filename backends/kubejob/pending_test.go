package kubejob_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/kubejob"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/backends/runstate"
	"github.com/sluice-ml/sluice/internal/kubesim"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/resources"
	"github.com/sluice-ml/sluice/task"
)

// noNode is what the scheduler says of a pod whose node selector no node
// matches.
const noNode = "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."

// gkeSpot is a GKE pool with spot capacity and an on-demand fall-back.
var gkeSpot = resources.NodePool{
	Name:     "spot",
	Provider: resources.ProviderGKE,
	Labels:   map[string]string{"cloud.google.com/gke-nodepool": "spot"},
	Spot:     true,
}

func spotTask(r task.Retry) task.Task[struct{}, int] {
	return task.New("train", func(context.Context, struct{}) (int, error) { return 7, nil }).
		WithRetry(r).WithResources(resources.Profile{NodePool: gkeSpot.Name, Preemptible: true})
}

// A pod the scheduler cannot place shows the scheduler's message; once
// it has waited for the pending timeout (on the orchestrator's clock), its
// Job is deleted and the attempt counts as an infrastructure failure, so
// the on-demand fall-back runs the task where there is capacity.
func TestPendingTimeoutFallsBackToOnDemand(t *testing.T) {
	noLeaks(t)
	h := newHarness(t)
	defer h.Close()
	clk := h.clk // the cluster's clock times the orchestrator too
	h.cl.SetScheduler(func(pod *corev1.Pod) string {
		if pod.Labels[kubesim.LabelOnDemand] == "true" {
			return ""
		}
		return noNode // no spot capacity
	})
	p := pipeline.New("spot", &pipeline.Options{NodePools: []resources.NodePool{gkeSpot}})
	pipeline.Add(p, spotTask(task.Retry{Infra: 1, OnDemandFallback: true, PendingTimeout: 10 * time.Minute}), struct{}{})
	b := h.backend(&kubejob.Options{Pod: kubepod.Options{Image: testImage}, RunID: "spot-1"})
	kubejob.SetClock(b.Backend, clk)
	r := startRun(t.Context(), p, b)

	waitFor(t, func() bool {
		s := r.step("train")
		return s.Phase == backends.PhasePending && s.Message == "unschedulable: "+noNode && clk.HasWaiters()
	}, "the step waits, unschedulable, with a wake-up at its pending timeout")
	clk.Step(10*time.Minute - time.Second)
	assert.NotNil(t, h.cl.Job("spot-1-train"), "not timed out yet")
	assert.Nil(t, h.cl.Job("spot-1-train-r1"))
	clk.Step(time.Second)

	st, err := r.wait(t)
	require.NoError(t, err)
	s := step(t, st, "train")
	assert.Equal(t, backends.PhaseSucceeded, s.Phase)
	require.Len(t, s.Attempts, 2)
	assert.Equal(t, backends.Attempt{Number: 1, Phase: backends.PhaseFailed, Reason: backends.ReasonInfra,
		Message: "unschedulable for 10m0s: " + noNode}, withoutTimes(s.Attempts[0]))
	assert.Equal(t, backends.Attempt{Number: 2, Phase: backends.PhaseSucceeded, OnDemand: true}, withoutTimes(s.Attempts[1]))
	assert.Nil(t, h.cl.Job("spot-1-train"), "the unschedulable Job is deleted")
	require.NotNil(t, h.cl.Job("spot-1-train-r1"))
	assert.Equal(t, "true", h.cl.Job("spot-1-train-r1").Labels[kubesim.LabelOnDemand])
	rec, err := h.cs.CoreV1().ConfigMaps("default").Get(t.Context(), "sluice-run-spot-1", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Contains(t, rec.Data, "unschedulable.spot-1-train", "the record keeps the deleted Job's attempts")
	assert.Len(t, rec.OwnerReferences, 1, "retired to the Job that is left")
}

// Without an Infra budget, the pending timeout fails the step with the
// scheduler's message.
func TestPendingTimeoutWithoutBudgetFails(t *testing.T) {
	noLeaks(t)
	h := newHarness(t)
	defer h.Close()
	clk := h.clk // the cluster's clock times the orchestrator too
	h.cl.SetScheduler(func(*corev1.Pod) string { return noNode })
	p := pipeline.New("stuck", &pipeline.Options{NodePools: []resources.NodePool{gkeSpot}})
	pipeline.Add(p, spotTask(task.Retry{PendingTimeout: time.Minute}), struct{}{})
	b := h.backend(&kubejob.Options{Pod: kubepod.Options{Image: testImage}, RunID: "stuck-1"})
	kubejob.SetClock(b.Backend, clk)
	r := startRun(t.Context(), p, b)
	waitFor(t, func() bool { return r.step("train").Phase == backends.PhasePending && clk.HasWaiters() }, "unschedulable")
	clk.Step(time.Minute)

	st, err := r.wait(t)
	require.ErrorIs(t, err, pipeline.ErrRunFailed)
	s := step(t, st, "train")
	assert.Equal(t, backends.PhaseFailed, s.Phase)
	assert.Equal(t, "unschedulable for 1m0s: "+noNode+" (the Infra budget of 0 retries is used up)", s.Message)
	require.Len(t, s.Attempts, 1)
	assert.Equal(t, backends.ReasonInfra, s.Attempts[0].Reason)
	assert.Nil(t, h.cl.Job("stuck-1-train"))
	_, err = h.cs.CoreV1().ConfigMaps("default").Get(t.Context(), "sluice-run-stuck-1", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "a run whose Jobs are all gone leaves no record: %v", err)
}

// Without a pending timeout the step waits as long as it takes, showing
// why: the scheduler's message, or a container's waiting reason once the
// pod is placed. Cancel stops it.
func TestUnschedulableIsShownWhileItWaits(t *testing.T) {
	noLeaks(t)
	h := newHarness(t)
	defer h.Close()
	clk := h.clk // the cluster's clock times the orchestrator too
	h.cl.SetScheduler(func(*corev1.Pod) string { return noNode })
	p := pipeline.New("wait", &pipeline.Options{NodePools: []resources.NodePool{gkeSpot}})
	pipeline.Add(p, spotTask(task.Retry{Infra: 2}), struct{}{})
	b := h.backend(&kubejob.Options{Pod: kubepod.Options{Image: testImage}, RunID: "wait-1"})
	kubejob.SetClock(b.Backend, clk)
	ctx, cancel := context.WithCancel(t.Context())
	r := startRun(ctx, p, b)
	waitFor(t, func() bool {
		s := r.step("train")
		return s.Phase == backends.PhasePending && s.Message == "unschedulable: "+noNode
	}, "the scheduler's message")
	assert.False(t, clk.HasWaiters(), "no timeout to wake for")

	// Placed, but its image cannot be pulled.
	pods := h.cl.PodsOf("wait-1-train")
	require.Len(t, pods, 1)
	h.cl.ModifyPod(pods[0].Name, func(pod *corev1.Pod) {
		pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}}
		pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: kubejob.ContainerName, State: corev1.ContainerState{
			Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull", Message: `failed to pull image "registry.example/sluice-suite:v1": not found`},
		}}}
	})
	waitFor(t, func() bool {
		s := r.step("train")
		return s.Phase == backends.PhasePending && s.Message == `waiting: ErrImagePull: failed to pull image "registry.example/sluice-suite:v1": not found`
	}, "the container's waiting reason")

	cancel()
	st, err := r.wait(t)
	require.ErrorIs(t, err, pipeline.ErrRunFailed)
	assert.Equal(t, backends.PhaseCanceled, st.Phase)
	s := step(t, st, "train")
	assert.Equal(t, backends.PhaseCanceled, s.Phase)
	assert.Equal(t, `canceled while waiting: ErrImagePull: failed to pull image "registry.example/sluice-suite:v1": not found`, s.Message)
	assert.Nil(t, h.cl.Job("wait-1-train"), "deleted by the cancel")
}

// A run canceled while a step's pod is unschedulable says so, with the
// scheduler's words, on the step, its attempt and the step's line of
// the summary.
func TestCanceledWhileUnschedulableSaysWhy(t *testing.T) {
	noLeaks(t)
	h := newHarness(t)
	defer h.Close()
	h.cl.SetScheduler(func(*corev1.Pod) string { return noNode })
	p := pipeline.New("wait", &pipeline.Options{NodePools: []resources.NodePool{gkeSpot}})
	pipeline.Add(p, spotTask(task.Retry{Infra: 2}), struct{}{})
	b := h.backend(&kubejob.Options{Pod: kubepod.Options{Image: testImage}, RunID: "wait-2"})
	kubejob.SetClock(b.Backend, h.clk)
	ctx, cancel := context.WithCancel(t.Context())
	r := startRun(ctx, p, b)
	waitFor(t, func() bool { return r.step("train").Message == runstate.Unschedulable(noNode) }, "the scheduler's message")
	cancel()
	st, err := r.wait(t)
	require.ErrorIs(t, err, pipeline.ErrRunFailed)
	s := step(t, st, "train")
	want := "canceled while unschedulable: " + noNode
	assert.Equal(t, backends.PhaseCanceled, s.Phase)
	assert.Equal(t, want, s.Message)
	require.Len(t, s.Attempts, 1)
	assert.Equal(t, backends.Attempt{Number: 1, Phase: backends.PhaseCanceled, Message: want}, withoutTimes(s.Attempts[0]))
	var sum strings.Builder
	pipeline.WriteSummary(&sum, st)
	assert.Regexp(t, `(?m)^  train +Canceled +attempts=1( +\S+)? +`+regexp.QuoteMeta(want)+`$`, sum.String())

	// A watch that reads the run afterwards, from its record, says the
	// same.
	again, err := b.Watch(t.Context(), "wait-2", nil)
	require.NoError(t, err)
	assert.Equal(t, want, step(t, again, "train").Message)
}

// A step whose pending timeout used up its Infra budget ends Failed with
// the scheduler's words on its line of the summary.
func TestPendingTimeoutSummary(t *testing.T) {
	noLeaks(t)
	h := newHarness(t)
	defer h.Close()
	clk := h.clk
	h.cl.SetScheduler(func(*corev1.Pod) string { return noNode })
	p := pipeline.New("stuck", &pipeline.Options{NodePools: []resources.NodePool{gkeSpot}})
	pipeline.Add(p, spotTask(task.Retry{Infra: 1, PendingTimeout: time.Minute, Backoff: task.Backoff{Initial: time.Second}}), struct{}{})
	b := h.backend(&kubejob.Options{Pod: kubepod.Options{Image: testImage}, RunID: "stuck-2"})
	kubejob.SetClock(b.Backend, clk)
	r := startRun(t.Context(), p, b)
	waitFor(t, func() bool { return r.step("train").Phase == backends.PhasePending && clk.HasWaiters() }, "unschedulable")
	clk.Step(time.Minute)
	waitFor(t, func() bool {
		if clk.HasWaiters() && h.cl.Job("stuck-2-train-r1") == nil {
			clk.Step(time.Second) // the backoff before the retry
		}
		return h.cl.Job("stuck-2-train-r1") != nil && r.step("train").Phase == backends.PhasePending && clk.HasWaiters()
	}, "the retry unschedulable")
	clk.Step(time.Minute)
	st, err := r.wait(t)
	require.ErrorIs(t, err, pipeline.ErrRunFailed)
	var sum strings.Builder
	pipeline.WriteSummary(&sum, st)
	assert.Regexp(t, `(?m)^  train +Failed +attempts=2 · retries: infra 1, app 0( +\S+)? +`+
		regexp.QuoteMeta("unschedulable for 1m0s: "+noNode+" (the Infra budget of 1 retries is used up)")+`$`, sum.String())
}

// A pending timeout is kept in the run's record: an orchestrator that
// resumes the run after it counts the deleted Job's attempt and does not
// create that Job again.
func TestPendingTimeoutSurvivesResume(t *testing.T) {
	noLeaks(t)
	h := newHarness(t)
	defer h.Close()
	creates := jobCreates(t, h)
	clk := h.clk // the cluster's clock times the orchestrator too
	h.cl.SetScheduler(func(*corev1.Pod) string { return noNode })
	p := pipeline.New("again", &pipeline.Options{NodePools: []resources.NodePool{gkeSpot}})
	pipeline.Add(p, spotTask(task.Retry{Infra: 1, PendingTimeout: time.Minute}), struct{}{})
	opts := &kubejob.Options{Pod: kubepod.Options{Image: testImage}, RunID: "again-1"}
	b1 := h.backend(opts)
	kubejob.SetClock(b1.Backend, clk)
	r := startRun(t.Context(), p, b1)
	waitFor(t, func() bool { return r.step("train").Phase == backends.PhasePending && clk.HasWaiters() }, "unschedulable")
	clk.Step(time.Minute)
	waitFor(t, func() bool {
		s := r.step("train")
		return s.Phase == backends.PhasePending && len(s.Attempts) == 2 && h.cl.Job("again-1-train") == nil
	}, "the retry's pod is unschedulable too")
	require.NoError(t, b1.Close())
	_, err := r.wait(t)
	require.Error(t, err, "the orchestrator stopped")

	h.cl.SetScheduler(nil) // capacity came
	b2 := h.backend(opts)
	kubejob.SetClock(b2.Backend, clk)
	st, err := startRun(t.Context(), p, b2).wait(t)
	require.NoError(t, err)
	s := step(t, st, "train")
	require.Len(t, s.Attempts, 2)
	assert.Equal(t, "unschedulable for 1m0s: "+noNode, s.Attempts[0].Message)
	assert.Equal(t, backends.PhaseSucceeded, s.Attempts[1].Phase)
	assert.Equal(t, map[string]int{"again-1-train": 1, "again-1-train-r1": 1}, creates())
}
