package kubejob_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	clienttesting "k8s.io/client-go/testing"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/kubejob"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

type evalIn struct {
	Model string
	Split float64
}

type evalOut struct {
	Accuracy float64
}

// A container task's one output file is read as its termination message;
// its command line is filled from the resolved input.
func TestContainerTaskOutput(t *testing.T) {
	h := newHarness(t)
	defer h.Close()
	var seen []string
	h.cl.RunContainers(func(_ context.Context, pod *corev1.Pod) (string, error) {
		ctr := pod.Spec.Containers[0]
		seen = append(slices.Clone(ctr.Command), ctr.Args...)
		assert.Equal(t, task.OutputDir+"/Accuracy", ctr.TerminationMessagePath, "the output file is the termination message")
		return "0.93\n", nil
	})
	p := pipeline.New("eval", nil)
	model := pipeline.Add(p, task.New("train", func(context.Context, struct{}) (string, error) { return "s3://models/7", nil }), struct{}{})
	ev := task.Container[struct {
		Model pipeline.Ref[string]
		Split float64
	}, evalOut]("evaluate", "registry.example/eval:v2").WithCommand("eval").WithArgs("--model={{.Model}}", "--split={{.Split}}")
	pipeline.Add(p, ev, struct {
		Model pipeline.Ref[string]
		Split float64
	}{model.Output(), 0.2})
	st, err := pipeline.Run(t.Context(), p, h.backend(testOptions()), nil)
	require.NoError(t, err)
	assert.JSONEq(t, `{"Accuracy":0.93}`, string(step(t, st, "evaluate").Output))
	assert.Equal(t, []string{"eval", "--model=s3://models/7", "--split=0.2"}, seen)
}

// A container task with more than one output field cannot return them
// through one termination message: Compile says so and how to fix it.
func TestContainerTaskWithTwoOutputs(t *testing.T) {
	p := pipeline.New("eval", nil)
	pipeline.Add(p, task.Container[evalIn, struct{ Accuracy, Loss float64 }]("evaluate", "registry.example/eval:v2"), evalIn{Model: "m"})
	_, err := pipeline.Compile(t.Context(), p, kubejob.New(nil, testOptions()), nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "output type with one field")
}

// A Go task's output larger than a termination message holds fails the
// step with what to do instead.
func TestOutputTooLarge(t *testing.T) {
	h := newHarness(t)
	defer h.Close()
	p := pipeline.New("big", nil)
	pipeline.Add(p, task.New("dump", func(context.Context, struct{}) (string, error) {
		return strings.Repeat("x", 5000), nil
	}), struct{}{})
	st, err := pipeline.Run(t.Context(), p, h.backend(testOptions()), nil)
	require.ErrorIs(t, err, pipeline.ErrRunFailed)
	s := step(t, st, "dump")
	assert.Equal(t, backends.PhaseFailed, s.Phase)
	assert.Contains(t, s.Message, "not JSON: it is 4096 bytes long", "the kubelet kept the last 4096 bytes")
	assert.Contains(t, s.Message, "lost its start")
	assert.Contains(t, s.Message, "URI to object storage")
}

// An empty termination message is a task that wrote no output, not
// output that is "not JSON". A container task whose one output is a
// string may write nothing (the empty string); one without outputs too.
func TestEmptyTerminationMessage(t *testing.T) {
	h := newHarness(t)
	defer h.Close()
	h.cl.RunContainers(func(context.Context, *corev1.Pod) (string, error) { return "", nil })

	// A Go task whose output goes elsewhere than the termination message
	// (as when the image runs another program) leaves it empty.
	p := pipeline.New("silent", nil)
	pipeline.Add(p, task.New("quiet", func(context.Context, struct{}) (int, error) { return 1, nil }), struct{}{})
	st, err := pipeline.Run(t.Context(), p, h.backend(testOptions()), &pipeline.RunOptions{BeforeEmit: func(as func(any) bool) error {
		var jobs []*batchv1.Job
		if !as(&jobs) {
			return errors.New("no Jobs")
		}
		args := jobs[0].Spec.Template.Spec.Containers[0].Args
		args[slices.Index(args, "-output-file")+1] = "/tmp/out.json"
		return nil
	}})
	require.ErrorIs(t, err, pipeline.ErrRunFailed)
	s := step(t, st, "quiet")
	assert.Equal(t, backends.PhaseFailed, s.Phase)
	assert.Contains(t, s.Message, "the container wrote no output")
	assert.NotContains(t, s.Message, "not JSON")

	p = pipeline.New("ctrs", nil)
	pipeline.Add(p, task.Container[struct{}, evalOut]("number", "registry.example/eval:v2").WithCommand("eval"), struct{}{})
	pipeline.Add(p, task.Container[struct{}, struct{ Note string }]("text", "registry.example/eval:v2").WithCommand("eval"), struct{}{})
	pipeline.Add(p, task.Container[struct{}, struct{}]("nothing", "registry.example/eval:v2").WithCommand("eval"), struct{}{})
	st, err = pipeline.Run(t.Context(), p, h.backend(testOptions()), nil)
	require.ErrorIs(t, err, pipeline.ErrRunFailed)
	s = step(t, st, "number")
	assert.Equal(t, backends.PhaseFailed, s.Phase)
	assert.Contains(t, s.Message, `the container wrote no output "Accuracy"`)
	assert.Equal(t, backends.PhaseSucceeded, step(t, st, "text").Phase)
	assert.JSONEq(t, `{"Note":""}`, string(step(t, st, "text").Output))
	assert.Equal(t, backends.PhaseSucceeded, step(t, st, "nothing").Phase)
}

