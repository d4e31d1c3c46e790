package argo_test

import (
	"regexp"
	"strings"
	"testing"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned/fake"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/argo"
	"github.com/sluice-ml/sluice/backends/runstate"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

// A run canceled while a step's pod was unschedulable says so, with the
// scheduler's words, on the step, its attempt and its line of the
// summary, although Argo's nodes then say only that the workflow was
// shut down: Watch saw the pod wait. A Watch started after the run ended
// did not, and says "canceled".
func TestWatchSaysAStepWasCanceledWhileUnschedulable(t *testing.T) {
	t.Run("retries", func(t *testing.T) { testCanceledWhileUnschedulable(t, true) })
	t.Run("no retries", func(t *testing.T) { testCanceledWhileUnschedulable(t, false) })
}

// testCanceledWhileUnschedulable watches a step whose pod is
// unschedulable, its task's node a retry node with the pod node as its
// child (retries) or the pod node itself, until Cancel ends it.
func testCanceledWhileUnschedulable(t *testing.T, retries bool) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	p := pipeline.New("wait", nil)
	train := inc.WithName("train")
	if retries {
		train = train.WithRetry(task.Retry{Infra: 2})
	}
	pipeline.Add(p, train, one{})
	wf := compileWF(t, p, testOptions())
	wf.Name, wf.Namespace = "wait-1", "default"
	const why = "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."
	retry := wfv1.NodeStatus{ID: "r", Name: "wait-1.train", DisplayName: "train", Type: wfv1.NodeTypeRetry, Phase: wfv1.NodeRunning, Children: []string{"p0"}}
	pod := wfv1.NodeStatus{ID: "p0", Name: "wait-1.train(0)", DisplayName: "train(0)", Type: wfv1.NodeTypePod, Phase: wfv1.NodePending, Message: "Unschedulable: " + why}
	nodes := func() wfv1.Nodes {
		if retries {
			return wfv1.Nodes{"r": retry, "p0": pod}
		}
		bare := pod
		bare.Name, bare.DisplayName = retry.Name, retry.DisplayName
		return wfv1.Nodes{"p0": bare}
	}
	wf.Status = wfv1.WorkflowStatus{Phase: wfv1.WorkflowRunning, Nodes: nodes()}
	cs := fake.NewSimpleClientset(wf)

	// What Argo's controller leaves once Cancel set spec.shutdown.
	stopped := wf.DeepCopy()
	stopped.Spec.Shutdown = wfv1.ShutdownStrategyStop
	retry.Phase, retry.Message = wfv1.NodeFailed, "Stopped with strategy 'Stop'"
	pod.Phase, pod.Message = wfv1.NodeFailed, "workflow shutdown with strategy:  Stop"
	stopped.Status = wfv1.WorkflowStatus{Phase: wfv1.WorkflowFailed, Message: "Stopped with strategy 'Stop'", Nodes: nodes()}

	var seen []string
	b := argo.New(cs, nil)
	st, err := b.Watch(t.Context(), "wait-1", &backends.WatchOptions{Progress: func(s *backends.RunStatus) {
		seen = append(seen, s.Steps[0].Message)
		if len(seen) == 1 { // the pod waits: cancel
			gvr := schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "workflows"}
			assert.NoError(t, cs.Tracker().Update(gvr, stopped, "default"))
		}
	}})
	require.NoError(t, err)
	want := "canceled while unschedulable: " + why
	assert.Equal(t, []string{runstate.Unschedulable(why), want}, seen, "while it waits, the scheduler's words as runstate words them")
	assert.Equal(t, backends.PhaseCanceled, st.Phase)
	s := st.Steps[0]
	assert.Equal(t, backends.PhaseCanceled, s.Phase)
	assert.Equal(t, want, s.Message)
	require.Len(t, s.Attempts, 1)
	assert.Equal(t, backends.PhaseCanceled, s.Attempts[0].Phase)
	assert.Equal(t, want, s.Attempts[0].Message)
	var sum strings.Builder
	pipeline.WriteSummary(&sum, st)
	assert.Regexp(t, `(?m)^  train +Canceled +attempts=1( +\S+)? +`+regexp.QuoteMeta(want)+`$`, sum.String())

	later, err := b.Watch(t.Context(), "wait-1", nil)
	require.NoError(t, err)
	assert.Equal(t, runstate.MsgCanceled, later.Steps[0].Message, "the scheduler's words are not in the Workflow")
}
