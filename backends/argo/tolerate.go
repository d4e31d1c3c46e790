package argo

import (
	"encoding/json"
	"strconv"
	"strings"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"

	"github.com/sluice-ml/sluice/backends"
)

// AnnotationTolerate, on the wrapper template of a fan-out with a failure
// tolerance, is that tolerance, {"maxFailed":N,"maxFailedFraction":F}
// (fields left out when zero), so that Watch ends the step in the words
// of every backend (runstate.FanOutEnd).
const AnnotationTolerate = "sluice.dev/tolerate"

// failedParam is the output parameter of a tolerant fan-out's wrapper
// that counts its failed instances, and fails the wrapper when there are
// more than it tolerates.
const failedParam = "failed"

// tolerant reports whether fan-out step s tolerates failed instances.
func tolerant(s *backends.Step) bool {
	fe := s.ForEach
	return fe != nil && (fe.MaxFailed > 0 || fe.MaxFailedFraction > 0)
}

// tolerate makes t, the wrapper DAG of tolerant fan-out step s (see
// eachTemplate), go on when instances fail and fail when more than
// runstate.Tolerated of them did. The loop task continues on Failed and
// Error, so the wrapper's DAG completes; Argo v3.7 aggregates the outputs
// of the Succeeded children only, in loop order, so the count of values
// of an aggregated output parameter is the count of instances that
// succeeded (when none did, Argo leaves "tasks.each.outputs.parameters" a
// JSON text instead of a map). failedParam, which has no default, is the
// number of failed instances, or sprig.fail when it is more than the
// tolerated number: Argo marks the wrapper node Error when an output
// expression without a default fails. countParam names an output
// parameter every succeeded instance has.
func tolerate(s *backends.Step, t *wfv1.Template, countParam string) error {
	fe := s.ForEach
	t.DAG.Tasks[0].ContinueOn = &wfv1.ContinueOn{Failed: true, Error: true}
	n := "len(fromJSON(inputs.parameters.inputs))"
	params := member("tasks", eachTask) + ".outputs.parameters"
	ok := "(type(" + params + ") == 'string' ? 0 : len(fromJSON(" + taskOutput(eachTask, countParam) + ")))"
	failed := "(" + n + " - " + ok + ")"
	// runstate.Tolerated: MaxFailed, or the fraction of the count rounded
	// down (int truncates a positive float), whichever is larger.
	tol := strconv.Itoa(fe.MaxFailed)
	if f := fe.MaxFailedFraction; f > 0 {
		frac := "int(" + strconv.FormatFloat(f, 'f', -1, 64) + " * " + n + " + 0.000000001)"
		tol = "(" + tol + " > " + frac + " ? " + tol + " : " + frac + ")"
	}
	msg := "string(" + failed + ") + ' of ' + string(" + n + ") + ' instances failed, more than the ' + string(" + tol + ") + ' tolerated'"
	t.Outputs.Parameters = append(t.Outputs.Parameters, wfv1.Parameter{
		Name:      failedParam,
		ValueFrom: &wfv1.ValueFrom{Expression: n + " == 0 ? '0' : (" + failed + " > " + tol + " ? sprig.fail(" + msg + ") : string(" + failed + "))"},
	})
	b, err := json.Marshal(struct {
		MaxFailed         int     `json:"maxFailed,omitempty"`
		MaxFailedFraction float64 `json:"maxFailedFraction,omitempty"`
	}{fe.MaxFailed, fe.MaxFailedFraction})
	if err != nil {
		return err
	}
	if t.Metadata.Annotations == nil {
		t.Metadata.Annotations = map[string]string{}
	}
	t.Metadata.Annotations[AnnotationTolerate] = string(b)
	return nil
}

// tolerance is the failure tolerance of the fan-out whose wrapper
// template is t (AnnotationTolerate), none when t has none.
func tolerance(t *wfv1.Template) *backends.Step {
	fe := &backends.ForEach{}
	if t != nil {
		if v, ok := t.Metadata.Annotations[AnnotationTolerate]; ok {
			_ = json.NewDecoder(strings.NewReader(v)).Decode(fe)
		}
	}
	return &backends.Step{ForEach: fe}
}
