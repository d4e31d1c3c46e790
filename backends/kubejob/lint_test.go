package kubejob_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/sluice-ml/sluice/backends/kubejob"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

// lint reports what Compile on kubejob would reject, not only compile.
func TestLintReportsJobNameCollisions(t *testing.T) {
	for _, tc := range []struct {
		name  string
		build func(p *pipeline.Pipeline)
		want  string // in stderr; "" means lint passes
	}{
		{"StepNamedLikeAnInfraRetry", func(p *pipeline.Pipeline) {
			pipeline.Add(p, constant("train").WithRetry(task.Retry{Infra: 1}), none{})
			pipeline.Add(p, constant("train-r1"), none{})
		}, `step "train-r1": its Job name would collide with a Job the orchestrator creates for step "train"`},
		{"StepNamedLikeATimedAppRetry", func(p *pipeline.Pipeline) {
			pipeline.Add(p, constant("train").WithRetry(task.Retry{App: 2}).WithTimeout(60e9), none{})
			pipeline.Add(p, constant("train-r2"), none{})
		}, `step "train-r2"`},
		{"StepNamedLikeAFanOutInstance", func(p *pipeline.Pipeline) {
			list := pipeline.Add(p, task.New("list", func(context.Context, none) ([]int, error) { return []int{1, 2}, nil }), none{})
			pipeline.ForEach(p, task.New("square", func(_ context.Context, in pipeline.Ref[int]) (int, error) { return in.Get(), nil }),
				list.Output(), func(item pipeline.Ref[int]) pipeline.Ref[int] { return item })
			pipeline.Add(p, constant("square-0"), none{})
		}, `step "square-0"`},
		{"RetryWithoutJobOfItsOwn", func(p *pipeline.Pipeline) {
			// An App retry without a timeout stays inside the Job: no clash.
			pipeline.Add(p, constant("train").WithRetry(task.Retry{App: 1}), none{})
			pipeline.Add(p, constant("train-r1"), none{})
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := pipeline.New("clash", nil)
			tc.build(p)
			var out, errb bytes.Buffer
			code := pipeline.Exec(t.Context(), p, []string{"lint"}, &out, &errb, kubejob.New(nil, testOptions()))
			if tc.want == "" {
				assert.Equal(t, pipeline.ExitOK, code, errb.String())
				return
			}
			assert.Equal(t, pipeline.ExitInvalid, code)
			assert.Contains(t, errb.String(), tc.want)
			assert.Contains(t, errb.String(), "with kubejob")
			assert.Empty(t, out.String())
		})
	}
}
