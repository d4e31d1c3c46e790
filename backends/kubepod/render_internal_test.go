package kubepod

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	yamlv2 "go.yaml.in/yaml/v2"
	"sigs.k8s.io/yaml"
)

// jsonToYAML is Render's way from JSON to YAML, without its pruning.
func jsonToYAML(j []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return yamlv2.Marshal(yamlNumbers(v))
}

// jsonToYAML writes what sigs.k8s.io/yaml.JSONToYAML writes, byte for
// byte, for JSON that json.Marshal produces. (Every golden file of the
// backends is a second check: they were written by JSONToYAML.)
func TestJSONToYAMLMatchesSigsYAML(t *testing.T) {
	for _, j := range []string{
		`{}`, `[]`, `null`, `"x"`, `1`,
		`{"ints":[0,-0,1,-1,42,2147483648,9223372036854775807,-9223372036854775808,9223372036854775808,18446744073709551615,18446744073709551616]}`,
		`{"floats":[0.5,-0.5,1.0,1e3,1E-7,1.5e+300,-2.5e-300,123456789012345678901234567890,0.1]}`,
		`{"strings":["true","false","null","~","yes","no","on","off","1","0x1F","1e3","-",": ","#","- x","'q'","\"dq\"","",
			" lead","trail ","a\nb","a\n","\t","\u00e9t\u00e9","\u2028","😀","{{tasks.x.outputs.parameters.o}}","{{=a ? 'b' : 'c'}}","*a","&a","!t","%p","@x","` + "`" + `x","[1]","{a: 1}"]}`,
		`{"long":"` + strings.Repeat("word ", 60) + `","longer":"` + strings.Repeat("x", 300) + `"}`,
		`{"a10":1,"a9":2,"b":{"z":[],"y":{},"x":null},"A":3,"_":4,"-":5,"1":6,"10":7,"2":8}`,
		`{"nested":[[1,[2,[3]]],{"k":[{"k":"v"}]}],"bool":[true,false]}`,
	} {
		want, err := yaml.JSONToYAML([]byte(j))
		require.NoError(t, err, j)
		got, err := jsonToYAML([]byte(j))
		require.NoError(t, err, j)
		assert.Equal(t, string(want), string(got), j)
	}
	_, err := jsonToYAML([]byte(`{"a":`))
	assert.Error(t, err)
}

func FuzzJSONToYAML(f *testing.F) {
	for _, s := range []string{`{"a":[1,2.5,"x",null,true,{}]}`, `{"k":"a\nb","n":1e400}`, `["0o17","0b1","+1",".5","1_000"]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var v any
		if json.Unmarshal([]byte(s), &v) != nil {
			return
		}
		j, err := json.Marshal(v) // what render feeds it: json.Marshal output
		if err != nil {
			return
		}
		want, err := yaml.JSONToYAML(j)
		if err != nil {
			return // go-yaml cannot read it; jsonToYAML may do better
		}
		got, err := jsonToYAML(j)
		require.NoError(t, err)
		assert.Equal(t, string(want), string(got), string(j))
	})
}
