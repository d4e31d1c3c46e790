package argo_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned/fake"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	k8stesting "k8s.io/client-go/testing"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/argo"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/backends/runstate"
	"github.com/sluice-ml/sluice/internal/argosim"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

var wfResource = schema.GroupResource{Group: "argoproj.io", Resource: "workflows"}

func TestSubmit(t *testing.T) {
	noKubeconfig(t)
	cs := fake.NewSimpleClientset()
	nameOnCreate(cs)
	b := argo.New(cs, &argo.Options{Pod: kubepod.Options{Image: testImage, Command: testCommand, Namespace: "ml"}})
	art, err := pipeline.Compile(t.Context(), chain(2), b, nil)
	require.NoError(t, err)

	id, err := b.Submit(t.Context(), art, &backends.SubmitOptions{})
	require.NoError(t, err)
	assert.Equal(t, "chain-00001", id)
	require.Len(t, cs.Actions(), 1)
	assert.Equal(t, "create", cs.Actions()[0].GetVerb())
	assert.Equal(t, "ml", cs.Actions()[0].GetNamespace())

	id, err = b.Submit(t.Context(), art, &backends.SubmitOptions{RunID: "chain-nightly"})
	require.NoError(t, err)
	assert.Equal(t, "chain-nightly", id)

	cs.PrependReactor("create", "workflows", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(wfResource, "", errors.New("quota exceeded"))
	})
	_, err = b.Submit(t.Context(), art, &backends.SubmitOptions{})
	assert.True(t, apierrors.IsForbidden(err), "API errors are returned raw: %v", err)

	_, err = argo.New(nil, nil).Submit(t.Context(), art, &backends.SubmitOptions{})
	require.Error(t, err, "no client, and no kubeconfig to build one from")
	assert.Contains(t, err.Error(), "KUBECONFIG")
}

func TestCancel(t *testing.T) {
	cs := fake.NewSimpleClientset(&wfv1.Workflow{ObjectMeta: metav1.ObjectMeta{Name: "run-1", Namespace: "default"}})
	b := argo.New(cs, nil)
	require.NoError(t, b.Cancel(t.Context(), "run-1"))
	wf, err := cs.ArgoprojV1alpha1().Workflows("default").Get(t.Context(), "run-1", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, wfv1.ShutdownStrategyStop, wf.Spec.Shutdown)
	assert.True(t, apierrors.IsNotFound(b.Cancel(t.Context(), "nope")))
}

// Watch survives a failed read and a dropped watch, and reports each
// change once.
func TestWatchSurvivesDroppedWatchAndAPIErrors(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	wf := compileWF(t, chain(1), testOptions())
	wf.Name, wf.Namespace = "chain-1", "default"
	cs := fake.NewSimpleClientset(wf)

	gets := 0
	cs.PrependReactor("get", "workflows", func(k8stesting.Action) (bool, runtime.Object, error) {
		gets++
		if gets == 1 {
			return true, nil, apierrors.NewServerTimeout(wfResource, "get", 1)
		}
		return false, nil, nil
	})
	var mu sync.Mutex
	var watchers []*watch.FakeWatcher
	cs.PrependWatchReactor("workflows", func(k8stesting.Action) (bool, watch.Interface, error) {
		mu.Lock()
		defer mu.Unlock()
		w := watch.NewFakeWithChanSize(4, false)
		watchers = append(watchers, w)
		running := wf.DeepCopy()
		node := wfv1.NodeStatus{ID: "n1", Name: "chain-1.inc-0", DisplayName: "inc-0", Type: wfv1.NodeTypePod, Phase: wfv1.NodeRunning}
		running.Status = wfv1.WorkflowStatus{Phase: wfv1.WorkflowRunning, Nodes: wfv1.Nodes{"n1": node}}
		switch len(watchers) {
		case 1: // one event, then the connection drops
			gvr := schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "workflows"}
			require.NoError(t, cs.Tracker().Update(gvr, running, "default"))
			w.Modify(running)
			w.Stop()
		default:
			done := running.DeepCopy()
			node.Phase = wfv1.NodeSucceeded
			node.Outputs = &wfv1.Outputs{Parameters: []wfv1.Parameter{{Name: "o", Value: wfv1.AnyStringPtr(`{"V":1}`)}}}
			done.Status = wfv1.WorkflowStatus{Phase: wfv1.WorkflowSucceeded, Nodes: wfv1.Nodes{"n1": node}}
			w.Modify(done)
		}
		return true, w, nil
	})

	var phases []backends.Phase
	st, err := argo.New(cs, nil).Watch(t.Context(), "chain-1", &backends.WatchOptions{Progress: func(s *backends.RunStatus) {
		phases = append(phases, s.Phase)
	}})
	require.NoError(t, err)
	assert.Equal(t, backends.PhaseSucceeded, st.Phase)
	assert.Equal(t, []backends.Phase{backends.PhasePending, backends.PhaseRunning, backends.PhaseSucceeded}, phases)
	assert.Len(t, watchers, 2, "watched again after the drop")
	require.Len(t, st.Steps, 1)
	assert.Equal(t, "inc-0", st.Steps[0].Name)
	assert.JSONEq(t, `{"V":1}`, string(st.Steps[0].Output))
	assert.Len(t, st.Steps[0].Attempts, 1)
	assert.Equal(t, "chain", st.Pipeline)
}

