package argo_test

import (
	"testing"

	"github.com/sluice-ml/sluice/backends/argo"
	"github.com/sluice-ml/sluice/backends/backendtest"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/pipeline"
)

// Lint reports what Argo cannot run as field errors, all at once; Compile
// returns the same errors and lint prints them, one per line.
func TestLintReportsTaskNameCollisions(t *testing.T) {
	dup := func(name string) backendtest.LintKey {
		return backendtest.LintKey{Field: "pipeline.tasks[" + name + "].name", Type: pipeline.ErrorTypeDuplicate, Value: name}
	}
	for _, tc := range []struct {
		name  string
		build func(p *pipeline.Pipeline)
		want  []backendtest.LintKey // nil: lint passes
	}{
		{"RenamedLikeAnotherStep", func(p *pipeline.Pipeline) {
			pipeline.Add(p, inc.WithName("1a"), one{})
			pipeline.Add(p, inc.WithName("s-1a"), one{})
		}, []backendtest.LintKey{dup("1a")}},
		{"RenamedLikeTheExitHandler", func(p *pipeline.Pipeline) {
			pipeline.Add(p, inc.WithName("2b"), one{})
			pipeline.OnExit(p, inc.WithName("s-2b"), one{})
		}, []backendtest.LintKey{dup("2b")}},
		{"EveryCollisionAtOnce", func(p *pipeline.Pipeline) {
			pipeline.Add(p, inc.WithName("s-1a"), one{})
			pipeline.Add(p, inc.WithName("1a"), one{})
			pipeline.Add(p, inc.WithName("s-9"), one{})
			pipeline.OnExit(p, inc.WithName("9"), one{})
		}, []backendtest.LintKey{dup("1a"), dup("9")}},
		{"NoStep", func(*pipeline.Pipeline) {}, []backendtest.LintKey{{Field: "pipeline.tasks", Type: pipeline.ErrorTypeRequired}}},
		{"OnlyAnExitHandler", func(p *pipeline.Pipeline) {
			pipeline.OnExit(p, inc.WithName("1a"), one{})
		}, []backendtest.LintKey{{Field: "pipeline.tasks", Type: pipeline.ErrorTypeRequired}}},
		{"RenamedAlone", func(p *pipeline.Pipeline) {
			pipeline.Add(p, inc.WithName("1a"), one{})
			pipeline.Add(p, inc.WithName("s-1b"), one{})
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := pipeline.New("u", nil)
			tc.build(p)
			backendtest.CheckLint(t, p, argo.New(nil, &argo.Options{Pod: kubepod.Options{Image: testImage, Command: testCommand}}), tc.want)
		})
	}
}
