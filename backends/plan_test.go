package backends_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/backends"
)

func TestInputResolveAndRender(t *testing.T) {
	in := backends.Input{
		Template: json.RawMessage(`{"Data":` + backends.Placeholder(0) + `,"LR":` + backends.Placeholder(1) + `,"Again":` + backends.Placeholder(0) + `,"S":"{\"$sluice\":0}"}`),
		Refs:     []backends.Ref{{Kind: backends.RefStep, Step: "prep", Path: []string{"rows"}}, {Kind: backends.RefParam, Param: "lr"}},
	}
	got, err := in.Resolve(func(r backends.Ref) (json.RawMessage, error) {
		switch r.Kind {
		case backends.RefStep:
			return backends.Select(json.RawMessage(`{"rows":12,"cols":3}`), r.Path)
		default:
			return json.RawMessage(`0.5`), nil
		}
	})
	require.NoError(t, err)
	// A placeholder inside a JSON string is escaped, so it is never replaced.
	assert.JSONEq(t, `{"Data":12,"LR":0.5,"Again":12,"S":"{\"$sluice\":0}"}`, string(got))

	argo, err := in.Render(func(i int) (string, error) { return "{{inputs.parameters.p" + string(rune('0'+i)) + "}}", nil })
	require.NoError(t, err)
	assert.Equal(t, `{"Data":{{inputs.parameters.p0}},"LR":{{inputs.parameters.p1}},"Again":{{inputs.parameters.p0}},"S":"{\"$sluice\":0}"}`, argo)

	_, err = in.Resolve(func(backends.Ref) (json.RawMessage, error) { return nil, errors.New("boom") })
	assert.EqualError(t, err, "boom")
	_, err = backends.Input{Template: json.RawMessage(`{"a":` + backends.Placeholder(3) + `}`)}.Resolve(nil)
	assert.Error(t, err, "a placeholder without a ref")
}

func TestSelect(t *testing.T) {
	v := json.RawMessage(`{"a":{"b":[1,2]},"c":null}`)
	got, err := backends.Select(v, []string{"a", "b"})
	require.NoError(t, err)
	assert.JSONEq(t, `[1,2]`, string(got))
	got, err = backends.Select(v, []string{"missing"})
	require.NoError(t, err)
	assert.Equal(t, "null", string(got))
	_, err = backends.Select(v, []string{"a", "b", "c"})
	assert.Error(t, err)
}

func TestConditionEval(t *testing.T) {
	acc := backends.Ref{Kind: backends.RefStep, Step: "eval", Path: []string{"acc"}}
	min := backends.Ref{Kind: backends.RefParam, Param: "min"}
	ready := backends.Ref{Kind: backends.RefStep, Step: "eval", Path: []string{"ready"}}
	name := backends.Ref{Kind: backends.RefStep, Step: "eval", Path: []string{"name"}}
	values := map[string]string{"eval.acc": `0.93`, "params.min": `0.9`, "eval.ready": `true`, "eval.name": `"resnet"`}
	value := func(r backends.Ref) (json.RawMessage, error) { return json.RawMessage(values[r.String()]), nil }

	for _, tc := range []struct {
		c    backends.Condition
		want bool
		str  string
	}{
		{backends.Condition{Op: ">=", Ref: &acc, Value: json.RawMessage(`0.9`)}, true, "eval.acc >= 0.9"},
		{backends.Condition{Op: "<", Ref: &acc, Other: &min}, false, "eval.acc < params.min"},
		{backends.Condition{Op: ">", Ref: &acc, Other: &min}, true, "eval.acc > params.min"},
		{backends.Condition{Op: "true", Ref: &ready}, true, "eval.ready"},
		{backends.Condition{Op: "==", Ref: &name, Value: json.RawMessage(`"resnet"`)}, true, `eval.name == "resnet"`},
		{backends.Condition{Op: "!=", Ref: &name, Value: json.RawMessage(`"vit"`)}, true, `eval.name != "vit"`},
		{backends.Condition{Op: "and", Args: []backends.Condition{
			{Op: "true", Ref: &ready},
			{Op: "not", Args: []backends.Condition{{Op: "<=", Ref: &acc, Value: json.RawMessage(`0.5`)}}},
		}}, true, "(eval.ready and not eval.acc <= 0.5)"},
		{backends.Condition{Op: "or", Args: []backends.Condition{
			{Op: "==", Ref: &acc, Value: json.RawMessage(`1`)},
			{Op: "<", Ref: &acc, Value: json.RawMessage(`0.5`)},
		}}, false, "(eval.acc == 1 or eval.acc < 0.5)"},
	} {
		t.Run(tc.str, func(t *testing.T) {
			got, err := tc.c.Eval(value)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.str, tc.c.String())
		})
	}

	_, err := backends.Condition{Op: "<", Ref: &name, Value: json.RawMessage(`3`)}.Eval(value)
	assert.Error(t, err, "a string is not compared with a number")
	_, err = backends.Condition{Op: "true", Ref: &acc}.Eval(value)
	assert.Error(t, err, "a number is not a bool")
	refs := backends.Condition{Op: "<", Ref: &acc, Other: &min}.Refs()
	assert.Equal(t, []backends.Ref{acc, min}, refs)
}

func TestPhaseDoneAndStatusClone(t *testing.T) {
	for p, done := range map[backends.Phase]bool{
		backends.PhasePending: false, backends.PhaseRunning: false, backends.PhaseSucceeded: true,
		backends.PhaseFailed: true, backends.PhaseSkipped: true, backends.PhaseCached: true, backends.PhaseCanceled: true,
	} {
		assert.Equal(t, done, p.Done(), p)
	}
	st := &backends.RunStatus{Steps: []backends.StepStatus{{Name: "a", Output: json.RawMessage(`1`), Instances: []backends.StepStatus{{Name: "a", Attempts: []backends.Attempt{{Number: 1}}}}}}}
	c := st.Clone()
	c.Steps[0].Output[0] = '2'
	c.Steps[0].Instances[0].Attempts[0].Number = 9
	assert.Equal(t, "1", string(st.Step("a").Output))
	assert.Equal(t, 1, st.Steps[0].Instances[0].Attempts[0].Number)
	assert.Nil(t, st.Step("b"))
}

func TestInvokeArgs(t *testing.T) {
	assert.Equal(t, []string{"task", "-step", "train", "-input", `{"a":1}`}, backends.InvokeArgs("train", `{"a":1}`, ""))
	assert.Equal(t, []string{"task", "-step", "t", "-input", "{}", "-output-file", backends.TerminationLog}, backends.InvokeArgs("t", "{}", backends.TerminationLog))
}

func TestNameOf(t *testing.T) {
	assert.Equal(t, "custom", backends.NameOf(&named{}))
	assert.Equal(t, "backends_test", backends.NameOf(&unnamed{}), "the package name, without Name")
}

type named struct{ unnamed }

func (named) Name() string { return "custom" }

type unnamed struct{}

func (*unnamed) Compile(context.Context, *backends.Plan, *backends.CompileOptions) (backends.Artifact, error) {
	return nil, nil
}
