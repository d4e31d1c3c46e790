package pipeline_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/local"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

type scores struct {
	Best  string
	Count int
}

// summarized is a pipeline whose steps add to the run summary: one that
// succeeds, one whose summary panics, one that fails.
func summarized(failLast bool) *pipeline.Pipeline {
	p := pipeline.New("scored", nil)
	s := pipeline.Add(p, task.New("score", func(context.Context, struct{}) (scores, error) {
		return scores{Best: "b", Count: 3}, nil
	}), struct{}{})
	s.Summarize(func(info pipeline.SummaryInfo, out scores) string {
		return fmt.Sprintf("best %s of %d\nsee: %s show -run %s -step %s\n", out.Best, out.Count, info.Pipeline, info.Run, info.Step)
	})
	pipeline.Add(p, task.New("quiet", func(context.Context, struct{}) (int, error) { return 1, nil }), struct{}{}).
		Summarize(func(pipeline.SummaryInfo, int) string { return "" })
	pipeline.Add(p, task.New("broken", func(context.Context, struct{}) (int, error) { return 1, nil }), struct{}{}).
		Summarize(func(pipeline.SummaryInfo, int) string { panic("boom") })
	pipeline.Add(p, task.New("last", func(context.Context, struct{}) (int, error) {
		if failLast {
			return 0, errors.New("no luck")
		}
		return 2, nil
	}).WithRetry(task.Retry{}), struct{}{}).After(s).
		Summarize(func(_ pipeline.SummaryInfo, n int) string { return fmt.Sprintf("last=%d", n) })
	return p
}

func TestRunPrintsStepSummaries(t *testing.T) {
	userCache(t)
	code, out, errs := exec(t, summarized(false), []string{"run", "-run-id", "r7", "-no-cache", "-q"}, local.New(nil))
	require.Equal(t, pipeline.ExitOK, code, errs)
	_, after, ok := strings.Cut(out, "\n\n")
	require.True(t, ok, "the summaries follow the run's summary after a blank line:\n%s", out)
	assert.Equal(t, `score:
  best b of 3
  see: scored show -run r7 -step score

broken:
  no summary: the summary panicked: boom

last:
  last=2
`, after, "plan order; an empty text adds nothing")

	code, out, _ = exec(t, summarized(true), []string{"run", "-no-cache", "-q"}, local.New(nil))
	assert.Equal(t, pipeline.ExitFailed, code)
	assert.Contains(t, out, "\nscore:\n  best b of 3\n")
	assert.NotContains(t, out, "last=", "a failed step has no output to summarize")
}

func TestWriteSummaries(t *testing.T) {
	p := summarized(false)
	st := &backends.RunStatus{RunID: "r1", Steps: []backends.StepStatus{
		{Name: "score", Phase: backends.PhaseCached, Output: []byte(`{"Best":"c","Count":9}`)},
		{Name: "last", Phase: backends.PhaseSucceeded, Output: []byte(`"not an int"`)},
	}}
	var buf bytes.Buffer
	require.NoError(t, p.WriteSummaries(t.Context(), &buf, st))
	assert.Contains(t, buf.String(), "score:\n  best c of 9\n", "a cached step's output is summarized too")
	assert.Contains(t, buf.String(), "last:\n  no summary: decoding the output: json: cannot unmarshal string")

	var none bytes.Buffer
	require.NoError(t, validPipeline().WriteSummaries(t.Context(), &none, st))
	assert.Empty(t, none.String(), "no step summarizes")
	assert.Error(t, p.WriteSummaries(t.Context(), nil, st))
	assert.Panics(t, func() { pipeline.Step[int]{}.Summarize(func(pipeline.SummaryInfo, int) string { return "" }) })
}

func init() {
	pipeline.RegisterCommand(pipeline.Command{
		Name:  "echo",
		Usage: "[WORDS]",
		Short: "says its arguments back",
		Run: func(_ context.Context, env *pipeline.CommandEnv, args []string) int {
			name, err := env.Pipeline()
			if err != nil {
				return pipeline.ExitInvalid
			}
			fmt.Fprintf(env.Stdout, "%s (%s): %s\n", env.Prog, name, strings.Join(args, " "))
			if len(args) == 0 {
				fmt.Fprintln(env.Stderr, "nothing to say")
				return pipeline.ExitFailed
			}
			return pipeline.ExitOK
		},
	})
}

func TestRegisterCommand(t *testing.T) {
	code, out, errs := exec(t, validPipeline(), []string{"echo", "a", "-b"})
	assert.Equal(t, pipeline.ExitOK, code, errs)
	assert.Equal(t, "churn echo (churn): a -b\n", out)
	code, _, errs = exec(t, validPipeline(), []string{"echo"})
	assert.Equal(t, pipeline.ExitFailed, code)
	assert.Equal(t, "nothing to say\n", errs)

	_, out, _ = exec(t, validPipeline(), []string{"help"})
	assert.Contains(t, out, "  churn echo [WORDS]\n      says its arguments back\n")

	run := func(context.Context, *pipeline.CommandEnv, []string) int { return 0 }
	for _, c := range []pipeline.Command{
		{Name: "", Run: run},
		{Name: "Echo2", Run: run},
		{Name: "run", Run: run},
		{Name: "echo", Run: run},
		{Name: "nothing"},
	} {
		assert.Panics(t, func() { pipeline.RegisterCommand(c) }, "%+v", c.Name)
	}
}

func TestCheckRunID(t *testing.T) {
	assert.NoError(t, pipeline.CheckRunID("r-1.2_3"))
	assert.ErrorContains(t, pipeline.CheckRunID(""), "-run is required")
	assert.ErrorContains(t, pipeline.CheckRunID("a/b"), "not a run id")
}
