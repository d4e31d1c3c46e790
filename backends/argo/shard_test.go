package argo_test

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned/fake"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/yaml"

	"github.com/sluice-ml/sluice/backends/argo"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/internal/benchdag"
	"github.com/sluice-ml/sluice/pipeline"
)

// A pipeline of 10,000 container tasks, 3.8 MB as one Workflow, compiles
// to shards within the default budget of 1 MiB each, which Argo's own
// validation accepts.
func TestShardedContainerPipeline(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles 10,000 tasks")
	}
	art, err := pipeline.Compile(t.Context(), benchdag.Pipeline(10000, benchdag.Container, 7), argo.New(nil, &argo.Options{Pod: kubepod.Options{Image: testImage, Command: testCommand}}), nil)
	require.NoError(t, err)
	var shards []*wfv1.WorkflowTemplate
	require.True(t, art.As(&shards))
	docs := art.Documents()
	total := 0
	kinds := map[string]int{}
	for _, d := range docs {
		assert.LessOrEqual(t, len(d), argo.DefaultMaxSize)
		total += len(d)
		var tm struct{ Kind string }
		require.NoError(t, yaml.Unmarshal(d, &tm))
		kinds[tm.Kind]++
		if tm.Kind == "Workflow" {
			argoValidate(t, d)
		}
	}
	// Argo's validation takes about 8 s per shard of 1,400 tasks here
	// (more under the race detector): the last shard, the smallest,
	// stands for the others, built the same way (TestShardedChain
	// validates every shard of a smaller pipeline).
	argoValidate(t, docs[len(docs)-2])
	assert.Equal(t, len(shards), kinds["WorkflowTemplate"])
	assert.Equal(t, 1, kinds["Workflow"])
	t.Logf("%d shards, %d documents, %d bytes in all", len(shards), len(docs), total)
	var wf *wfv1.Workflow
	require.True(t, art.As(&wf))
	assert.Len(t, wf.Spec.Templates[0].DAG.Tasks, len(shards))
	steps := 0
	for _, s := range shards {
		for _, tmpl := range s.Spec.Templates {
			if tmpl.Name == "main" {
				steps += len(tmpl.DAG.Tasks)
			}
		}
	}
	assert.Equal(t, 10000, steps, "every step in one shard")
}

// A chain over a small budget: every shard but the first reads the last
// output of the one before, through the parent.
func TestShardedChain(t *testing.T) {
	const max = 10 << 10
	art, err := pipeline.Compile(t.Context(), chain(60), argo.New(nil, &argo.Options{Pod: kubepod.Options{Image: testImage, Command: testCommand}, MaxSize: max}), nil)
	require.NoError(t, err)
	var shards []*wfv1.WorkflowTemplate
	require.True(t, art.As(&shards))
	require.Greater(t, len(shards), 2)
	var kinds []string
	for _, d := range art.Documents() {
		assert.LessOrEqual(t, len(d), max)
		var tm struct{ Kind string }
		require.NoError(t, yaml.Unmarshal(d, &tm))
		kinds = append(kinds, tm.Kind)
		if tm.Kind == "Workflow" || tm.Kind == "WorkflowTemplate" {
			checkDocument(t, d)
		}
	}
	// The resource steps' account, then the shards, then the parent.
	assert.Equal(t, []string{"ServiceAccount", "Role", "RoleBinding"}, kinds[:3])
	assert.Equal(t, "Workflow", kinds[len(kinds)-1])

	var wf *wfv1.Workflow
	require.True(t, art.As(&wf))
	tasks := wf.Spec.Templates[0].DAG.Tasks
	require.Len(t, tasks, len(shards))
	seen := 0
	for k, s := range shards {
		assert.Equal(t, "shard", s.Spec.Entrypoint)
		var main *wfv1.Template
		for i := range s.Spec.Templates {
			if s.Spec.Templates[i].Name == "main" {
				main = &s.Spec.Templates[i]
			}
		}
		require.NotNil(t, main)
		first := main.DAG.Tasks[0]
		last := main.DAG.Tasks[len(main.DAG.Tasks)-1]
		if k == 0 {
			assert.Empty(t, tasks[k].Depends)
		} else {
			prev := fmt.Sprintf("inc-%d", seen-1)
			assert.Equal(t, fmt.Sprintf("s%d", k-1), tasks[k].Depends)
			require.Len(t, tasks[k].Arguments.Parameters, 1)
			assert.Equal(t, fmt.Sprintf("{{=toJson(sprig.pick(fromJSON(tasks.s%d.outputs.parameters.out), '%s.o'))}}", k-1, prev),
				tasks[k].Arguments.Parameters[0].Value.String())
			assert.Empty(t, first.Depends, "its dependency is in the shard before")
			assert.Contains(t, first.Arguments.Parameters[len(first.Arguments.Parameters)-1].Value.String(),
				fmt.Sprintf("fromJSON(workflow.parameters.s%d)['%s.o']", k-1, prev))
			assert.JSONEq(t, fmt.Sprintf(`{%q: %q}`, first.Name, prev), main.Metadata.Annotations[argo.AnnotationDepends])
		}
		if k < len(shards)-1 {
			require.Len(t, main.Outputs.Parameters, 1)
			assert.Equal(t, fmt.Sprintf("toJson({'%s.o': tasks['%s'].outputs.parameters.o})", last.Name, last.Name), main.Outputs.Parameters[0].ValueFrom.Expression)
		} else {
			assert.Empty(t, main.Outputs.Parameters, "nothing reads the last shard")
		}
		seen += len(main.DAG.Tasks)
	}
	assert.Equal(t, 60, seen)
}

