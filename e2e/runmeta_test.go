package e2e

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/backendtest"
	"github.com/sluice-ml/sluice/e2e/internal/pipelines"
	"github.com/sluice-ml/sluice/pipeline"
)

// TestRunMetadataSemantics runs the conformance check of the run's facts
// (pipeline.RunID, RunStarted, RunScheduled) on each cluster backend: in
// a Go task's input, a condition and the exit handler, the run id the
// run reports and its creation time in RFC 3339 UTC to the second,
// computed by the real Argo controller from its own variables and by the
// kubejob orchestrator from the run's record; then a run submitted with a
// scheduled time (Argo's scheduled-time annotation, kubejob's record).
func TestRunMetadataSemantics(t *testing.T) {
	need(t)
	for _, backend := range clusterBackends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			ns, _ := namespace(t, true)
			b := clusterBackend(t, backend, ns, imageFor(t, backend, backendtest.RunMetadataName))
			backendtest.CheckRunMetadata(t, b)
		})
	}
}

// TestArgoStringParamSemantics submits a Workflow whose string parameter
// was edited as a user edits it in Argo's UI or with argo submit -p
// label=tuned: plain text, no JSON quotes. The task gets the string.
func TestArgoStringParamSemantics(t *testing.T) {
	need(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	ns, _ := namespace(t, true)
	const name = "ParamsAndFields"
	b := clusterBackend(t, "argo", ns, imageFor(t, "argo", name))
	art, err := pipeline.Compile(ctx, pipelines.Build(name), b, nil)
	require.NoError(t, err)
	var wf *wfv1.Workflow
	require.True(t, art.As(&wf))
	edited := false
	for i, p := range wf.Spec.Arguments.Parameters {
		if p.Name == "label" {
			require.Equal(t, "base", p.Value.String(), "stored as text")
			wf.Spec.Arguments.Parameters[i].Value = wfv1.AnyStringPtr("tuned")
			edited = true
		}
	}
	require.True(t, edited, "the workflow has the parameter label")
	id, err := b.(backends.Submitter).Submit(ctx, art, &backends.SubmitOptions{})
	require.NoError(t, err)
	st, err := b.(backends.Watcher).Watch(ctx, id, &backends.WatchOptions{})
	require.NoError(t, err)
	require.Equal(t, backends.PhaseSucceeded, st.Phase, st.Message)
	var out string
	require.NoError(t, json.Unmarshal(st.Step("scale").Output, &out))
	assert.Equal(t, "tuned:14", out)
}
