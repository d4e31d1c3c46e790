package pipeline_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/pipeline"
)

// Identifiers in this file start with "pc" (parameter checks).

type pcConfig struct {
	LR     float64 `json:"lr"`
	Epochs int     `json:"epochs"`
	Tags   []string
	Inner  *pcInner `json:"inner,omitempty"`
	Hidden string   `json:"-"`
}

type pcInner struct {
	Depth uint8 `json:"depth"`
}

// pcPipeline declares one parameter of each shape the cases need.
func pcPipeline() *pipeline.Pipeline {
	p := pipeline.New("params", nil)
	pipeline.NewParam(p, "deploy", false)
	pipeline.NewParam(p, "epochs", 10)
	pipeline.NewParam(p, "small", int8(1))
	pipeline.NewParam(p, "count", uint16(1))
	pipeline.NewParam(p, "lr", 0.01)
	pipeline.NewParam(p, "ratio", float32(0.5))
	pipeline.NewParam(p, "name", "base")
	pipeline.NewParam(p, "tags", []string{"a"})
	pipeline.NewParam(p, "sizes", []int{1})
	pipeline.NewParam(p, "pair", [2]int{1, 2})
	pipeline.NewParam(p, "weights", map[string]float64{"a": 1})
	pipeline.NewParam(p, "cfg", pcConfig{LR: 0.1, Epochs: 3})
	pipeline.NewParam(p, "maybe", (*int)(nil))
	pipeline.NewParam(p, "blob", []byte("x"))
	pipeline.NewParam(p, "when", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	pipeline.NewParam(p, "extra", any(nil))
	return p
}

func TestValidateParamsRejects(t *testing.T) {
	for _, tc := range []struct {
		name, param, value string
		want               []vKey
		// detail holds words the message must contain: the parameter,
		// the type wanted, the value given, a suggestion.
		detail []string
	}{
		{"BoolWord", "deploy", "maybe", []vKey{vk("pipeline.params[deploy]", vInvalid)}, []string{"-p deploy=maybe", "bool: true or false", `"maybe"`}},
		{"BoolNull", "deploy", "null", []vKey{vk("pipeline.params[deploy]", vInvalid)}, []string{"null", "bool"}},
		{"BoolNumber", "deploy", "1", []vKey{vk("pipeline.params[deploy]", vInvalid)}, []string{"got 1"}},
		{"BoolQuoted", "deploy", `"true"`, []vKey{vk("pipeline.params[deploy]", vInvalid)}, []string{`got "true"`}},
		{"IntFraction", "epochs", "1.5", []vKey{vk("pipeline.params[epochs]", vInvalid)}, []string{"an integer (int)", "got 1.5"}},
		{"IntExponent", "epochs", "1e3", []vKey{vk("pipeline.params[epochs]", vInvalid)}, []string{"got 1e3"}},
		{"IntNull", "epochs", "null", []vKey{vk("pipeline.params[epochs]", vInvalid)}, []string{"null"}},
		{"IntWord", "epochs", "ten", []vKey{vk("pipeline.params[epochs]", vInvalid)}, []string{"not JSON"}},
		{"IntString", "epochs", `"10"`, []vKey{vk("pipeline.params[epochs]", vInvalid)}, []string{`got "10"`}},
		{"IntTooBig", "epochs", "99999999999999999999", []vKey{vk("pipeline.params[epochs]", vInvalid)}, nil},
		{"Int8Overflow", "small", "300", []vKey{vk("pipeline.params[small]", vInvalid)}, []string{"from -128 to 127"}},
		{"UintNegative", "count", "-1", []vKey{vk("pipeline.params[count]", vInvalid)}, []string{"non-negative", "at most 65535"}},
		{"Uint16Overflow", "count", "70000", []vKey{vk("pipeline.params[count]", vInvalid)}, nil},
		{"FloatWord", "lr", "fast", []vKey{vk("pipeline.params[lr]", vInvalid)}, []string{"a number (float64)", `"fast"`}},
		{"FloatNull", "lr", "null", []vKey{vk("pipeline.params[lr]", vInvalid)}, nil},
		{"FloatNaN", "lr", "NaN", []vKey{vk("pipeline.params[lr]", vInvalid)}, nil},
		{"Float32Overflow", "ratio", "1e40", []vKey{vk("pipeline.params[ratio]", vInvalid)}, nil},
		{"TrailingData", "lr", "0.1 0.2", []vKey{vk("pipeline.params[lr]", vInvalid)}, nil},
		{"ListUnquoted", "tags", "a,b", []vKey{vk("pipeline.params[tags]", vInvalid)}, []string{"a JSON list", "quote the whole value"}},
		{"ListNull", "tags", "null", []vKey{vk("pipeline.params[tags]", vInvalid)}, nil},
		{"ListOfWrongType", "tags", "[1]", []vKey{vk("pipeline.params[tags][0]", vInvalid)}, nil},
		{"ListElementNull", "sizes", "[1,null]", []vKey{vk("pipeline.params[sizes][1]", vInvalid)}, nil},
		{"ListTwoBadElements", "sizes", `[1,"x",true]`, []vKey{vk("pipeline.params[sizes][1]", vInvalid), vk("pipeline.params[sizes][2]", vInvalid)}, nil},
		{"ListGivenObject", "sizes", `{"a":1}`, []vKey{vk("pipeline.params[sizes]", vInvalid)}, nil},
		{"ArrayTooLong", "pair", "[1,2,3]", []vKey{vk("pipeline.params[pair]", vInvalid)}, []string{"at most 2"}},
		{"MapValueWrongType", "weights", `{"a":"x"}`, []vKey{vk("pipeline.params[weights][a]", vInvalid)}, nil},
		{"MapValueNull", "weights", `{"a":null}`, []vKey{vk("pipeline.params[weights][a]", vInvalid)}, []string{"got null"}},
		{"MapGivenList", "weights", `[1]`, []vKey{vk("pipeline.params[weights]", vInvalid)}, nil},
		{"StructUnknownKey", "cfg", `{"lr":0.1,"batch":32}`, []vKey{vk("pipeline.params[cfg].batch", vNotFound)}, []string{`"batch"`, `"lr", "epochs", "Tags", "inner"`}},
		{"StructMisspelledKey", "cfg", `{"lrr":0.1}`, []vKey{vk("pipeline.params[cfg].lrr", vNotFound)}, []string{`did you mean "lr"?`}},
		{"StructKeyWrongCase", "cfg", `{"LR":0.1}`, []vKey{vk("pipeline.params[cfg].LR", vNotFound)}, []string{`did you mean "lr"?`}},
		{"StructGoNameNotKey", "cfg", `{"Epochs":1}`, []vKey{vk("pipeline.params[cfg].Epochs", vNotFound)}, []string{`did you mean "epochs"?`}},
		{"StructIgnoredField", "cfg", `{"Hidden":"x"}`, []vKey{vk("pipeline.params[cfg].Hidden", vNotFound)}, nil},
		{"StructWrongType", "cfg", `{"epochs":"ten"}`, []vKey{vk("pipeline.params[cfg].epochs", vInvalid)}, []string{"-p cfg=", "an integer", `got "ten"`}},
		{"StructNestedKey", "cfg", `{"inner":{"dept":1}}`, []vKey{vk("pipeline.params[cfg].inner.dept", vNotFound)}, []string{`did you mean "depth"?`}},
		{"StructNestedOverflow", "cfg", `{"inner":{"depth":256}}`, []vKey{vk("pipeline.params[cfg].inner.depth", vInvalid)}, nil},
		{"StructNull", "cfg", "null", []vKey{vk("pipeline.params[cfg]", vInvalid)}, []string{"leave the parameter out"}},
		{"StructGivenList", "cfg", "[]", []vKey{vk("pipeline.params[cfg]", vInvalid)}, nil},
		{"StructFieldNull", "cfg", `{"lr":null}`, []vKey{vk("pipeline.params[cfg].lr", vInvalid)}, nil},
		{"StructTwoProblems", "cfg", `{"lrr":1,"epochs":true}`, []vKey{vk("pipeline.params[cfg].epochs", vInvalid), vk("pipeline.params[cfg].lrr", vNotFound)}, nil},
		{"PointerWord", "maybe", "some", []vKey{vk("pipeline.params[maybe]", vInvalid)}, []string{"or null"}},
		{"BytesNotBase64", "blob", `"***"`, []vKey{vk("pipeline.params[blob]", vInvalid)}, nil},
		{"BytesList", "blob", `[1]`, []vKey{vk("pipeline.params[blob]", vInvalid)}, []string{"base64"}},
		{"TimeNotRFC3339", "when", `"yesterday"`, []vKey{vk("pipeline.params[when]", vInvalid)}, []string{"time.Time in its JSON form"}},
		{"MisspelledName", "epoch", "3", []vKey{vk("pipeline.params[epoch]", vNotFound)}, []string{`did you mean "epochs"?`}},
		{"UnknownName", "batch_size", "3", []vKey{vk("pipeline.params[batch_size]", vNotFound)}, []string{"it has: deploy, epochs"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := pcPipeline().ValidateParams(map[string]string{tc.param: tc.value})
			assert.Equal(t, tc.want, vKeys(err), "%v", err)
			for _, w := range tc.detail {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestValidateParamsAccepts(t *testing.T) {
	for _, tc := range []struct{ param, value, want string }{
		{"deploy", "true", "true"},
		{"epochs", "3", "3"},
		{"small", "-128", "-128"},
		{"count", "65535", "65535"},
		{"lr", "1e-3", "0.001"},
		{"name", "null", `"null"`}, // a string parameter takes the text as is
		{"name", "", `""`},
		{"tags", "[]", "[]"},
		{"cfg", `{"lr":0.2,"Tags":["x"],"inner":null}`, `{"lr":0.2,"epochs":0,"Tags":["x"]}`},
		{"maybe", "null", "null"},
		{"maybe", "4", "4"},
		{"when", `"2026-02-03T00:00:00Z"`, `"2026-02-03T00:00:00Z"`},
		{"extra", `{"any":[1,"x"]}`, `{"any":[1,"x"]}`},
	} {
		t.Run(tc.param+"="+tc.value, func(t *testing.T) {
			plan, err := pcPipeline().Plan(map[string]string{tc.param: tc.value})
			require.NoError(t, err)
			for _, pm := range plan.Params {
				if pm.Name == tc.param {
					assert.JSONEq(t, tc.want, string(pm.Value))
					return
				}
			}
			t.Fatalf("no parameter %q in the plan", tc.param)
		})
	}
}

func TestValidateParamsMessageNamesParameterTypeAndValue(t *testing.T) {
	err := pcPipeline().ValidateParams(map[string]string{"deploy": "maybe"})
	require.Error(t, err)
	msg := err.Error()
	assert.False(t, strings.Contains(msg, "invalid character"), "the decoder's message leaks: %s", msg)
	assert.Equal(t, `pipeline.params[deploy]: Invalid "maybe": -p deploy=maybe: want a bool: true or false, got "maybe", which is not JSON`, msg)
}

func TestExecLintParamMessages(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"lint", "-p", "lr=fast"}, `pipeline.params[lr]: Invalid "fast": -p lr=fast: want a number (float64), got "fast", which is not JSON` + "\n"},
		{[]string{"lint", "-p", "lr=null"}, `pipeline.params[lr]: Invalid "null": -p lr=null: want a number (float64), got null; null is no value of float64 (leave the parameter out to use its default)` + "\n"},
		{[]string{"lint", "-p", "Lr=0.1"}, `pipeline.params[Lr]: NotFound "Lr": the pipeline declares no such parameter; it has: lr; did you mean "lr"?` + "\n"},
	} {
		t.Run(strings.Join(tc.args[1:], " "), func(t *testing.T) {
			code, out, errs := exec(t, validPipeline(), tc.args)
			assert.Equal(t, pipeline.ExitInvalid, code)
			assert.Empty(t, out)
			assert.Equal(t, tc.want, errs)
		})
	}
}