func TestWatchReturnsPermanentErrors(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	_, err := argo.New(fake.NewSimpleClientset(), nil).Watch(t.Context(), "missing", &backends.WatchOptions{})
	assert.True(t, apierrors.IsNotFound(err))
}

// A run is watched until the context ends; then Watch returns with the
// context's error.
func TestWatchStopsWithContextConcurrentSafe(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	wf := compileWF(t, chain(1), testOptions())
	wf.Name, wf.Namespace = "chain-1", "default"
	cs := fake.NewSimpleClientset(wf)
	ctx, cancel := context.WithCancel(t.Context())
	b := argo.New(cs, nil)
	done := make(chan error)
	go func() {
		_, err := b.Watch(ctx, "chain-1", &backends.WatchOptions{})
		done <- err
	}()
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
}

// The trace of the submitting program continues in every task's pod.
func TestSubmitCarriesTheTraceIntoPods(t *testing.T) {
	cs := fake.NewSimpleClientset()
	nameOnCreate(cs)
	b := argo.New(cs, &argo.Options{Pod: kubepod.Options{Image: testImage, Command: testCommand}})
	art, err := pipeline.Compile(t.Context(), chain(2), b, nil)
	require.NoError(t, err)
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		TraceFlags: trace.FlagsSampled,
	})
	ctx := trace.ContextWithSpanContext(t.Context(), sc)

	id, err := b.Submit(ctx, art, &backends.SubmitOptions{})
	require.NoError(t, err)

	wf, err := cs.ArgoprojV1alpha1().Workflows("default").Get(t.Context(), id, metav1.GetOptions{})
	require.NoError(t, err)
	var containers int
	for _, tmpl := range wf.Spec.Templates {
		if tmpl.Container == nil {
			continue
		}
		containers++
		assert.Contains(t, tmpl.Container.Env, corev1.EnvVar{Name: "TRACEPARENT", Value: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}, tmpl.Name)
	}
	assert.Positive(t, containers)

	// Without a span, nothing is added.
	id, err = b.Submit(t.Context(), art, &backends.SubmitOptions{})
	require.NoError(t, err)
	wf, err = cs.ArgoprojV1alpha1().Workflows("default").Get(t.Context(), id, metav1.GetOptions{})
	require.NoError(t, err)
	for _, tmpl := range wf.Spec.Templates {
		if tmpl.Container != nil {
			for _, e := range tmpl.Container.Env {
				assert.NotEqual(t, "TRACEPARENT", e.Name, tmpl.Name)
			}
		}
	}
}

