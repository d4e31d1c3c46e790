package local

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/sluice-ml/sluice/task"
)

// TestRecordRendersWhatYAMLCannotReadAsIs: strings a program may write
// (a constant, a parameter, an env value) with characters YAML does not
// allow as is, and raw JSON escapes YAML lacks, made Compile fail on a
// pipeline Validate accepted ("yaml: control characters are not
// allowed", found by FuzzStringsAndEdges). The record now renders, and
// reads back as the same value.
func TestRecordRendersWhatYAMLCannotReadAsIs(t *testing.T) {
	for _, tc := range []struct{ name, text, input string }{
		{"DEL", "a\x7fb", "{\"s\":\"a\x7fb\"}"},
		{"C1Control", "\u0080\u009f", "{\"s\":\"\u0080\"}"},
		{"NEL", "x\u0085y", "{\"s\":\"x\u0085y\"}"},
		{"NELInAKey", "k", "{\"\u0085\":1}"},
		{"LineAndParagraphSeparators", "\u2028\u2029", "{\"s\":\"\u2028\u2029\"}"},
		{"NonCharacters", "\ufffe\uffff", "{\"s\":\"\uffff\"}"},
		{"EscapedSlash", "/", `{"s":"a\/b"}`},
		{"SurrogatePairEscape", "x", `{"s":"\ud83d\ude00 \uD83D\uDE00"}`},
		{"LoneSurrogateEscapes", "x", `{"s":"\uDFFF \ud800x \ud800\u0041"}`},
		{"AllowedAsIs", "é 😀 \ufffd", `{"s":"\u003c é \\u \" \u0085 😀"}`},
		// A key longer than YAML's implicit keys, as a constant map with
		// a long key makes it: rendered from the decoded JSON.
		{"LongKey", "x", `{"` + strings.Repeat("k", 2000) + `":[1,-2,1.5,12345678901234567890,"7",true,null,{}]}`},
		{"LongKeyAndDEL", "a\x7f", "{\"" + strings.Repeat("k", 1100) + "\":\"\x7f\"}"},
		{"DeepNesting", "x", strings.Repeat("[", 1500) + strings.Repeat("]", 1500)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &Record{Pipeline: "p", Steps: []RecordStep{{
				Name: "s", Kind: task.KindGo, Input: json.RawMessage(tc.input),
				Env: []task.EnvVar{{Name: "E", Value: tc.text}}, Args: []string{tc.text},
			}}}
			a := &compiled{record: rec}
			require.NoError(t, a.render())

			back, err := yaml.YAMLToJSON(a.doc)
			require.NoError(t, err, "%s", a.doc)
			var got, want Record
			require.NoError(t, json.Unmarshal(back, &got))
			j, err := json.Marshal(rec)
			require.NoError(t, err)
			require.NoError(t, json.Unmarshal(j, &want))
			var gotIn, wantIn any
			require.NoError(t, json.Unmarshal(got.Steps[0].Input, &gotIn))
			require.NoError(t, json.Unmarshal([]byte(tc.input), &wantIn))
			assert.Equal(t, wantIn, gotIn, "input")
			assert.Equal(t, tc.text, got.Steps[0].Env[0].Value)
			assert.Equal(t, tc.text, got.Steps[0].Args[0])
		})
	}
}

func TestYAMLSafeJSONLeavesPlainJSONAlone(t *testing.T) {
	for _, in := range []string{`{"a":1}`, `{"s":"\n\t\u0000\\\"x"}`, `[1,"\\/"]`, `"\\ud800"`} {
		assert.Equal(t, in, string(yamlSafeJSON([]byte(in))))
	}
}
