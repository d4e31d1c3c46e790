package argo

import (
	"encoding/json"
	"errors"
	"strings"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"

	"github.com/sluice-ml/sluice/artifact"
	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/runstate"
)

// Argo evaluates a step's when itself and says only that the node was
// skipped. Watch words the skip as every backend does, with the values
// that decided it (backends.Condition.Explain): it reads the condition
// from AnnotationConditions and evaluates it again over the values the
// Workflow's status holds — the outputs of the steps mapped before it
// (the same outputs Status reports), the workflow's parameters and, for
// the exit handler, the run's outcome.

// encodeCondition writes c for AnnotationConditions: its JSON without the
// members that hold nothing (null, "" or []), which decoding restores as
// zero values. A Value member is a JSON constant and kept as it is, but
// for null: a comparison's Value that is not there is the constant null
// (see backends.Condition).
func encodeCondition(c backends.Condition) json.RawMessage {
	b, _ := json.Marshal(c) // plain data: strings, lists, JSON values
	var v any
	if json.Unmarshal(b, &v) != nil {
		return b
	}
	out, err := json.Marshal(dropEmpty(v))
	if err != nil {
		return b
	}
	return out
}

// dropEmpty removes the null, "" and [] members of the objects in v,
// leaving JSON constants (members named Value) whole.
func dropEmpty(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			empty := e == nil
			switch e := e.(type) {
			case string:
				empty = e == ""
			case []any:
				empty = len(e) == 0
			}
			switch {
			case empty && (k != "Value" || e == nil):
				delete(x, k)
			case k != "Value":
				x[k] = dropEmpty(e)
			}
		}
	case []any:
		for i := range x {
			x[i] = dropEmpty(x[i])
		}
	}
	return v
}

// errOutOfBand stands for a value Status cannot show: one a task stored
// out of band because it was too large to travel in a parameter
// (artifact.Promote). Reading it back takes the artifact store, and
// Status does no I/O; the skip message then gives the condition without
// values.
var errOutOfBand = errors.New("argo: the value was stored out of band")

// conditionFalse is the message of a step Argo skipped because its
// condition, raw from AnnotationConditions, is false.
func (m *mapper) conditionFalse(raw json.RawMessage) string {
	var text string
	if json.Unmarshal(raw, &text) == nil {
		// The condition's text alone, as versions before the values
		// were shown wrote it.
		return runstate.ConditionFalse(text, "")
	}
	var c backends.Condition
	if err := json.Unmarshal(raw, &c); err != nil {
		return runstate.ConditionFalse("(unreadable "+AnnotationConditions+")", "")
	}
	ok, why, err := c.Explain(m.value)
	if err != nil || ok {
		// A value Status cannot know, or that no longer makes the
		// condition false: the words without values rather than values
		// that did not decide.
		why = ""
	}
	return runstate.ConditionFalse(c.String(), why)
}

// value resolves a ref of a condition from the Workflow's status.
func (m *mapper) value(r backends.Ref) (json.RawMessage, error) {
	if m.params == nil {
		m.params = workflowParams(m.wf, m.textParams)
	}
	v, err := backends.Values{
		Params: m.params,
		Output: func(step string) (json.RawMessage, bool) {
			out, ok := m.outputs[step]
			return out, ok
		},
		Info: m.info,
		Meta: &backends.RunMeta{ID: m.wf.Name, Started: m.wf.CreationTimestamp.UTC(), Scheduled: scheduledTime(m.wf)},
		// No Resolve: a path into a promoted value is an error.
	}.Value(r)
	if err == nil && artifact.HasValues(v) {
		return nil, errOutOfBand
	}
	return v, err
}

// workflowParams returns the values of wf's parameters as JSON: those
// named in text (AnnotationTextParams) hold text, which it quotes; the
// others hold compact JSON, as Compile writes them.
func workflowParams(wf *wfv1.Workflow, text string) map[string]json.RawMessage {
	m := make(map[string]json.RawMessage, len(wf.Spec.Arguments.Parameters))
	isText := map[string]bool{}
	for n := range strings.SplitSeq(text, ",") {
		isText[n] = n != ""
	}
	for _, p := range wf.Spec.Arguments.Parameters {
		switch {
		case p.Value == nil:
		case isText[p.Name]:
			m[p.Name], _ = json.Marshal(p.Value.String())
		default:
			m[p.Name] = json.RawMessage(p.Value.String())
		}
	}
	return m
}
