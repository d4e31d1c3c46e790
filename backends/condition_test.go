package backends_test

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/backends"
)

func TestConditionExplain(t *testing.T) {
	step := func(path string) *backends.Ref {
		return &backends.Ref{Kind: backends.RefStep, Step: "eval", Path: []string{path}}
	}
	param := func(name string) *backends.Ref { return &backends.Ref{Kind: backends.RefParam, Param: name} }
	acc, ready, name, obj, long, none := step("ndcg"), step("ready"), step("name"), step("obj"), step("long"), step("none")
	min, force := param("min_ndcg"), param("force")
	values := map[string]string{
		"eval.ndcg": `0.463`, "params.min_ndcg": `0.9`, "eval.ready": `false`, "eval.name": `"resnet"`,
		"eval.obj": `{"b": 1, "a": "<x>"}`, "eval.long": `"` + strings.Repeat("ab", 40) + `"`, "eval.none": `null`,
		"params.force": `false`,
	}
	value := func(r backends.Ref) (json.RawMessage, error) {
		if r.Kind == backends.RefConst {
			return r.Value, nil
		}
		return json.RawMessage(values[r.String()]), nil
	}
	cmp := func(op string, r *backends.Ref, v string) backends.Condition {
		return backends.Condition{Op: op, Ref: r, Value: json.RawMessage(v)}
	}
	isTrue := func(r *backends.Ref) backends.Condition { return backends.Condition{Op: "true", Ref: r} }
	not := func(c backends.Condition) backends.Condition {
		return backends.Condition{Op: "not", Args: []backends.Condition{c}}
	}
	and := func(cs ...backends.Condition) backends.Condition { return backends.Condition{Op: "and", Args: cs} }
	or := func(cs ...backends.Condition) backends.Condition { return backends.Condition{Op: "or", Args: cs} }

	for _, tc := range []struct {
		name string
		c    backends.Condition
		ok   bool
		why  string
	}{
		{"against a parameter", backends.Condition{Op: ">=", Ref: acc, Other: min}, false, "eval.ndcg = 0.463 < params.min_ndcg = 0.9"},
		{"against a constant", cmp(">=", acc, `0.9`), false, "eval.ndcg = 0.463 < 0.9"},
		{"le false", cmp("<=", acc, `0.4`), false, "eval.ndcg = 0.463 > 0.4"},
		{"ne false", cmp("!=", acc, `0.463`), false, "eval.ndcg = 0.463 == 0.463"},
		{"eq false", cmp("==", name, `"vit"`), false, `eval.name = "resnet" != "vit"`},
		{"ordered strings", cmp(">", name, `"vit"`), false, `eval.name = "resnet" < "vit"`},
		{"true when it holds", cmp("<", acc, `0.5`), true, "eval.ndcg = 0.463 < 0.5"},
		{"bool", isTrue(ready), false, "eval.ready = false"},
		{"constant ref", cmp("==", &backends.Ref{Kind: backends.RefConst, Value: json.RawMessage(`true`)}, `false`), false, "true != false"},
		{"null", backends.Condition{Op: "==", Ref: none}, true, "eval.none = null == null"},
		{"object: compact, keys sorted, no HTML escapes", cmp("==", obj, `{"a":"<x>","b":2}`), false, `eval.obj = {"a":"<x>","b":1} != {"a":"<x>","b":2}`},
		{"long value cut short", cmp("==", long, `"x"`), false, `eval.long = "` + strings.Repeat("ab", 18) + `a…" != "x"`},
		{"not: its operand", not(cmp("<", acc, `0.5`)), false, "eval.ndcg = 0.463 < 0.5"},
		{"and: its first false operand", and(cmp("<", acc, `0.5`), isTrue(ready), isTrue(force)), false, "eval.ready = false"},
		{"and true: every operand", not(and(cmp("<", acc, `0.5`), not(isTrue(ready)))), false, "eval.ndcg = 0.463 < 0.5; eval.ready = false"},
		{"or: every operand", or(isTrue(force), and(cmp("<", acc, `0.5`), not(cmp("<", acc, `0.5`)))), false, "params.force = false; eval.ndcg = 0.463 < 0.5"},
		{"or true: its first true operand", or(isTrue(force), not(isTrue(ready)), cmp("<", acc, `0.5`)), true, "eval.ready = false"},
		{"a fact once", or(isTrue(ready), isTrue(ready)), false, "eval.ready = false"},
		{"empty and", and(), true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, why, err := tc.c.Explain(value)
			require.NoError(t, err)
			assert.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.why, why)
			eval, err := tc.c.Eval(value)
			require.NoError(t, err)
			assert.Equal(t, ok, eval, "Explain and Eval agree")
		})
	}

	_, _, err := cmp("<", name, `3`).Explain(value)
	assert.ErrorContains(t, err, "compare string")
	_, _, err = cmp("<", obj, `{}`).Explain(value)
	assert.ErrorContains(t, err, "is not ordered")
	_, _, err = isTrue(acc).Explain(value)
	assert.ErrorContains(t, err, "is not a bool")
	_, _, err = cmp("~", acc, `1`).Explain(value)
	assert.ErrorContains(t, err, "unknown operator")
}

func TestMaxExplainedValue(t *testing.T) {
	v := json.RawMessage(`"` + strings.Repeat("é", 100) + `"`)
	r := backends.Ref{Kind: backends.RefParam, Param: "p"}
	_, why, err := backends.Condition{Op: "==", Ref: &r, Value: v}.Explain(func(backends.Ref) (json.RawMessage, error) { return v, nil })
	require.NoError(t, err)
	side, _, _ := strings.Cut(why, " == ")
	got := strings.TrimPrefix(side, "params.p = ")
	assert.Equal(t, backends.MaxExplainedValue, utf8.RuneCountInString(got), "cut on a character, not a byte")
	assert.True(t, strings.HasSuffix(got, `…"`), "a string stays quoted: %s", got)
	_, why, err = backends.Condition{Op: "==", Ref: &r, Value: json.RawMessage(`1`)}.Explain(func(backends.Ref) (json.RawMessage, error) {
		return json.RawMessage(`[` + strings.Repeat(`1,`, 50) + `1]`), nil
	})
	require.NoError(t, err)
	assert.Equal(t, "params.p = [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,… != 1", why)
}