// Missing permissions are an error of Submit, not a run that never starts.
func TestSubmitForbidden(t *testing.T) {
	h := newHarness(t)
	defer h.Close()
	h.cs.PrependReactor("list", "pods", func(a clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", errors.New(`User "dev" cannot list resource "pods"`))
	})
	_, err := pipeline.Run(t.Context(), paramPipeline(), h.backend(testOptions()), nil)
	require.Error(t, err)
	assert.True(t, apierrors.IsForbidden(err), "%v", err)
	assert.Contains(t, err.Error(), "needs the Role")
}

// Without RBAC, the first API call (creating the run's record) is refused:
// the error names the Role (and ServiceAccount) that Compile emits and
// says how to use them.
func TestSubmitWithoutRBACSaysWhatIsNeeded(t *testing.T) {
	h := newHarness(t)
	defer h.Close()
	h.cs.PrependReactor("create", "configmaps", func(a clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "configmaps"}, "",
			errors.New(`User "dev" cannot create resource "configmaps" in API group "" in the namespace "default"`))
	})
	_, err := pipeline.Run(t.Context(), paramPipeline(), h.backend(testOptions()), nil)
	require.Error(t, err)
	assert.True(t, apierrors.IsForbidden(err), "%v", err)
	for _, want := range []string{"configmaps is forbidden", `the orchestrator needs the Role "tuned-orchestrator"`,
		`"prog compile -backend kubejob"`, `in namespace "default"`, "ServiceAccount and RoleBinding of the same name", "Options.InCluster"} {
		assert.Contains(t, err.Error(), want)
	}

	// In the cluster, the first call creates the orchestrator's RBAC.
	h.cs.PrependReactor("create", "roles", func(a clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "rbac.authorization.k8s.io", Resource: "roles"}, "tuned-orchestrator",
			errors.New(`User "dev" cannot create resource "roles"`))
	})
	_, err = pipeline.Run(t.Context(), paramPipeline(), h.backend(&kubejob.Options{Pod: kubepod.Options{Image: testImage}, InCluster: true}), nil)
	require.Error(t, err)
	assert.True(t, apierrors.IsForbidden(err), "%v", err)
	assert.Contains(t, err.Error(), `create the orchestrator's Role`)
	assert.Contains(t, err.Error(), `"tuned-orchestrator"`)
	assert.Contains(t, err.Error(), `"prog compile -backend kubejob"`)
}

// An ended run's record is owned by the run's Jobs, so the garbage
// collector removes it with the last of them (their TTL): a run leaves
// nothing behind. A run without Jobs has its record deleted at once.
func TestRecordRetiresWithTheJobs(t *testing.T) {
	h := newHarness(t)
	defer h.Close()
	_, err := pipeline.Run(t.Context(), workload(&counter{}), h.backend(&kubejob.Options{Pod: kubepod.Options{Image: testImage}, RunID: "tidy"}), nil)
	require.NoError(t, err)
	rec, err := h.cs.CoreV1().ConfigMaps("default").Get(t.Context(), "sluice-run-tidy", metav1.GetOptions{})
	require.NoError(t, err)
	jobs, err := h.cs.BatchV1().Jobs("default").List(t.Context(), metav1.ListOptions{})
	require.NoError(t, err)
	var owners, want []string
	for _, o := range rec.OwnerReferences {
		owners = append(owners, o.Kind+"/"+o.Name)
	}
	for _, j := range jobs.Items {
		want = append(want, "Job/"+j.Name)
		require.Len(t, j.OwnerReferences, 1)
		assert.Equal(t, "sluice-run-tidy", j.OwnerReferences[0].Name, "while it runs, the record owns the Jobs")
	}
	assert.ElementsMatch(t, want, owners)
	assert.Equal(t, string(backends.PhaseSucceeded), rec.Data["phase"])

	// All skipped: no Job, no record.
	p := pipeline.New("none", nil)
	on := pipeline.NewParam(p, "on", false)
	pipeline.Add(p, task.New("x", func(context.Context, struct{}) (int, error) { return 1, nil }), struct{}{}).When(pipeline.IsTrue(on.Ref()))
	_, err = pipeline.Run(t.Context(), p, h.backend(&kubejob.Options{Pod: kubepod.Options{Image: testImage}, RunID: "empty"}), nil)
	require.NoError(t, err)
	_, err = h.cs.CoreV1().ConfigMaps("default").Get(t.Context(), "sluice-run-empty", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "%v", err)
}

