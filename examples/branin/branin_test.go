package main

import (
	"bytes"
	"context"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/hpo"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/pipeline/pipelinetest"
)

// named refers to a step by name, for the steps build does not return.
type named string

func (n named) Name() string { return string(n) }

func TestBraninMinima(t *testing.T) {
	for _, m := range []Point{{-math.Pi, 12.275}, {math.Pi, 2.275}, {9.42478, 2.475}} {
		assert.InDelta(t, optimum, branin(m.X1, m.X2), 1e-5, "%+v", m)
	}
	assert.InDelta(t, 36+20-10/(8*math.Pi), branin(0, 0), 1e-12, "(0-6)² + 10(1-1/(8π))cos 0 + 10")
}

// The search, run on pipelinetest's local backend, finds a point within
// a small regret of Branin's minimum for its seed: every trial ran and is
// in the domain, the best trial is the lowest, and report got the result.
func TestSearchFindsTheMinimum(t *testing.T) {
	p, search := build()
	res := pipelinetest.NewEnv(t).Run(p)
	require.NoError(t, res.Err())
	out := pipelinetest.Output(res, search)

	require.Len(t, out.Trials, 60)
	for i, tr := range out.Trials {
		require.Equal(t, hpo.Complete, tr.State, "trial %d: %s", i, tr.Error)
		assert.Equal(t, i/4, tr.Round, "trial %d: 15 rounds of 4", i)
		assert.True(t, tr.Params.X1 >= -5 && tr.Params.X1 <= 10 && tr.Params.X2 >= 0 && tr.Params.X2 <= 15, "trial %d: %+v", i, tr.Params)
		assert.InDelta(t, branin(tr.Params.X1, tr.Params.X2), tr.Objective, 1e-12, "trial %d: the objective is the trial's value", i)
		assert.LessOrEqual(t, out.BestObjective, tr.Objective, "trial %d beats the best", i)
	}
	assert.Equal(t, out.Trials[out.BestTrial].Params, out.BestParams)
	regret := out.BestObjective - optimum
	t.Logf("best: trial %d %+v, branin %.6f, regret %.6f", out.BestTrial, out.BestParams, out.BestObjective, regret)
	assert.GreaterOrEqual(t, regret, -1e-9, "nothing is below the minimum")
	assert.Less(t, regret, 0.05, "within 0.05 of the minimum (see options)")
	// Better than the best of the first round, which is CMA-ES's first
	// generation: the search adapted.
	first := math.Inf(1)
	for _, tr := range out.Trials[:4] {
		first = min(first, tr.Objective)
	}
	assert.Less(t, out.BestObjective, first)

	// 15 rounds of suggest and trials, the result, and report.
	assert.Len(t, res.Order(), 15+60+1+1)
	assert.True(t, res.Ran(named(stepReport)))
}

// The same seed gives the same trials, run after run.
func TestSearchIsDeterministic(t *testing.T) {
	run := func() []hpo.Trial[Point, EvalOut] {
		p, search := build()
		res := pipelinetest.NewEnv(t).Run(p)
		require.NoError(t, res.Err())
		return pipelinetest.Output(res, search).Trials
	}
	assert.Equal(t, run(), run())
}

// The wiring: a stubbed trial's output is what the search optimizes, so
// a synthetic objective with a known minimum is found exactly.
func TestSearchOptimizesTheTrialsOutput(t *testing.T) {
	env := pipelinetest.NewEnv(t)
	pipelinetest.Stub(env, evaluateTask, func(_ context.Context, in EvalIn) (EvalOut, error) {
		p := in.P.Get()
		return EvalOut{Value: math.Abs(p.X1-2) + math.Abs(p.X2-3)}, nil
	})
	p, search := build()
	res := env.Run(p)
	require.NoError(t, res.Err())
	out := pipelinetest.Output(res, search)
	assert.InDelta(t, 2, out.BestParams.X1, 0.5)
	assert.InDelta(t, 3, out.BestParams.X2, 0.5)
	assert.InDelta(t, math.Abs(out.BestParams.X1-2)+math.Abs(out.BestParams.X2-3), out.BestObjective, 1e-12)
}

// The command line: lint validates the pipeline and counts its steps.
func TestExec(t *testing.T) {
	p, _ := build()
	var stdout, stderr bytes.Buffer
	code := pipeline.Exec(t.Context(), p, []string{"lint"}, &stdout, &stderr)
	require.Equal(t, pipeline.ExitOK, code, "stderr:\n%s", stderr.String())
	assert.Equal(t, "branin: valid, 32 steps\n", stdout.String())
}

func TestFormat(t *testing.T) {
	res := hpo.Result[Point, EvalOut]{
		BestTrial: 1, BestObjective: 0.5, BestParams: Point{3, 2},
		Trials: []hpo.Trial[Point, EvalOut]{
			{ID: 0, Params: Point{0, 0}, State: hpo.Complete, Objective: 17.5},
			{ID: 1, Params: Point{3, 2}, State: hpo.Complete, Objective: 0.5},
			{ID: 2, Round: 1, Params: Point{1, 1}, State: hpo.Failed, Error: "boom"},
		},
	}
	got := format(res)
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	require.Len(t, lines, 5, got)
	assert.Equal(t, "best: trial 1  x1=3.0000 x2=2.0000  branin=0.500000  regret=0.102113", lines[0])
	assert.Contains(t, lines[3], "← best")
	assert.Contains(t, lines[4], "failed  boom")
}
