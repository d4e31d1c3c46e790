package argo_test

import (
	"errors"
	"testing"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned/fake"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/argo"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/pipeline"
)

var cwfResource = schema.GroupResource{Group: "argoproj.io", Resource: "cronworkflows"}

func cronOptions(schedules ...string) *argo.Options {
	return &argo.Options{Pod: kubepod.Options{Image: testImage, Command: testCommand, Namespace: "ml"}, Kind: argo.KindCronWorkflow, Cron: &argo.CronOptions{
		Schedules: schedules, Timezone: "Europe/Paris", ConcurrencyPolicy: wfv1.ForbidConcurrent,
		StopExpression: "cronworkflow.failed >= 3",
	}}
}

// failOnce makes the first verb call on resource fail with err.
func failOnce(cs *fake.Clientset, verb, resource string, err error) *int {
	calls := new(int)
	cs.PrependReactor(verb, resource, func(k8stesting.Action) (bool, runtime.Object, error) {
		*calls++
		if *calls == 1 {
			return true, nil, err
		}
		return false, nil, nil
	})
	return calls
}

// Schedule creates or updates a CronWorkflow; SuspendSchedule suspends
// and resumes it; Unschedule deletes it, idempotently, keeping the runs it
// started. Transient API errors and conflicts are retried.
func TestSchedule(t *testing.T) {
	cs := fake.NewSimpleClientset()
	get := func() *wfv1.CronWorkflow {
		cwf, err := cs.ArgoprojV1alpha1().CronWorkflows("ml").Get(t.Context(), "chain", metav1.GetOptions{})
		require.NoError(t, err)
		return cwf
	}

	b := argo.New(cs, cronOptions("0 3 * * *"))
	art, err := pipeline.Compile(t.Context(), chain(2), b, nil)
	require.NoError(t, err)
	failOnce(cs, "create", "cronworkflows", apierrors.NewServiceUnavailable("etcd leader change"))
	name, err := b.Schedule(t.Context(), art)
	require.NoError(t, err)
	assert.Equal(t, "chain", name)
	cwf := get()
	assert.Equal(t, []string{"0 3 * * *"}, cwf.Spec.Schedules)
	assert.Equal(t, "Europe/Paris", cwf.Spec.Timezone)
	assert.Equal(t, wfv1.ForbidConcurrent, cwf.Spec.ConcurrencyPolicy)
	assert.Equal(t, "cronworkflow.failed >= 3", cwf.Spec.StopStrategy.Expression)
	assert.Equal(t, "chain", cwf.Spec.WorkflowMetadata.Labels[argo.LabelPipeline])

	// Scheduling again replaces the spec, even after a conflicting update.
	b2 := argo.New(cs, cronOptions("0 4 * * *", "0 16 * * *"))
	art2, err := pipeline.Compile(t.Context(), chain(3), b2, nil)
	require.NoError(t, err)
	conflicts := failOnce(cs, "update", "cronworkflows", apierrors.NewConflict(cwfResource, "chain", errors.New("the object has been modified")))
	name, err = b2.Schedule(t.Context(), art2)
	require.NoError(t, err)
	assert.Equal(t, "chain", name)
	assert.Equal(t, 2, *conflicts, "read and updated again after the conflict")
	cwf = get()
	assert.Equal(t, []string{"0 4 * * *", "0 16 * * *"}, cwf.Spec.Schedules)
	assert.Len(t, cwf.Spec.WorkflowSpec.Templates[0].DAG.Tasks, 3)

	require.NoError(t, b.SuspendSchedule(t.Context(), "chain", true))
	assert.True(t, get().Spec.Suspend)
	failOnce(cs, "patch", "cronworkflows", apierrors.NewTimeoutError("slow", 1))
	require.NoError(t, b.SuspendSchedule(t.Context(), "chain", false))
	assert.False(t, get().Spec.Suspend)
	assert.True(t, apierrors.IsNotFound(b.SuspendSchedule(t.Context(), "nope", true)))

	// A delete that reports success but leaves the object is done again.
	deletes := 0
	cs.PrependReactor("delete", "cronworkflows", func(k8stesting.Action) (bool, runtime.Object, error) {
		deletes++
		switch deletes {
		case 1:
			return true, nil, apierrors.NewInternalError(errors.New("boom"))
		case 2:
			return true, nil, nil // lost
		}
		return false, nil, nil
	})
	require.NoError(t, b.Unschedule(t.Context(), "chain"))
	assert.Equal(t, 3, deletes)
	_, err = cs.ArgoprojV1alpha1().CronWorkflows("ml").Get(t.Context(), "chain", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err))
	require.NoError(t, b.Unschedule(t.Context(), "chain"), "removing a removed schedule succeeds")

	// Permanent errors come back raw.
	failOnce(cs, "delete", "cronworkflows", apierrors.NewForbidden(cwfResource, "chain", errors.New("rbac")))
	assert.True(t, apierrors.IsForbidden(b.Unschedule(t.Context(), "chain")))

	// Only a CronWorkflow can be scheduled, which is known before
	// connecting; a backend without a client and no kubeconfig to build
	// one from cannot schedule.
	wfArt, err := pipeline.Compile(t.Context(), chain(1), argo.New(nil, testOptions()), nil)
	require.NoError(t, err)
	_, err = b.Schedule(t.Context(), wfArt)
	require.ErrorIs(t, err, errors.ErrUnsupported)
	noKubeconfig(t)
	_, err = argo.New(nil, nil).Schedule(t.Context(), wfArt)
	require.ErrorIs(t, err, errors.ErrUnsupported)
	_, err = argo.New(nil, cronOptions("* * * * *")).Schedule(t.Context(), art)
	require.ErrorContains(t, err, "KUBECONFIG")
	require.ErrorContains(t, argo.New(nil, nil).Unschedule(t.Context(), "chain"), "KUBECONFIG")
}

// Cancel retries a transient API error (its patch is idempotent) and
// returns a permanent one raw.
func TestCancelRetriesTransientErrors(t *testing.T) {
	cs := fake.NewSimpleClientset(&wfv1.Workflow{ObjectMeta: metav1.ObjectMeta{Name: "run-1", Namespace: "default"}})
	b := argo.New(cs, nil)
	calls := failOnce(cs, "patch", "workflows", apierrors.NewServerTimeout(wfResource, "patch", 1))
	require.NoError(t, b.Cancel(t.Context(), "run-1"))
	assert.Equal(t, 2, *calls)
	wf, err := cs.ArgoprojV1alpha1().Workflows("default").Get(t.Context(), "run-1", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, wfv1.ShutdownStrategyStop, wf.Spec.Shutdown)

	failOnce(cs, "patch", "workflows", apierrors.NewForbidden(wfResource, "run-1", errors.New("rbac")))
	assert.True(t, apierrors.IsForbidden(b.Cancel(t.Context(), "run-1")))
	noKubeconfig(t)
	_, err = argo.New(nil, nil).Watch(t.Context(), "run-1", &backends.WatchOptions{})
	require.ErrorContains(t, err, "KUBECONFIG")
}
