package e2e

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/argo"
	"github.com/sluice-ml/sluice/backends/backendtest"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/backends/local"
	"github.com/sluice-ml/sluice/backends/runstate"
	"github.com/sluice-ml/sluice/e2e/internal/pipelines"
	"github.com/sluice-ml/sluice/internal/naming"
	"github.com/sluice-ml/sluice/internal/testcluster"
	"github.com/sluice-ml/sluice/pipeline"
)

// shardedCases are conformance pipelines run on Argo with a shard size
// that makes each step a shard of its own: data passed between shards (whole outputs, fields, parameters,
// fan-out items), renamed tasks, retries and a failed step, cached steps.
var shardedCases = []string{"Diamond", "ParamsAndFields", "DynamicFanOutFanIn", "StaticFanOutFanIn", "WeirdNames", "Timeout", "Cache"}

// A pipeline over the size budget runs as shards, child Workflows of a
// parent, and what a user observes is what the local backend gives.
func TestShardedRun(t *testing.T) {
	need(t)
	ac := argoClient(t)
	for _, c := range backendtest.Cases() {
		if !slices.Contains(shardedCases, c.Name) {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
			defer cancel()
			want, werr := pipeline.Run(ctx, c.Build(), local.New(nil), nil)
			require.NotNil(t, want, "local: %v", werr)

			ns, _ := namespace(t, true)
			b := argo.New(ac, shardOptions(ns, imageFor(t, "argo", c.Name), 1))
			art, err := pipeline.Compile(ctx, c.Build(), b, nil)
			require.NoError(t, err)
			var shards []*wfv1.WorkflowTemplate
			require.True(t, art.As(&shards), "sharded")
			t.Logf("%d shards", len(shards))

			got, gerr := pipeline.Run(ctx, c.Build(), b, nil)
			require.NotNil(t, got, "argo: %v", gerr)
			assert.Equal(t, want.Phase == backends.PhaseSucceeded, gerr == nil, "error: %v", gerr)
			assert.Equal(t, observable(want), observable(got))

			kids, err := ac.ArgoprojV1alpha1().Workflows(ns).List(ctx, metav1.ListOptions{LabelSelector: argo.LabelRun + "=" + got.RunID})
			require.NoError(t, err)
			assert.NotEmpty(t, kids.Items)
			for _, k := range kids.Items {
				require.Len(t, k.OwnerReferences, 1, "owned by the parent")
			}
		})
	}
}

// shardOptions are the Argo backend's options of the sharded-run tests:
// steps of image in namespace ns, shards of about size bytes. Argo keeps
// memoized steps in a ConfigMap of its controller's namespace, which
// every test's runs share: these runs have one of their own, so that a
// cached step of another test's run is not theirs.
func shardOptions(ns, image string, size int) *argo.Options {
	return &argo.Options{
		Pod:        kubepod.Options{Namespace: ns, Image: image, Command: []string{pipelines.Entrypoint}},
		KubeClient: cl.Client, ControllerNamespace: testcluster.ArgoNamespace, ShardSize: size,
		CacheConfigMap: naming.Fit("cache-"+ns, naming.MaxLabel),
	}
}

// The one way a sharded run differs: a shard whose dependency shard
// failed does not start, so a step in it whose own upstream succeeded
// does not run either, and says why.
func TestShardedRunFailure(t *testing.T) {
	need(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	ac := argoClient(t)
	ns, _ := namespace(t, true)
	image := imageFor(t, "argo", pipelines.ShardFail)
	opts := func(size int) *argo.Options { return shardOptions(ns, image, size) }
	// Two steps a shard: the template once, and two DAG tasks.
	var wf *wfv1.Workflow
	art, err := pipeline.Compile(ctx, pipelines.Build(pipelines.ShardFail), argo.New(nil, opts(1)), nil)
	require.NoError(t, err)
	var shards []*wfv1.WorkflowTemplate
	require.True(t, art.As(&shards))
	tmpl, task := 0, 0
	for _, tm := range shards[0].Spec.Templates {
		b, _ := json.Marshal(tm)
		switch {
		case tm.Name == "main":
			b, _ := json.Marshal(tm.DAG.Tasks[0])
			task = len(b)
		case tm.Container != nil:
			tmpl = len(b)
		}
	}
	b := argo.New(ac, opts(tmpl+2*task+task*3/4))
	art, err = pipeline.Compile(ctx, pipelines.Build(pipelines.ShardFail), b, nil)
	require.NoError(t, err)
	require.True(t, art.As(&shards))
	require.Len(t, shards, 2, "bad and good in one shard, their dependents in the next (template %d bytes, task %d)", tmpl, task)
	require.True(t, art.As(&wf))

	st, err := pipeline.Run(ctx, pipelines.Build(pipelines.ShardFail), b, nil)
	require.Error(t, err)
	require.NotNil(t, st)
	assert.Equal(t, backends.PhaseFailed, st.Phase)
	assert.Equal(t, backends.PhaseFailed, st.Step("bad").Phase)
	assert.Equal(t, backends.PhaseSucceeded, st.Step("good").Phase)
	assert.Equal(t, backends.PhaseSkipped, st.Step("after-bad").Phase)
	want, _ := pipeline.Run(ctx, pipelines.Build(pipelines.ShardFail), local.New(nil), nil)
	assert.Equal(t, want.Step("after-bad").Message, st.Step("after-bad").Message, "in the words of every backend")
	assert.Equal(t, backends.PhaseSucceeded, want.Step("after-good").Phase, "locally, it runs")
	ag := st.Step("after-good")
	assert.Equal(t, backends.PhaseSkipped, ag.Phase)
	assert.Equal(t, "not run: it is in shard 1 of the workflow, which did not start because a shard it runs after failed", ag.Message)
}

// Cancel stops the parent and the shard it runs; the shard after it
// never starts.
func TestShardedRunCancel(t *testing.T) {
	need(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	ac := argoClient(t)
	ns, _ := namespace(t, true)
	b := argo.New(ac, shardOptions(ns, imageFor(t, "argo", pipelines.ShardCancel), 1))
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var once sync.Once
	st, err := pipeline.Run(runCtx, pipelines.Build(pipelines.ShardCancel), b, &pipeline.RunOptions{Progress: func(st *backends.RunStatus) {
		if s := st.Step("block"); s != nil && s.Phase == backends.PhaseRunning {
			once.Do(stop)
		}
	}})
	require.Error(t, err)
	require.NotNil(t, st)
	assert.Equal(t, backends.PhaseCanceled, st.Phase, "%v", err)
	assert.Equal(t, runstate.MsgCanceled, st.Message)
	assert.Equal(t, backends.PhaseCanceled, st.Step("block").Phase)
	assert.Equal(t, runstate.MsgCanceled, st.Step("block").Message)
	assert.Equal(t, backends.PhaseCanceled, st.Step("later").Phase)
	assert.Equal(t, runstate.MsgNotStarted, st.Step("later").Message)

	kids, err := ac.ArgoprojV1alpha1().Workflows(ns).List(ctx, metav1.ListOptions{LabelSelector: argo.LabelRun + "=" + st.RunID})
	require.NoError(t, err)
	require.Len(t, kids.Items, 1, "the second shard never started")
	assert.Equal(t, wfv1.ShutdownStrategyStop, kids.Items[0].Spec.Shutdown, "the child was stopped too")
	assert.True(t, kids.Items[0].Status.Phase.Completed(), "and ended: %s", kids.Items[0].Status.Phase)
}
