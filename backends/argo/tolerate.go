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

// tolerateTask is the DAG task of a tolerant fan-out's wrapper that
// fails the wrapper when more instances failed than it tolerates.
const tolerateTask = "tolerate"

// tolerant reports whether fan-out step s tolerates failed instances.
func tolerant(s *backends.Step) bool {
	fe := s.ForEach
	return fe != nil && (fe.MaxFailed > 0 || fe.MaxFailedFraction > 0)
}

// tolerate makes t, the wrapper DAG of tolerant fan-out step s (see
// eachTemplate), go on when instances fail and fail when more than
// runstate.Tolerated of them did, without a pod:
//
//   - Argo v3.7 aggregates the outputs of the Succeeded children only, in
//     loop order, so the number of values of an aggregated output
//     parameter (countParam, which every succeeded instance has) is the
//     number of instances that succeeded; when none did, Argo leaves
//     "tasks.each.outputs.parameters" the JSON text "[]" instead of a
//     map;
//   - the task tolerateTask runs after the loop whatever its end (its
//     depends names every result: Argo v3.7 rejects continueOn in a DAG
//     that uses depends); its when is true, or calls sprig.fail when
//     more instances failed than tolerated: Argo then marks the task's
//     node Error (a failed expression in a resolved when); when true, it
//     runs a suspend template of duration 0, which succeeds at once
//     without a pod;
//   - a DAG's phase is its leaves': a leaf that succeeded decides its
//     branch (a Skipped one would inherit the loop's failure), so the
//     wrapper succeeds, or ends Error like any failed DAG when
//     tolerateTask errs, and the tasks after the fan-out are omitted
//     as after any failed step.
//
// The tolerance is computed at run time from the number of items, as
// runstate.Tolerated does.
func (c *compiler) tolerate(s *backends.Step, t *wfv1.Template, countParam string) error {
	fe := s.ForEach
	n := "len(fromJSON(inputs.parameters.inputs))"
	params := member("tasks", eachTask) + ".outputs.parameters"
	ok := "(type(" + params + ") == 'string' ? 0 : len(fromJSON(" + taskOutput(eachTask, countParam) + " ?? '[]')))"
	failed := "(" + n + " - " + ok + ")"
	// runstate.Tolerated: MaxFailed, or the fraction of the count rounded
	// down (int truncates a positive float), whichever is larger.
	tol := strconv.Itoa(fe.MaxFailed)
	if f := fe.MaxFailedFraction; f > 0 {
		frac := "int(" + strconv.FormatFloat(f, 'f', -1, 64) + " * " + n + " + 0.000000001)"
		tol = frac
		if fe.MaxFailed > 0 {
			tol = "(" + strconv.Itoa(fe.MaxFailed) + " > " + frac + " ? " + strconv.Itoa(fe.MaxFailed) + " : " + frac + ")"
		}
	}
	msg := "string(" + failed + ") + ' of ' + string(" + n + ") + ' instances failed, more than the ' + string(" + tol + ") + ' tolerated'"
	noop, err := c.addTemplate("noop", wfv1.Template{Suspend: &wfv1.SuspendTemplate{Duration: "0"}})
	if err != nil {
		return err
	}
	e := eachTask + "."
	t.DAG.Tasks = append(t.DAG.Tasks, wfv1.DAGTask{
		Name:     tolerateTask,
		Template: noop,
		Depends:  e + "Succeeded || " + e + "Skipped || " + e + "Failed || " + e + "Errored",
		When:     exprTag(n + " == 0 || " + failed + " <= " + tol + " ? true : sprig.fail(" + msg + ")"),
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
