package pipeline_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/sluice-ml/sluice/backends/backendtest"
	"github.com/sluice-ml/sluice/backends/kubejob"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/pipeline"
)

// lint prints what compile would warn about, per backend: here a task
// that runs as root, whose pod needs Pod Security "baseline".
func TestLintPrintsWarnings(t *testing.T) {
	kj := kubejob.New(nil, &kubejob.Options{Pod: kubepod.Options{Image: "registry.example/prog:1"}})
	code, stdout, stderr := exec(t, backendtest.Security("registry.example/sh:1"), []string{"lint"}, kj)
	assert.Equal(t, pipeline.ExitOK, code, stderr)
	assert.Contains(t, stdout, "security: valid, 3 steps")
	assert.Contains(t, stderr, `security lint: kubejob: warning: step "root": its security override (task.WithSecurity) fails Pod Security "restricted"`)
	assert.NotContains(t, stderr, `step "uid"`)

	code, _, stderr = exec(t, backendtest.Security("registry.example/sh:1"), []string{"compile", "-backend", "kubejob"}, kj)
	assert.Equal(t, pipeline.ExitOK, code, stderr)
	assert.Contains(t, stderr, `security: warning: step "root"`)
}
