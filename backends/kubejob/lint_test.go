package kubejob_test

import (
	"context"
	"testing"

	"github.com/sluice-ml/sluice/backends/backendtest"
	"github.com/sluice-ml/sluice/backends/kubejob"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

// Lint reports every step whose Job name kubejob cannot use as a field
// error at the step's name, all at once; Compile returns the same errors
// and lint prints them.
func TestLintReportsJobNameCollisions(t *testing.T) {
	square := func(p *pipeline.Pipeline, name string, r task.Retry) {
		list := pipeline.Add(p, task.New("list", func(context.Context, none) ([]int, error) { return []int{1, 2}, nil }), none{})
		pipeline.ForEach(p, task.New(name, func(_ context.Context, in pipeline.Ref[int]) (int, error) { return in.Get(), nil }).WithRetry(r),
			list.Output(), func(item pipeline.Ref[int]) pipeline.Ref[int] { return item })
	}
	dup := func(name string) backendtest.LintKey {
		return backendtest.LintKey{Field: "pipeline.tasks[" + name + "].name", Type: pipeline.ErrorTypeDuplicate, Value: name}
	}
	for _, tc := range []struct {
		name  string
		build func(p *pipeline.Pipeline)
		want  []backendtest.LintKey // nil: lint passes
	}{
		{"StepNamedLikeAnInfraRetry", func(p *pipeline.Pipeline) {
			pipeline.Add(p, constant("train").WithRetry(task.Retry{Infra: 1}), none{})
			pipeline.Add(p, constant("train-r1"), none{})
		}, []backendtest.LintKey{dup("train-r1")}},
		{"StepNamedLikeATimedAppRetry", func(p *pipeline.Pipeline) {
			pipeline.Add(p, constant("train").WithRetry(task.Retry{App: 2}).WithTimeout(60e9), none{})
			pipeline.Add(p, constant("train-r2"), none{})
		}, []backendtest.LintKey{dup("train-r2")}},
		{"StepNamedLikeAFanOutInstance", func(p *pipeline.Pipeline) {
			square(p, "square", task.Retry{})
			pipeline.Add(p, constant("square-0"), none{})
		}, []backendtest.LintKey{dup("square-0")}},
		{"StepNamedLikeARetryOfAnInstance", func(p *pipeline.Pipeline) {
			square(p, "square", task.Retry{Infra: 1})
			pipeline.Add(p, constant("square-3-r1"), none{})
		}, []backendtest.LintKey{dup("square-3-r1")}},
		{"ExitHandlerNamedLikeARetry", func(p *pipeline.Pipeline) {
			pipeline.Add(p, constant("train").WithRetry(task.Retry{Infra: 1}), none{})
			pipeline.OnExit(p, constant("train-r9"), none{})
		}, []backendtest.LintKey{dup("train-r9")}},
		{"EveryCollisionAtOnce", func(p *pipeline.Pipeline) {
			pipeline.Add(p, constant("train").WithRetry(task.Retry{Infra: 1}), none{})
			pipeline.Add(p, constant("train-r1"), none{})
			square(p, "square", task.Retry{})
			pipeline.Add(p, constant("square-12"), none{})
			pipeline.Add(p, constant("train-r2"), none{})
		}, []backendtest.LintKey{dup("train-r1"), dup("square-12"), dup("train-r2")}},
		{"RetryWithoutJobOfItsOwn", func(p *pipeline.Pipeline) {
			// An App retry without a timeout stays inside the Job: no clash.
			pipeline.Add(p, constant("train").WithRetry(task.Retry{App: 1}), none{})
			pipeline.Add(p, constant("train-r1"), none{})
		}, nil},
		{"NotAnInstanceIndex", func(p *pipeline.Pipeline) {
			square(p, "square", task.Retry{Infra: 1})
			pipeline.Add(p, constant("square-x"), none{})
			pipeline.Add(p, constant("square-r"), none{})
			pipeline.Add(p, constant("square-1-r"), none{})
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := pipeline.New("clash", nil)
			tc.build(p)
			backendtest.CheckLint(t, p, kubejob.New(nil, testOptions()), tc.want)
		})
	}
}
