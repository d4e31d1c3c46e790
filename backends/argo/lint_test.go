package argo_test

import (
	"testing"
	"time"

	"github.com/sluice-ml/sluice/backends/argo"
	"github.com/sluice-ml/sluice/backends/backendtest"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
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
		{"FanOutTolerance", func(p *pipeline.Pipeline) {
			pipeline.ForEach(p, inc.WithName("each"), pipeline.Const([]int{1, 2}), func(pipeline.Ref[int]) one { return one{} }).Tolerate(1)
			pipeline.ForEach(p, inc.WithName("frac"), pipeline.Const([]int{1, 2}), func(pipeline.Ref[int]) one { return one{} }).TolerateFraction(0.5)
			pipeline.ForEach(p, square.WithName("sq"), pipeline.Const([]int{1, 2}), func(x pipeline.Ref[int]) sqIn { return sqIn{X: x} }).Tolerate(1)
		}, nil},
		{"ContainerFanOutToleranceWithoutOutputs", func(p *pipeline.Pipeline) {
			ctr := task.Container[struct{}, struct{}]("ctr", "registry.example/ctr:1").WithCommand("/ctr")
			pipeline.ForEach(p, ctr.WithName("each"), pipeline.Const([]int{1, 2}), func(pipeline.Ref[int]) struct{} { return struct{}{} }).Tolerate(1)
			pipeline.ForEach(p, ctr.WithName("frac"), pipeline.Const([]int{1, 2}), func(pipeline.Ref[int]) struct{} { return struct{}{} }).TolerateFraction(0.5)
		}, []backendtest.LintKey{
			{Field: "pipeline.tasks[each].forEach.maxFailed", Type: pipeline.ErrorTypeInvalid, Value: 1},
			{Field: "pipeline.tasks[frac].forEach.maxFailedFraction", Type: pipeline.ErrorTypeInvalid, Value: 0.5},
		}},
		{"RetryArgoCannotHonor", func(p *pipeline.Pipeline) {
			pipeline.Add(p, inc.WithRetry(task.Retry{App: 1, Backoff: task.Backoff{Initial: time.Second, Factor: 1.5}, PendingTimeout: time.Minute}), one{})
			pipeline.Add(p, inc.WithName("whole").WithRetry(task.Retry{App: 1, Backoff: task.Backoff{Initial: time.Second, Factor: 3}}), one{})
			pipeline.Add(p, inc.WithName("2").WithRetry(task.Retry{Infra: 1, PendingTimeout: time.Second}), one{})
			pipeline.Add(p, inc.WithName("s-2"), one{})
		}, []backendtest.LintKey{
			dup("2"),
			{Field: "pipeline.tasks[inc].retry.pendingTimeout", Type: pipeline.ErrorTypeInvalid, Value: "1m0s"},
			{Field: "pipeline.tasks[inc].retry.backoff.factor", Type: pipeline.ErrorTypeInvalid, Value: 1.5},
			{Field: "pipeline.tasks[2].retry.pendingTimeout", Type: pipeline.ErrorTypeInvalid, Value: "1s"},
		}},
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
