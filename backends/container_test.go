package backends_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/task"
)

type renderIn struct {
	Data string `json:"data"`
	N    int
}

type renderOut struct {
	Model string `json:"model"`
	Acc   float64
}

// Both kinds of placeholder are filled in one pass, by Go or JSON name:
// the outputs with their container paths, or where outputPath says; an
// input value that looks like a placeholder is not read again.
func TestRenderCommandOutputs(t *testing.T) {
	spec := task.Container[renderIn, renderOut]("t", "img").
		WithCommand("/bin/sh", "-c", "run").
		WithArgs("--data={{.Data}}", "--n={{.N}}", "--model={{outputs.Model}}", "{{outputs.Acc}}").
		WithEnv("OUT", "{{outputs.model}}").
		WithOutput("Acc", task.OutputDir+"/metrics/acc").Spec()
	require.NoError(t, spec.Validate())
	in := json.RawMessage(`{"data":"{{outputs.model}}","N":3}`)

	cmd, args, env, err := backends.RenderCommand(spec, in)
	require.NoError(t, err)
	assert.Equal(t, []string{"/bin/sh", "-c", "run"}, cmd)
	assert.Equal(t, []string{"--data={{outputs.model}}", "--n=3", "--model=/tmp/sluice/outputs/model", "/tmp/sluice/outputs/metrics/acc"}, args)
	assert.Equal(t, []task.EnvVar{{Name: "OUT", Value: "/tmp/sluice/outputs/model"}}, env)

	_, args, env, err = backends.RenderCommandWith(spec, in, func(p string) string { return "/host/attempt" + p })
	require.NoError(t, err)
	assert.Equal(t, []string{"--data={{outputs.model}}", "--n=3", "--model=/host/attempt/tmp/sluice/outputs/model", "/host/attempt/tmp/sluice/outputs/metrics/acc"}, args)
	assert.Equal(t, "/host/attempt/tmp/sluice/outputs/model", env[0].Value)

	// Output placeholders alone need no object input.
	only := task.Container[renderIn, renderOut]("t", "img").WithArgs("{{outputs.model}}").Spec()
	_, args, _, err = backends.RenderCommand(only, json.RawMessage(`null`))
	require.NoError(t, err)
	assert.Equal(t, []string{"/tmp/sluice/outputs/model"}, args)
}
