package hpo_test

import (
	"bytes"
	"context"
	"testing"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned/fake"
	"github.com/argoproj/argo-workflows/v3/workflow/templateresolution"
	"github.com/argoproj/argo-workflows/v3/workflow/validate"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/argo"
	"github.com/sluice-ml/sluice/backends/kubejob"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/hpo"
	"github.com/sluice-ml/sluice/pipeline"
)

var pod = kubepod.Options{Image: "registry.example/tune:1", Command: []string{"/tune"}}

func compiled(t *testing.T, b backends.Backend, opts *hpo.Options) []byte {
	t.Helper()
	p, _ := braninSearch(opts, nil)
	art, err := pipeline.Compile(context.Background(), p, b, nil)
	require.NoError(t, err)
	return bytes.Join(art.Documents(), []byte("---\n"))
}

// Both cluster backends compile a search, and Argo's own validator
// accepts the workflow.
func TestClusterBackendsCompileASearch(t *testing.T) {
	opts := &hpo.Options{Sampler: hpo.TPE, MaxTrials: 20, ParallelTrials: 4, Goal: new(0.5)}
	compiled(t, kubejob.New(nil, &kubejob.Options{Pod: pod}), opts)

	wf := validWorkflow(t, compiled(t, argo.New(nil, &argo.Options{Pod: pod}), opts))
	// Five rounds of a suggest step and a fan-out, and the result step.
	var tasks []string
	for _, tm := range wf.Spec.Templates {
		if tm.DAG != nil && tm.Name == wf.Spec.Entrypoint {
			for _, dt := range tm.DAG.Tasks {
				tasks = append(tasks, dt.Name)
			}
		}
	}
	assert.Len(t, tasks, 11)
	assert.Contains(t, tasks, "search-trials-4")
}

// The manifest grows with the rounds, not the trials.
func TestManifestSizeDoesNotGrowWithTrials(t *testing.T) {
	for name, b := range map[string]backends.Backend{
		"argo":    argo.New(nil, &argo.Options{Pod: pod}),
		"kubejob": kubejob.New(nil, &kubejob.Options{Pod: pod}),
	} {
		t.Run(name, func(t *testing.T) {
			small := compiled(t, b, &hpo.Options{MaxTrials: 10, ParallelTrials: 2, Rounds: 5})
			large := compiled(t, b, &hpo.Options{MaxTrials: 1000, ParallelTrials: 2, Rounds: 5})
			ratio := float64(len(large)) / float64(len(small))
			t.Logf("%s: 10 trials %d bytes, 1000 trials %d bytes (%.3f×)", name, len(small), len(large), ratio)
			assert.LessOrEqual(t, ratio, 1.05)
		})
	}
}

// A failure budget is the trial fan-outs' failure tolerance, which
// Argo compiles too (and its validator accepts): every round's fan-out
// calls a wrapper that carries it.
func TestFailureBudgetCompilesOnArgo(t *testing.T) {
	wf := validWorkflow(t, compiled(t, argo.New(nil, &argo.Options{Pod: pod}), &hpo.Options{MaxTrials: 4, ParallelTrials: 2, MaxFailedTrials: 1}))
	tolerance := map[string]string{}
	for _, tm := range wf.Spec.Templates {
		if v, ok := tm.Metadata.Annotations[argo.AnnotationTolerate]; ok {
			tolerance[tm.Name] = v
		}
	}
	var rounds []string
	for _, tm := range wf.Spec.Templates {
		if tm.Name != wf.Spec.Entrypoint {
			continue
		}
		for _, dt := range tm.DAG.Tasks {
			if v, ok := tolerance[dt.Template]; ok {
				rounds = append(rounds, dt.Name+" "+v)
			}
		}
	}
	assert.Len(t, rounds, 2, "both rounds' fan-outs tolerate a failed trial: %v", rounds)
	for _, r := range rounds {
		assert.Contains(t, r, `{"maxFailed":1}`)
	}
}

// validWorkflow decodes doc strictly and has Argo's own validator check it.
func validWorkflow(t *testing.T, doc []byte) *wfv1.Workflow {
	t.Helper()
	var wf wfv1.Workflow
	require.NoError(t, yaml.UnmarshalStrict(doc, &wf))
	cs := fake.NewSimpleClientset()
	require.NoError(t, validate.ValidateWorkflow(
		templateresolution.WrapWorkflowTemplateInterface(cs.ArgoprojV1alpha1().WorkflowTemplates("default")),
		templateresolution.WrapClusterWorkflowTemplateInterface(cs.ArgoprojV1alpha1().ClusterWorkflowTemplates()),
		&wf, nil, validate.ValidateOpts{Submit: true}))
	return &wf
}