// The orchestrator needs nothing beyond the Role that Compile emits: every
// API call it makes while running, caching, canceling and retiring runs is
// checked against the Role's rules and refused (403) if they do not allow
// it.
func TestOrchestratorStaysWithinItsRole(t *testing.T) {
	h := newHarness(t)
	defer h.Close()
	_, c := compile(t, workload(&counter{}), testOptions(), nil)
	allowed := func(a clienttesting.Action) bool {
		gvr := a.GetResource()
		verb := a.GetVerb()
		if verb == "delete-collection" {
			verb = "deletecollection"
		}
		for _, r := range c.role.Rules {
			if slices.Contains(r.APIGroups, gvr.Group) && slices.Contains(r.Resources, gvr.Resource) && slices.Contains(r.Verbs, verb) {
				return true
			}
		}
		return false
	}
	var refused []string
	var mu sync.Mutex
	h.cs.PrependReactor("*", "*", func(a clienttesting.Action) (bool, runtime.Object, error) {
		if allowed(a) {
			return false, nil, nil
		}
		mu.Lock()
		refused = append(refused, a.GetVerb()+" "+a.GetResource().Resource)
		mu.Unlock()
		return true, nil, apierrors.NewForbidden(a.GetResource().GroupResource(), "", errors.New("not in the orchestrator's Role"))
	})
	h.cs.PrependWatchReactor("*", func(a clienttesting.Action) (bool, watch.Interface, error) {
		if allowed(a) {
			return false, nil, nil
		}
		mu.Lock()
		refused = append(refused, "watch "+a.GetResource().Resource)
		mu.Unlock()
		return true, nil, apierrors.NewForbidden(a.GetResource().GroupResource(), "", errors.New("not in the orchestrator's Role"))
	})

	_, err := pipeline.Run(t.Context(), workload(&counter{}), h.backend(testOptions()), nil)
	require.NoError(t, err)
	r := newRecorderForCache()
	_, err = pipeline.Run(t.Context(), r, h.backend(testOptions()), nil)
	require.NoError(t, err)
	_, err = pipeline.Run(t.Context(), r, h.backend(testOptions()), nil)
	require.NoError(t, err, "a cache hit")

	// Canceled: the record is patched, the running Job deleted.
	started := make(chan struct{})
	slow := pipeline.New("slow", nil)
	pipeline.Add(slow, task.New("wait", func(ctx context.Context, _ struct{}) (int, error) {
		close(started)
		<-ctx.Done()
		return 0, ctx.Err()
	}), struct{}{})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := pipeline.Run(ctx, slow, h.backend(testOptions()), nil)
		done <- err
	}()
	<-started
	cancel()
	require.ErrorIs(t, <-done, pipeline.ErrRunFailed, "canceled")

	// All skipped: the record is deleted.
	p := pipeline.New("none", nil)
	on := pipeline.NewParam(p, "on", false)
	pipeline.Add(p, task.New("x", func(context.Context, struct{}) (int, error) { return 1, nil }), struct{}{}).When(pipeline.IsTrue(on.Ref()))
	_, err = pipeline.Run(t.Context(), p, h.backend(testOptions()), nil)
	require.NoError(t, err)
	mu.Lock()
	defer mu.Unlock()
	assert.Empty(t, refused)
}

// newRecorderForCache is a pipeline with a cached step.
func newRecorderForCache() *pipeline.Pipeline {
	p := pipeline.New("cached", nil)
	pipeline.Add(p, task.New("train", func(context.Context, struct{ LR float64 }) (float64, error) { return 0.5, nil }).
		WithCache(task.Cache{Enabled: true, Version: "1"}), struct{ LR float64 }{0.1})
	return p
}