// runOnSim runs p on the simulator (Argo's fake clientset played by sim)
// and returns the final status.
func runOnSim(t *testing.T, p *pipeline.Pipeline, opts *pipeline.RunOptions) (*backends.RunStatus, error) {
	t.Helper()
	cs := fake.NewSimpleClientset()
	nameOnCreate(cs)
	s := newSim(cs, nil)
	t.Cleanup(s.Close)
	return pipeline.Run(t.Context(), p, &simBackend{Backend: argo.New(cs, testOptions()), sim: s}, opts)
}

// A task that returns an error wrapping task.ErrInfrastructure exits 3 in
// task mode: Argo marks the node Failed, yet the retry expression counts
// it against the Infra budget and Watch reports the attempt as infra.
func TestExitStatus3IsAnInfrastructureFailure(t *testing.T) {
	var calls sync.Map
	flaky := func(name string, failures int) task.Task[struct{}, num] {
		return task.New(name, func(context.Context, struct{}) (num, error) {
			n, _ := calls.LoadOrStore(name, new(atomic.Int32))
			if int(n.(*atomic.Int32).Add(1)) <= failures {
				return num{}, fmt.Errorf("gpu fell off the bus: %w %w", task.ErrInfrastructure, argosim.ErrOwnInfra)
			}
			return num{V: 1}, nil
		})
	}
	p := pipeline.New("exit3", nil)
	pipeline.Add(p, flaky("infra-budget", 2).WithRetry(task.Retry{Infra: 2}), struct{}{})
	pipeline.Add(p, flaky("app-budget", 1).WithRetry(task.Retry{App: 3}), struct{}{})
	st, err := runOnSim(t, p, nil)
	require.ErrorIs(t, err, pipeline.ErrRunFailed)

	s := st.Step("infra-budget")
	require.NotNil(t, s)
	assert.Equal(t, backends.PhaseSucceeded, s.Phase, "retried on the Infra budget although App is 0")
	require.Len(t, s.Attempts, 3)
	for _, a := range s.Attempts[:2] {
		assert.Equal(t, backends.ReasonInfra, a.Reason)
		// Argo's "main: Error (exit code 3): " before the termination
		// message is left out: the message is the task's error.
		assert.Equal(t, "gpu fell off the bus: infrastructure failure the task's own infrastructure failure", a.Message)
	}

	s = st.Step("app-budget")
	require.NotNil(t, s)
	assert.Equal(t, backends.PhaseFailed, s.Phase, "an infrastructure failure does not use the App budget")
	require.Len(t, s.Attempts, 1)
	assert.Equal(t, backends.ReasonInfra, s.Attempts[0].Reason)
}

// A task stopped by SIGTERM (its pod deleted or evicted while Argo marks
// the node Failed, not Error) exits 143: an infrastructure failure,
// retried on the Infra budget with no App budget. A pod that ran out of
// time is stopped by SIGTERM too, but Argo's message says so: that stays
// an application failure, not retried without App budget.
func TestStoppedTaskIsAnInfrastructureFailure(t *testing.T) {
	var stopped, slow atomic.Int32
	p := pipeline.New("stopped", nil)
	pipeline.Add(p, task.New("evicted", func(ctx context.Context, _ struct{}) (num, error) {
		if stopped.Add(1) == 1 {
			return num{}, fmt.Errorf("training interrupted: %w", argosim.ErrStopped)
		}
		return num{V: 1}, nil
	}).WithRetry(task.Retry{Infra: 1}), struct{}{})
	pipeline.Add(p, task.New("slow", func(ctx context.Context, _ struct{}) (num, error) {
		slow.Add(1)
		<-ctx.Done()
		return num{}, ctx.Err()
	}).WithTimeout(time.Second).WithRetry(task.Retry{Infra: 1}), struct{}{})
	st, err := runOnSim(t, p, nil)
	require.ErrorIs(t, err, pipeline.ErrRunFailed)

	s := st.Step("evicted")
	require.NotNil(t, s)
	assert.Equal(t, backends.PhaseSucceeded, s.Phase)
	require.Len(t, s.Attempts, 2)
	assert.Equal(t, backends.ReasonInfra, s.Attempts[0].Reason)
	assert.Equal(t, "stopped (terminated signal received): training interrupted: pod deleted", s.Attempts[0].Message)

	s = st.Step("slow")
	require.NotNil(t, s)
	assert.Equal(t, backends.PhaseFailed, s.Phase, "a timeout is the task's failure")
	require.Len(t, s.Attempts, 1)
	assert.Equal(t, backends.ReasonApp, s.Attempts[0].Reason)
	assert.Equal(t, "timed out after 1s", s.Attempts[0].Message, "the step's own timeout, as on the local backend")
	assert.EqualValues(t, 1, slow.Load())
}

