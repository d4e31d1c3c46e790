package hpo_test

import (
	"context"
	"encoding/json"
	"math"
	"os/exec"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/backends/local"
	"github.com/sluice-ml/sluice/hpo"
	"github.com/sluice-ml/sluice/internal/hpocase"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

// The container trial of these searches is internal/hpocase's Quad.
type (
	XY      = hpocase.XY
	quadIn  = hpocase.QuadIn
	quadOut = hpocase.QuadOut
)

// quadSearch is a search of (x-1)² + (y+2)², its trial a container
// (a shell script: the local backend's HostRunner runs it as a host
// process) or, for comparison, a Go task that computes the same number
// as the script prints it.
func quadSearch(container bool, opts *hpo.Options) (*pipeline.Pipeline, pipeline.Step[hpo.Result[XY, quadOut]]) {
	p := pipeline.New("tune", nil)
	trial := hpocase.Quad()
	if !container {
		trial = task.New("f", func(_ context.Context, in quadIn) (quadOut, error) {
			x, y := in.X.Get(), in.Y.Get()
			return quadOut{Loss: (x-1)*(x-1) + (y+2)*(y+2)}, nil
		})
	}
	s := hpo.Search(p, hpo.Space[XY]{"X": hpo.Float(-5, 5), "Y": hpo.Float(-5, 5)}, trial,
		func(v pipeline.Ref[XY]) quadIn {
			return quadIn{X: pipeline.Field[float64](v, "X"), Y: pipeline.Field[float64](v, "Y")}
		},
		func(o quadOut) float64 { return o.Loss }, opts)
	return p, s
}

// A container trial runs as the container it is, one instance per
// proposal, and the search reads its outputs in proposal order: on the
// local backend (the script as a host process) it gives the trials a Go
// trial computing the same objective gives, and finds the same best.
func TestContainerTrialsRunLikeGoTrials(t *testing.T) {
	for _, tool := range []string{"sh", "awk"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the script needs %s: %v", tool, err)
		}
	}
	for _, opts := range []hpo.Options{
		{Sampler: hpo.Random, Seed: 7, MaxTrials: 9, ParallelTrials: 3},
		{Sampler: hpo.CMAES, Seed: 5, MaxTrials: 12, ParallelTrials: 3, Goal: new(4.0)},
	} {
		t.Run(string(opts.Sampler), func(t *testing.T) {
			run := func(container bool) hpo.Result[XY, quadOut] {
				p, s := quadSearch(container, &opts)
				st, err := pipeline.Run(t.Context(), p, local.New(&local.Options{Runner: local.HostRunner{}}), nil)
				require.NoError(t, err)
				var res hpo.Result[XY, quadOut]
				require.NoError(t, json.Unmarshal(st.Step(s.Name()).Output, &res))
				return res
			}
			ctr, goTrial := run(true), run(false)
			require.NotEmpty(t, ctr.Trials)
			assert.Equal(t, len(goTrial.Trials), len(ctr.Trials))
			for i := range ctr.Trials {
				c, g := ctr.Trials[i], goTrial.Trials[i]
				assert.Equal(t, g.Params, c.Params, "trial %d", i)
				assert.Equal(t, hpo.Complete, c.State, "trial %d", i)
				want := (c.Params.X-1)*(c.Params.X-1) + (c.Params.Y+2)*(c.Params.Y+2)
				assert.InDelta(t, want, c.Objective, 1e-9*math.Max(1, want), "trial %d: the script's number", i)
				assert.Equal(t, strconv.FormatFloat(g.Objective, 'g', 12, 64), strconv.FormatFloat(c.Objective, 'g', 12, 64), "trial %d", i)
			}
			assert.Equal(t, goTrial.BestTrial, ctr.BestTrial)
			assert.Equal(t, goTrial.BestParams, ctr.BestParams)
			assert.Equal(t, goTrial.Stopped, ctr.Stopped)
			t.Logf("%d trials, best %d (%.4g)", len(ctr.Trials), ctr.BestTrial, ctr.BestObjective)
		})
	}
}

// XYSteps are the hyperparameters of the early-stopping search: Steps
// is the budget.
type XYSteps struct {
	X, Y  float64
	Steps int
}

type quadStepsIn struct {
	X     pipeline.Ref[float64] `json:"x"`
	Y     pipeline.Ref[float64] `json:"y"`
	Steps pipeline.Ref[int]     `json:"steps"`
}

// Under early stopping a container trial gets each rung's budget through
// its placeholders and a promoted one runs again from the start: the
// search prunes and promotes the trials a Go trial of the same objective
// gets (one that does not continue from its previous run).
func TestContainerTrialsUnderEarlyStopping(t *testing.T) {
	for _, tool := range []string{"sh", "awk"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the script needs %s: %v", tool, err)
		}
	}
	run := func(container bool) hpo.Result[XYSteps, quadOut] {
		p := pipeline.New("tune", nil)
		trial := task.Container[quadStepsIn, quadOut]("quad", "registry.example/quad:1").
			WithCommand("/bin/sh", "-c", `awk -v x="$1" -v y="$2" -v s="$3" 'BEGIN { printf "%.17g\n", (x-1)*(x-1) + (y+2)*(y+2) + 1/s }' > "$4"`, "sh").
			WithArgs("{{.x}}", "{{.y}}", "{{.steps}}", "{{outputs.loss}}")
		if !container {
			trial = task.New("quad", func(_ context.Context, in quadStepsIn) (quadOut, error) {
				x, y, s := in.X.Get(), in.Y.Get(), in.Steps.Get()
				return quadOut{Loss: (x-1)*(x-1) + (y+2)*(y+2) + 1/float64(s)}, nil
			})
		}
		s := hpo.Search(p, hpo.Space[XYSteps]{"X": hpo.Float(-5, 5), "Y": hpo.Float(-5, 5)}, trial,
			func(v pipeline.Ref[XYSteps]) quadStepsIn {
				return quadStepsIn{X: pipeline.Field[float64](v, "X"), Y: pipeline.Field[float64](v, "Y"), Steps: pipeline.Field[int](v, "Steps")}
			},
			func(o quadOut) float64 { return o.Loss },
			&hpo.Options{Seed: 5, MaxTrials: 9, ParallelTrials: 9,
				EarlyStopping: &hpo.EarlyStopping{Rule: hpo.ASHA, Budget: "Steps", Min: 1, Max: 9}})
		st, err := pipeline.Run(t.Context(), p, local.New(nil), nil)
		require.NoError(t, err)
		var res hpo.Result[XYSteps, quadOut]
		require.NoError(t, json.Unmarshal(st.Step(s.Name()).Output, &res))
		return res
	}
	ctr, goTrial := run(true), run(false)
	require.Len(t, ctr.Trials, 9)
	states := map[hpo.State]int{}
	for i, c := range ctr.Trials {
		g := goTrial.Trials[i]
		assert.Equal(t, g.Params, c.Params, "trial %d", i)
		assert.Equal(t, g.State, c.State, "trial %d", i)
		assert.Equal(t, g.Budget, c.Budget, "trial %d", i)
		assert.Equal(t, g.Objective, c.Objective, "trial %d", i)
		assert.Equal(t, len(g.Rungs), len(c.Rungs), "trial %d", i)
		states[c.State]++
	}
	assert.Equal(t, map[hpo.State]int{hpo.Pruned: 8, hpo.Complete: 1}, states)
	assert.Equal(t, goTrial.BestTrial, ctr.BestTrial)
	assert.Equal(t, 9, ctr.BestParams.Steps, "the best trial ran to the full budget")
}
