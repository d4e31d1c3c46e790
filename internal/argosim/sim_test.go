package argosim_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned/fake"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/argo"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/internal/argosim"
	"github.com/sluice-ml/sluice/internal/simtime"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// env compiles p, creates its Workflow "wf-1" on a fake clientset and
// starts a simulator on a clock at t0 that only the test moves.
func env(t *testing.T, p *pipeline.Pipeline) (*fake.Clientset, *argosim.Sim) {
	t.Helper()
	opt := goleak.IgnoreCurrent()
	art, err := pipeline.Compile(t.Context(), p, argo.New(nil, &argo.Options{Pod: kubepod.Options{Image: "img", Command: []string{"/prog"}}}), nil)
	require.NoError(t, err)
	var wf *wfv1.Workflow
	require.True(t, art.As(&wf))
	var plan *backends.Plan
	require.True(t, art.As(&plan))
	wf = wf.DeepCopy()
	wf.Name, wf.Namespace = "wf-1", "default"
	cs := fake.NewSimpleClientset(wf)
	s := argosim.New(cs, simtime.New(t0), nil)
	t.Cleanup(func() {
		s.Close()
		goleak.VerifyNone(t, opt)
	})
	s.Start(wf.Name, plan)
	return cs, s
}

func get(t *testing.T, cs *fake.Clientset) *wfv1.Workflow {
	t.Helper()
	wf, err := cs.ArgoprojV1alpha1().Workflows("default").Get(t.Context(), "wf-1", metav1.GetOptions{})
	require.NoError(t, err)
	return wf
}

// node returns the node of display name name, or nil.
func node(wf *wfv1.Workflow, name string) *wfv1.NodeStatus {
	for _, n := range wf.Status.Nodes {
		if n.DisplayName == name {
			return &n
		}
	}
	return nil
}

// finished waits for the Workflow's end; the deadline only bounds a
// broken test.
func finished(t *testing.T, cs *fake.Clientset) *wfv1.Workflow {
	t.Helper()
	var wf *wfv1.Workflow
	require.Eventually(t, func() bool { wf = get(t, cs); return wf.Status.Phase.Completed() }, time.Minute, 2*time.Millisecond)
	return wf
}

func waitChan(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(time.Minute):
		t.Fatal("timed out")
	}
}

type out struct{ V int }

// A pod's activeDeadlineSeconds is the task's context deadline on the
// simulator's clock; the node fails with the kubelet's message once the
// clock passes it, not before.
func TestDeadlineOnTheClock(t *testing.T) {
	started := make(chan struct{})
	var deadline time.Time
	p := pipeline.New("slow", nil)
	pipeline.Add(p, task.New("slow", func(ctx context.Context, _ struct{}) (out, error) {
		deadline, _ = ctx.Deadline()
		close(started)
		<-ctx.Done()
		return out{}, ctx.Err()
	}).WithTimeout(time.Second), struct{}{})
	cs, s := env(t, p)
	waitChan(t, started)
	require.Equal(t, t0.Add(time.Second), deadline)
	s.Clock().Step(time.Second - time.Nanosecond)
	require.Equal(t, wfv1.NodeRunning, node(get(t, cs), "slow").Phase, "not before the deadline")
	s.Clock().Step(time.Nanosecond)
	wf := finished(t, cs)
	require.Equal(t, wfv1.WorkflowFailed, wf.Status.Phase)
	n := node(wf, "slow")
	require.Equal(t, wfv1.NodeFailed, n.Phase)
	require.Equal(t, "Pod was active on the node longer than the specified deadline", n.Message)
	require.Equal(t, metav1.NewTime(t0), wf.Status.StartedAt, "timestamps are on the clock")
}

// A retry waits out its backoff on the simulator's clock.
func TestBackoffOnTheClock(t *testing.T) {
	var calls atomic.Int32
	p := pipeline.New("flaky", nil)
	pipeline.Add(p, task.New("flaky", func(context.Context, struct{}) (out, error) {
		if calls.Add(1) == 1 {
			return out{}, errors.New("scripted failure")
		}
		return out{V: 1}, nil
	}).WithRetry(task.Retry{App: 1, Backoff: task.Backoff{Initial: time.Minute}}), struct{}{})
	cs, s := env(t, p)
	require.Eventually(t, s.Clock().HasWaiters, time.Minute, 2*time.Millisecond, "waiting out the backoff")
	s.Clock().Step(time.Minute - time.Second)
	require.EqualValues(t, 1, calls.Load(), "no second attempt before the backoff has passed")
	s.Clock().Step(time.Second)
	wf := finished(t, cs)
	require.Equal(t, wfv1.WorkflowSucceeded, wf.Status.Phase)
	require.EqualValues(t, 2, calls.Load())
	require.NotNil(t, node(wf, "flaky(1)"))
}

// With skipping on, the clock skips to the deadline of a task that waits
// for its context, and to the end of a backoff.
func TestSkip(t *testing.T) {
	p := pipeline.New("skip", nil)
	pipeline.Add(p, task.New("hang", func(ctx context.Context, _ struct{}) (out, error) {
		<-ctx.Done()
		return out{}, ctx.Err()
	}).WithTimeout(time.Hour).WithRetry(task.Retry{App: 1, Backoff: task.Backoff{Initial: time.Minute}}), struct{}{})
	cs, s := env(t, p)
	s.Clock().SetSkip(true)
	wf := finished(t, cs)
	require.Equal(t, wfv1.NodeFailed, node(wf, "hang").Phase)
	require.Equal(t, t0.Add(2*time.Hour+time.Minute), s.Clock().Now(), "two attempts of an hour and a minute's backoff")
}

// spec.shutdown stops the running steps; the simulator notices it by a
// watch.
func TestShutdown(t *testing.T) {
	started := make(chan struct{})
	p := pipeline.New("stop", nil)
	pipeline.Add(p, task.New("block", func(ctx context.Context, _ struct{}) (out, error) {
		close(started)
		<-ctx.Done()
		return out{}, ctx.Err()
	}), struct{}{})
	cs, _ := env(t, p)
	waitChan(t, started)
	_, err := cs.ArgoprojV1alpha1().Workflows("default").Patch(t.Context(), "wf-1", types.MergePatchType,
		[]byte(`{"spec":{"shutdown":"Stop"}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	wf := finished(t, cs)
	require.Equal(t, wfv1.WorkflowFailed, wf.Status.Phase)
	require.Equal(t, "workflow shutdown with strategy:  Stop", node(wf, "block").Message)
}