// Watch reports a Go task's attempt with the task's error, which the task
// mode writes to the termination message and Argo appends to its own
// words; Argo's message stays when there is no termination message, and
// for container tasks, whose termination message is not the task mode's.
func TestWatchReportsTheTasksError(t *testing.T) {
	p := pipeline.New("msgs", nil)
	pipeline.Add(p, task.New("bad", func(context.Context, struct{}) (num, error) {
		return num{}, errors.New("bad attempt 1: scripted failure")
	}), struct{}{})
	pipeline.Add(p, task.Container[struct{}, struct{}]("ctr", "registry.example/ctr:1").WithCommand("/ctr"), struct{}{})
	pipeline.Add(p, task.New("late", func(context.Context, struct{}) (num, error) {
		return num{}, nil
	}).WithTimeout(150*time.Millisecond), struct{}{})
	art, err := pipeline.Compile(t.Context(), p, argo.New(nil, testOptions()), nil)
	require.NoError(t, err)
	var wf *wfv1.Workflow
	require.True(t, art.As(&wf))
	wf = wf.DeepCopy()
	wf.Name = "msgs-1"
	wf.Status.Phase = wfv1.WorkflowFailed
	node := func(task, msg string) wfv1.NodeStatus {
		return wfv1.NodeStatus{ID: "msgs-1-" + task, Name: "msgs-1." + task, DisplayName: task, Type: wfv1.NodeTypePod,
			Phase: wfv1.NodeFailed, Message: msg}
	}
	for _, tc := range []struct{ step, msg, want string }{
		{"bad", "main: Error (exit code 1): bad attempt 1: scripted failure", "bad attempt 1: scripted failure"},
		{"bad", "main: Error (exit code 1): line one\nline two: with colons", "line one\nline two: with colons"},
		{"bad", "main: Error (exit code 1)", "main: Error (exit code 1)"},
		{"bad", "main: Error (exit code 1): ", "main: Error (exit code 1): "},
		{"bad", "init: Error (exit code 1): could not stage artifacts", "init: Error (exit code 1): could not stage artifacts"},
		{"bad", "Pod was active on the node longer than the specified deadline", "timed out: Pod was active on the node longer than the specified deadline"}, // no timeout declared
		{"late", "Pod was active on the node longer than the specified deadline", "timed out after 150ms"},
		{"ctr", "main: Error (exit code 1): Traceback (most recent call last)", "main: Error (exit code 1): Traceback (most recent call last)"},
	} {
		wf.Status.Nodes = wfv1.Nodes{}
		n := node(tc.step, tc.msg)
		wf.Status.Nodes[n.ID] = n
		s := argo.Status(wf).Step(tc.step)
		require.NotNil(t, s)
		require.Len(t, s.Attempts, 1)
		assert.Equal(t, tc.want, s.Attempts[0].Message, tc.msg)
		assert.Equal(t, tc.want, s.Message, "the step's message is its attempt's: %s", tc.msg)
	}
}

