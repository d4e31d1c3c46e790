package task_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

func TestOutputPlaceholderValidate(t *testing.T) {
	ok := task.Container[In, Out]("c", "img").
		WithCommand("/bin/sh", "-c", `echo 1 > "{{outputs.Accuracy}}"`).
		WithArgs("--model={{ outputs.model_uri }}", "--data={{.Data}}").
		WithEnv("OUT", "{{outputs.Model}}").
		Spec()
	assert.NoError(t, ok.Validate())

	bad := task.Container[In, Out]("c", "img").WithArgs("--acc={{outputs.acuracy}}").WithEnv("M", "{{outputs.Data}}").Spec()
	err := bad.Validate()
	assert.Equal(t, []key{{"args[0]", pipeline.ErrorTypeNotFound}, {"env[0].value", pipeline.ErrorTypeNotFound}}, keys(err))
	fes := pipeline.FieldErrors(err)
	require.Len(t, fes, 2)
	assert.Contains(t, fes[0].Error(), `placeholder {{outputs.acuracy}}`)
	assert.Contains(t, fes[0].Error(), `did you mean "Accuracy"?`)
	assert.Contains(t, fes[1].Error(), `{{outputs.Data}}`, "an input field is no output")

	dotted := task.Container[In, Out]("c", "img").WithArgs("{{.outputs.model_uri}}").Spec()
	assert.Equal(t, []key{{"args[0]", pipeline.ErrorTypeInvalid}}, keys(dotted.Validate()))
}

func TestOutputPath(t *testing.T) {
	s := task.Container[In, Out]("c", "img").WithOutput("Model", task.OutputDir+"/m/uri.txt").Spec()
	for name, want := range map[string]string{"Model": task.OutputDir + "/m/uri.txt", "model_uri": task.OutputDir + "/m/uri.txt", "Accuracy": task.OutputDir + "/Accuracy"} {
		got, ok := s.OutputPath(name)
		assert.True(t, ok, name)
		assert.Equal(t, want, got, name)
	}
	_, ok := s.OutputPath("Nope")
	assert.False(t, ok)
	assert.Equal(t, []string{"Model", "acc"}, task.OutputPlaceholders("{{outputs.Model}} {{.LR}} {{outputs.acc}}"))
}
