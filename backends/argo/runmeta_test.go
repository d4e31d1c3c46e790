package argo_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned/fake"
	argotemplate "github.com/argoproj/argo-workflows/v3/util/template"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/argo"
	"github.com/sluice-ml/sluice/backends/backendtest"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/internal/argosim"
	"github.com/sluice-ml/sluice/internal/golden"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

type labelIn struct {
	Label pipeline.Ref[string]
	Day   pipeline.Ref[time.Time]
	Run   pipeline.Ref[string]
	N     pipeline.Ref[int]
}

// stamp is a container task that gets a string parameter and the run's
// facts through placeholders.
var stamp = task.Container[labelIn, struct{ Out string }]("stamp", "registry.example/stamp:1").
	WithCommand("/stamp").WithArgs("--label={{.Label}}", "--day={{.Day}}", "--run={{.Run}}", "--n={{.N}}")

// labelled reads the string parameter label (and the int parameter n) in
// a Go task's input, in a condition and in a container's arguments, with
// the run's facts.
func labelled() *pipeline.Pipeline {
	p := pipeline.New("labelled", nil)
	label := pipeline.NewParam(p, "label", "base")
	n := pipeline.NewParam(p, "n", 3)
	in := labelIn{Label: label.Ref(), Day: pipeline.RunScheduled(), Run: pipeline.RunID(), N: n.Ref()}
	pipeline.Add(p, task.New("echo", func(_ context.Context, in labelIn) (string, error) {
		return fmt.Sprintf("%s %d %s %s", in.Label.Get(), in.N.Get(), in.Day.Get().Format(time.RFC3339), in.Run.Get()), nil
	}), in)
	pipeline.Add(p, task.New("when-bar", func(context.Context, struct{}) (bool, error) { return true, nil }), struct{}{}).
		When(pipeline.Eq(label.Ref(), "bar"))
	pipeline.Add(p, stamp, in)
	return p
}

// A string parameter is stored without JSON quotes, every other one as
// JSON; the run's facts are Argo's own variables; the workflow passes
// Argo's validation.
func TestStringParamsAndRunMetadataGolden(t *testing.T) {
	for name, p := range map[string]*pipeline.Pipeline{"Labelled": labelled(), "RunMetadata": backendtest.RunMetadata()} {
		t.Run(name, func(t *testing.T) {
			art, err := pipeline.Compile(t.Context(), p, argo.New(nil, testOptions()), nil)
			require.NoError(t, err)
			checkDocument(t, art.Documents()[0])
			golden.Assert(t, art.Documents()[0])
		})
	}
	wf := compileWF(t, labelled(), testOptions())
	assert.Equal(t, []wfv1.Parameter{{Name: "label", Value: wfv1.AnyStringPtr("base")}, {Name: "n", Value: wfv1.AnyStringPtr("3")}}, wf.Spec.Arguments.Parameters)
}

// Editing a string parameter as a user would, in Argo's UI or with argo
// submit -p label=bar, gives the string bar: to a Go task's input, to a
// condition and to a container's arguments. The run's facts arrive as on
// every backend.
func TestStringParamEditedAsText(t *testing.T) {
	for _, value := range []string{"bar", `say "hi" {{x}}`, ""} {
		t.Run(fmt.Sprintf("%q", value), func(t *testing.T) {
			cs := fake.NewSimpleClientset()
			nameOnCreate(cs)
			var args []string
			s := newSim(cs, &argosim.Options{Containers: func(_ context.Context, c *corev1.Container) (map[string]string, error) {
				args = c.Args
				return map[string]string{task.OutputDir + "/Out": "ok"}, nil
			}})
			t.Cleanup(s.Close)
			b := &simBackend{Backend: argo.New(cs, testOptions()), sim: s}
			art, err := pipeline.Compile(t.Context(), labelled(), b, nil)
			require.NoError(t, err)
			var wf *wfv1.Workflow
			require.True(t, art.As(&wf))
			wf.Spec.Arguments.Parameters[0].Value = wfv1.AnyStringPtr(value) // the edit
			id, err := b.Submit(t.Context(), art, &backends.SubmitOptions{Scheduled: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)})
			require.NoError(t, err)
			st, err := b.Watch(t.Context(), id, &backends.WatchOptions{})
			require.NoError(t, err)
			require.Equal(t, backends.PhaseSucceeded, st.Phase, st.Message)
			var echo string
			require.NoError(t, json.Unmarshal(st.Step("echo").Output, &echo))
			assert.Equal(t, value+" 3 2026-12-01T00:00:00Z "+id, echo)
			want := backends.PhaseSkipped
			if value == "bar" {
				want = backends.PhaseSucceeded
			}
			assert.Equal(t, want, st.Step("when-bar").Phase)
			assert.Equal(t, []string{"--label=" + value, "--day=2026-12-01T00:00:00Z", "--run=" + id, "--n=3"}, args)
		})
	}
}

// The expressions of the run's times give RFC 3339 in UTC, to the
// second, whatever zone Argo formatted the time in, evaluated by Argo's
// own template engine; the scheduled time falls back to the creation
// time when no CronWorkflow set it.
func TestRunTimeExpressions(t *testing.T) {
	wf := compileWF(t, backendtest.RunMetadata(), testOptions())
	in := wf.Spec.Templates[0].DAG.Tasks[0].Arguments.Parameters
	require.Equal(t, "i", in[len(in)-1].Name)
	doc, err := json.Marshal(in[len(in)-1].Value.String())
	require.NoError(t, err)
	for _, tc := range []struct {
		name    string
		globals map[string]any
		want    string
	}{
		{"created in another zone", map[string]any{
			"workflow.name":                      "run-1",
			"workflow.creationTimestamp.RFC3339": "2026-12-01T02:00:05+02:00",
		}, `{"ID":"run-1","Started":"2026-12-01T00:00:05Z","Scheduled":"2026-12-01T00:00:05Z"}`},
		{"scheduled by a CronWorkflow in its timezone", map[string]any{
			"workflow.name":                      "run-2",
			"workflow.creationTimestamp.RFC3339": "2026-12-01T00:00:05Z",
			"workflow.scheduledTime":             "2026-11-30T19:00:00-05:00",
		}, `{"ID":"run-2","Started":"2026-12-01T00:00:05Z","Scheduled":"2026-12-01T00:00:00Z"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := argotemplate.Replace(string(doc), tc.globals, false)
			require.NoError(t, err)
			var got string
			require.NoError(t, json.Unmarshal([]byte(out), &got))
			assert.JSONEq(t, tc.want, got)
		})
	}
}

// The run's facts and a string parameter compile for every kind and pass
// Argo's validation: a CronWorkflow's Workflows get workflow.scheduledTime.
func TestRunMetadataKinds(t *testing.T) {
	for _, opts := range []*argo.Options{
		{Pod: kubepod.Options{Image: testImage, Command: testCommand}, Kind: argo.KindWorkflowTemplate},
		{Pod: kubepod.Options{Image: testImage, Command: testCommand}, Kind: argo.KindCronWorkflow, Cron: &argo.CronOptions{Schedules: []string{"0 3 * * *"}, Timezone: "Europe/Paris"}},
	} {
		for _, p := range []*pipeline.Pipeline{backendtest.RunMetadata(), labelled()} {
			art, err := pipeline.Compile(t.Context(), p, argo.New(nil, opts), nil)
			require.NoError(t, err)
			doc := string(art.Documents()[0])
			checkDocument(t, []byte(doc))
			assert.Contains(t, doc, "workflow.scheduledTime", "%s %s", opts.Kind, p.Name())
		}
	}
}