// A canceled run ends Canceled: the exit handler's RunInfo says Canceled
// (without the stopped steps among the failed ones, as on the local
// backend), Watch reports the run and its stopped steps Canceled, and a
// step that failed before the cancel still counts as failed.
func TestCancelReportsCanceled(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	block := task.New("block", func(ctx context.Context, _ struct{}) (num, error) {
		<-ctx.Done()
		return num{}, ctx.Err()
	})
	type notifyIn struct {
		Run pipeline.Ref[pipeline.RunInfo]
	}
	got := make(chan pipeline.RunInfo, 1)
	p := pipeline.New("cancel", nil)
	b := pipeline.Add(p, block, struct{}{})
	pipeline.Add(p, inc.WithName("after"), one{X: b.Output()})
	pipeline.Add(p, task.New("broken", func(context.Context, struct{}) (num, error) { return num{}, errors.New("bad input") }), struct{}{})
	pipeline.OnExit(p, task.New("notify", func(_ context.Context, in notifyIn) (num, error) {
		got <- in.Run.Get()
		return num{}, nil
	}), notifyIn{Run: p.Status()})

	// Cancel once "broken" has failed, while "block" runs.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	progress := func(st *backends.RunStatus) {
		if st.Step("broken").Phase == backends.PhaseFailed && st.Step("block").Phase == backends.PhaseRunning {
			cancel()
		}
	}
	cs := fake.NewSimpleClientset()
	nameOnCreate(cs)
	s := newSim(cs, nil)
	defer s.Close()
	st, err := pipeline.Run(ctx, p, &simBackend{Backend: argo.New(cs, testOptions()), sim: s}, &pipeline.RunOptions{Progress: progress})
	require.ErrorIs(t, err, pipeline.ErrRunFailed)

	assert.Equal(t, backends.PhaseCanceled, st.Phase)
	phases := map[string]backends.Phase{}
	for _, s := range st.Steps {
		phases[s.Name] = s.Phase
	}
	assert.Equal(t, map[string]backends.Phase{"block": "Canceled", "after": "Canceled", "broken": "Failed", "notify": "Succeeded"}, phases)
	assert.Equal(t, pipeline.RunInfo{Phase: backends.PhaseCanceled, Failed: []string{"broken"}}, <-got)
}

// A step whose pod waits to be scheduled shows the scheduler's message
// while it waits, worded as on kubejob (Argo has no pending timeout; see
// "# Retries").
func TestStatusShowsWhyAStepWaits(t *testing.T) {
	p := pipeline.New("wait", nil)
	pipeline.Add(p, inc.WithName("train").WithRetry(task.Retry{Infra: 2}), one{})
	wf := compileWF(t, p, testOptions())
	wf.Name = "wait-1"
	const why = "Unschedulable: 0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."
	retry := wfv1.NodeStatus{ID: "r", Name: "wait-1.train", DisplayName: "train", Type: wfv1.NodeTypeRetry, Phase: wfv1.NodeRunning, Children: []string{"p0"}}
	pod := wfv1.NodeStatus{ID: "p0", Name: "wait-1.train(0)", DisplayName: "train(0)", Type: wfv1.NodeTypePod, Phase: wfv1.NodePending, Message: why}
	wf.Status = wfv1.WorkflowStatus{Phase: wfv1.WorkflowRunning, Nodes: wfv1.Nodes{"r": retry, "p0": pod}}
	st := argo.Status(wf)
	require.Len(t, st.Steps, 1)
	assert.Equal(t, backends.PhaseRunning, st.Steps[0].Phase)
	assert.Equal(t, runstate.Unschedulable("0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."), st.Steps[0].Message,
		"the scheduler's message, in the words every backend uses")

	pod.Phase, pod.Message = wfv1.NodeRunning, ""
	wf.Status.Nodes["p0"] = pod
	assert.Empty(t, argo.Status(wf).Steps[0].Message, "running: no message")
}