// Watch of a sharded run that Cancel stopped stops a child made as it
// ran, once: not again on every event until the child's own event shows
// it stopping.
func TestWatchStopsLateShardsOnce(t *testing.T) {
	const run = "dag-x1"
	parent := &wfv1.Workflow{
		ObjectMeta: metav1.ObjectMeta{Name: run, Namespace: "default"},
		Spec: wfv1.WorkflowSpec{Shutdown: wfv1.ShutdownStrategyStop, Templates: []wfv1.Template{{
			Name: "main", Metadata: wfv1.Metadata{Annotations: map[string]string{argo.AnnotationShards: `["dag-h-0","dag-h-1"]`}},
		}}},
		Status: wfv1.WorkflowStatus{Phase: wfv1.WorkflowRunning},
	}
	kid := func(name string) *wfv1.Workflow {
		return &wfv1.Workflow{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{argo.LabelRun: run}},
			Status:     wfv1.WorkflowStatus{Phase: wfv1.WorkflowRunning},
		}
	}
	cs := fake.NewSimpleClientset(parent, kid("dag-x1-a"), kid("dag-x1-b"))
	var lists, patches atomic.Int32
	cs.PrependReactor("list", "workflows", func(k8stesting.Action) (bool, runtime.Object, error) {
		lists.Add(1)
		return false, nil, nil
	})
	cs.PrependReactor("patch", "workflows", func(k8stesting.Action) (bool, runtime.Object, error) {
		patches.Add(1)
		return false, nil, nil
	})
	b := argo.New(cs, testOptions())
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := b.Watch(ctx, run, nil)
		done <- err
	}()
	wfs := cs.ArgoprojV1alpha1().Workflows("default")
	// Wait for Watch to stop both children, then give it events.
	require.Eventually(t, func() bool {
		for _, n := range []string{"dag-x1-a", "dag-x1-b"} {
			k, err := wfs.Get(ctx, n, metav1.GetOptions{})
			if err != nil || k.Spec.Shutdown == "" {
				return false
			}
		}
		return true
	}, 30*time.Second, 5*time.Millisecond)
	for i := range 3 {
		p, err := wfs.Get(ctx, run, metav1.GetOptions{})
		require.NoError(t, err)
		p.Annotations = map[string]string{"touch": strconv.Itoa(i)}
		_, err = wfs.Update(ctx, p, metav1.UpdateOptions{})
		require.NoError(t, err)
	}
	for _, n := range []string{"dag-x1-a", "dag-x1-b", run} {
		k, err := wfs.Get(ctx, n, metav1.GetOptions{})
		require.NoError(t, err)
		k.Status.Phase = wfv1.WorkflowFailed
		_, err = wfs.Update(ctx, k, metav1.UpdateOptions{})
		require.NoError(t, err)
	}
	require.NoError(t, <-done)
	assert.Equal(t, int32(2), patches.Load(), "one stop per child")
	assert.Equal(t, int32(2), lists.Load(), "Watch's list of the children, and one of stopShards")
}
