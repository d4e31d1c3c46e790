package placeholder_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/internal/placeholder"
)

func TestRender(t *testing.T) {
	in := map[string]json.RawMessage{"lr": json.RawMessage(`0.1`), "Data": json.RawMessage(`"s3://x y"`), "Debug": json.RawMessage(`true`)}
	goNames := map[string]string{"LR": "lr"}
	got, err := placeholder.Render("--lr={{.LR}} --data={{ .Data }} --debug={{.Debug}}", in, goNames)
	require.NoError(t, err)
	assert.Equal(t, "--lr=0.1 --data=s3://x y --debug=true", got)
	_, err = placeholder.Render("{{.Missing}}", in, goNames)
	assert.Error(t, err)
}

func TestNames(t *testing.T) {
	assert.Equal(t, []string{"LR", "Data"}, placeholder.Names("{{.LR}}-{{ .Data }}"))
	assert.Nil(t, placeholder.Names("no placeholders"))
}

func TestCheck(t *testing.T) {
	assert.NoError(t, placeholder.Check("--lr={{.LR}} {{ .Data }}"))
	assert.Error(t, placeholder.Check("{{if .LR}}x{{end}}"))
	assert.Error(t, placeholder.Check("{{.LR}}}}"))
}

func TestOutputs(t *testing.T) {
	s := "--model={{outputs.Model}} --in={{.Model}} {{ outputs.acc }}"
	assert.Equal(t, []string{"Model", "acc"}, placeholder.Outputs(s))
	assert.Equal(t, []string{"Model"}, placeholder.Names(s), "an output placeholder is no input field")
	assert.NoError(t, placeholder.Check(s))
	for _, bad := range []string{"{{outputs}}", "{{outputs.}}", "{{.outputs.model}}", "{{outputs.a.b}}", "{{Outputs.model}}", "{{ output.model }}"} {
		assert.Error(t, placeholder.Check(bad), bad)
	}

	paths := map[string]string{"Model": "/tmp/sluice/outputs/model", "acc": "/out/acc"}
	lookup := func(n string) (string, bool) { p, ok := paths[n]; return p, ok }
	got, err := placeholder.RenderOutputs(s, lookup)
	require.NoError(t, err)
	assert.Equal(t, "--model=/tmp/sluice/outputs/model --in={{.Model}} /out/acc", got)
	got, err = placeholder.RenderOutputs("x={{outputs.nope}}", lookup)
	assert.Error(t, err)
	assert.Equal(t, "x={{outputs.nope}}", got)

	// An input whose field is named "outputs" is still an input field.
	assert.Equal(t, []string{"outputs"}, placeholder.Names("{{.outputs}}"))
	assert.Nil(t, placeholder.Outputs("{{.outputs}}"))
}

// Neither kind of inserted value is read again as a placeholder.
func TestRenderAllOnePass(t *testing.T) {
	in := map[string]json.RawMessage{"A": json.RawMessage(`"{{outputs.m}}"`)}
	path := func(string) (string, bool) { return "/o/{{.A}}", true }
	got, err := placeholder.RenderAll("{{.A}} {{outputs.m}}", in, nil, path)
	require.NoError(t, err)
	assert.Equal(t, "{{outputs.m}} /o/{{.A}}", got)
}
