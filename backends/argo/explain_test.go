package argo_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/artifact"
	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/argo"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

type metrics struct {
	NDCG float64
	Big  string
}

type notifyIn struct {
	Run pipeline.Ref[pipeline.RunInfo]
}

// explained is a pipeline whose steps Argo skips: "publish" on an output
// against a parameter, "tag" on a string parameter, "big" on an output
// field, and the exit handler "notify" on the run's phase.
func explained() *pipeline.Pipeline {
	p := pipeline.New("explained", nil)
	minNDCG := pipeline.NewParam(p, "min_ndcg", 0.9)
	env := pipeline.NewParam(p, "env", "prod")
	eval := pipeline.Add(p, task.New("evaluate", func(context.Context, struct{}) (metrics, error) { return metrics{}, nil }), struct{}{})
	noop := task.New("noop", func(context.Context, struct{}) (num, error) { return num{}, nil })
	pipeline.Add(p, noop.WithName("publish"), struct{}{}).When(pipeline.Compare(pipeline.Field[float64](eval.Output(), "NDCG"), ">=", minNDCG.Ref()))
	pipeline.Add(p, noop.WithName("tag"), struct{}{}).After(eval).When(pipeline.Eq(env.Ref(), "dev"))
	pipeline.Add(p, noop.WithName("big"), struct{}{}).When(pipeline.Eq(pipeline.Field[string](eval.Output(), "Big"), "x"))
	pipeline.OnExit(p, task.New("notify", func(context.Context, notifyIn) (num, error) { return num{}, nil }), notifyIn{Run: p.Status()}).
		When(pipeline.Eq(pipeline.Field[backends.Phase](p.Status(), "Phase"), backends.PhaseFailed))
	return p
}

// explainedStatus is the status of a run of explained in which evaluate
// output out and every other node was skipped.
func explainedStatus(t *testing.T, out string) *backends.RunStatus {
	t.Helper()
	wf := compileWF(t, explained(), testOptions())
	wf.Name = "ex-1"
	nodes := wfv1.Nodes{"e": {ID: "e", Name: "ex-1.evaluate", DisplayName: "evaluate", Type: wfv1.NodeTypePod, Phase: wfv1.NodeSucceeded,
		Outputs: &wfv1.Outputs{Parameters: []wfv1.Parameter{{Name: "o", Value: wfv1.AnyStringPtr(out)}}}}}
	for _, name := range []string{"publish", "tag", "big", "onExit.notify"} {
		nodes[name] = wfv1.NodeStatus{ID: name, Name: "ex-1." + name, DisplayName: name, Type: wfv1.NodeTypeSkipped, Phase: wfv1.NodeSkipped,
			Message: "when '…' evaluated false"}
	}
	wf.Status = wfv1.WorkflowStatus{Phase: wfv1.WorkflowSucceeded, Nodes: nodes}
	return argo.Status(wf)
}

// Watch words a step Argo skipped as every backend does, with the values
// that decided, read from the Workflow's status: the upstream output, the
// workflow's parameters, the run's outcome for the exit handler.
func TestStatusExplainsASkip(t *testing.T) {
	st := explainedStatus(t, `{"NDCG":0.463,"Big":"small"}`)
	for name, want := range map[string]string{
		"publish": "condition evaluate.NDCG >= params.min_ndcg is false: evaluate.NDCG = 0.463 < params.min_ndcg = 0.9",
		"tag":     `condition params.env == "dev" is false: params.env = "prod" != "dev"`,
		"big":     `condition evaluate.Big == "x" is false: evaluate.Big = "small" != "x"`,
		"notify":  `condition run.phase == "Failed" is false: run.phase = "Succeeded" != "Failed"`,
	} {
		s := st.Step(name)
		require.NotNil(t, s, name)
		assert.Equal(t, backends.PhaseSkipped, s.Phase, name)
		assert.Equal(t, want, s.Message, name)
	}
}

// A value a task stored out of band (artifact.Promote) is in the store,
// which Status does not read: the skip is worded without values, rather
// than with the description that stands in for the value.
func TestStatusExplainsNoOutOfBandValue(t *testing.T) {
	desc, err := json.Marshal(artifact.Artifact{Kind: artifact.KindValue, URI: "file:///store/explained/ex-1/evaluate/.values/Big",
		Digest: "sha256:" + strings.Repeat("0", 64), Size: 1 << 20})
	require.NoError(t, err)

	// One field promoted: a condition on it has no value to show, one on
	// a field that stayed in-band does.
	st := explainedStatus(t, `{"NDCG":0.463,"Big":`+string(desc)+`}`)
	assert.Equal(t, `condition evaluate.Big == "x" is false`, st.Step("big").Message)
	assert.Equal(t, "condition evaluate.NDCG >= params.min_ndcg is false: evaluate.NDCG = 0.463 < params.min_ndcg = 0.9", st.Step("publish").Message)

	// The whole output promoted: no field of it can be shown.
	st = explainedStatus(t, string(desc))
	assert.Equal(t, `condition evaluate.Big == "x" is false`, st.Step("big").Message)
	assert.Equal(t, "condition evaluate.NDCG >= params.min_ndcg is false", st.Step("publish").Message)
	assert.Equal(t, `condition params.env == "dev" is false: params.env = "prod" != "dev"`, st.Step("tag").Message, "parameters are in the Workflow")
}

// A Workflow compiled before the values were shown holds each condition
// as text: its skips are worded without values.
func TestStatusExplainsAnOlderWorkflow(t *testing.T) {
	wf := compileWF(t, explained(), testOptions())
	wf.Name = "ex-1"
	wf.Spec.Templates[0].Metadata.Annotations[argo.AnnotationConditions] = `{"tag":"params.env == \"dev\""}`
	wf.Status = wfv1.WorkflowStatus{Phase: wfv1.WorkflowSucceeded, Nodes: wfv1.Nodes{
		"e":   {ID: "e", Name: "ex-1.evaluate", Type: wfv1.NodeTypePod, Phase: wfv1.NodeSucceeded},
		"tag": {ID: "tag", Name: "ex-1.tag", Type: wfv1.NodeTypeSkipped, Phase: wfv1.NodeSkipped},
	}}
	assert.Equal(t, `condition params.env == "dev" is false`, argo.Status(wf).Step("tag").Message)
}
