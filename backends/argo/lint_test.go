package argo_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/sluice-ml/sluice/backends/argo"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/pipeline"
)

// lint reports what Compile on Argo would reject, not only compile.
func TestLintReportsTaskNameCollisions(t *testing.T) {
	p := pipeline.New("u", nil)
	pipeline.Add(p, inc.WithName("1a"), one{})
	pipeline.Add(p, inc.WithName("s-1a"), one{})
	be := argo.New(nil, &argo.Options{Pod: kubepod.Options{Image: testImage, Command: testCommand}})
	var out, errb bytes.Buffer
	code := pipeline.Exec(t.Context(), p, []string{"lint"}, &out, &errb, be)
	assert.Equal(t, pipeline.ExitInvalid, code)
	assert.Equal(t, "u lint: pipeline: compile \"u\" with argo: argo: step \"1a\" would be renamed \"s-1a\", the name of another step; rename one of them: unsupported operation\n", errb.String())
	assert.Empty(t, out.String())

	q := pipeline.New("u", nil)
	pipeline.Add(q, inc.WithName("1a"), one{})
	errb.Reset()
	code = pipeline.Exec(t.Context(), q, []string{"lint"}, &out, &errb, be)
	assert.Equal(t, pipeline.ExitOK, code, errb.String())
}
