package hpo_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/local"
	"github.com/sluice-ml/sluice/hpo"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/pipeline/pipelinetest"
	"github.com/sluice-ml/sluice/task"
)

// A search whose trial is the Branin task, with the options given.
func braninSearch(opts *hpo.Options, space hpo.Space[Point]) (*pipeline.Pipeline, pipeline.Step[hpo.Result[Point, BraninOut]]) {
	p := pipeline.New("tune", nil)
	if space == nil {
		space = hpo.Space[Point]{"X1": hpo.Float(-5, 10), "X2": hpo.Float(0, 15)}
	}
	s := hpo.Search(p, space, evaluate,
		func(pt pipeline.Ref[Point]) BraninIn { return BraninIn{P: pt} },
		func(out BraninOut) float64 { return math.Log(math.Exp(out.Value)) }, opts) // NaN for a NaN, +Inf for a huge value
	return p, s
}

// stub replaces the trial in env by a synthetic objective that takes a
// minute of virtual time: (x1-2)² + x2, or an error or an output whose
// objective is +Inf where fail says so.
func stub(env *pipelinetest.Env, fail func(Point) (error, bool)) {
	pipelinetest.Stub(env, evaluate, func(ctx context.Context, in BraninIn) (BraninOut, error) {
		if err := env.Clock().Sleep(ctx, time.Minute); err != nil {
			return BraninOut{}, err
		}
		pt := in.P.Get()
		if fail != nil {
			if err, nan := fail(pt); err != nil {
				return BraninOut{}, err
			} else if nan {
				return BraninOut{Value: 1000}, nil // the objective is +Inf
			}
		}
		return BraninOut{Value: (pt.X1-2)*(pt.X1-2) + pt.X2}, nil
	})
}

func TestSearchRunsRoundsOfTrialsWithStubs(t *testing.T) {
	p, search := braninSearch(&hpo.Options{Sampler: hpo.Random, Seed: 3, MaxTrials: 7, ParallelTrials: 2}, nil)
	env := pipelinetest.NewEnv(t)
	stub(env, nil)
	start := env.Clock().Now()

	res := env.Run(p)

	require.NoError(t, res.Err())
	out := pipelinetest.Output(res, search)
	require.Len(t, out.Trials, 7)
	best := 0
	for i, tr := range out.Trials {
		assert.Equal(t, i, tr.ID)
		assert.Equal(t, i/2, tr.Round, "rounds of ParallelTrials: 2, 2, 2, 1")
		assert.Equal(t, hpo.Complete, tr.State)
		want := (tr.Params.X1-2)*(tr.Params.X1-2) + tr.Params.X2
		assert.Equal(t, want, tr.Objective, "the stub, not the real task, ran inside the wrapper")
		assert.Equal(t, want, tr.Output.Value)
		assert.Equal(t, time.Minute, tr.Duration, "the stub's virtual minute")
		assert.Empty(t, tr.Rungs, "no early stopping")
		assert.True(t, tr.Params.X1 >= -5 && tr.Params.X1 <= 10 && tr.Params.X2 >= 0 && tr.Params.X2 <= 15, "in the space: %+v", tr.Params)
		if tr.Objective < out.Trials[best].Objective {
			best = i
		}
	}
	assert.Equal(t, best, out.BestTrial)
	assert.Equal(t, out.Trials[best].Params, out.BestParams)
	assert.Equal(t, out.Trials[best].Objective, out.BestObjective)
	assert.Equal(t, out.Trials[best].Output, out.BestOutput)
	assert.Empty(t, out.Stopped)
	// Seven trials of a virtual minute each (an Env runs one task at a
	// time).
	assert.Equal(t, 7*time.Minute, env.Clock().Now().Sub(start))
	assert.Equal(t, []string{
		"search-suggest-0", "search-trials-0[0]", "search-trials-0[1]",
		"search-suggest-1", "search-trials-1[0]", "search-trials-1[1]",
		"search-suggest-2", "search-trials-2[0]", "search-trials-2[1]",
		"search-suggest-3", "search-trials-3[0]", "search",
	}, res.Order())
}

// The same seed gives the same trials, run after run; another seed does
// not. For every sampler that repeats for a seed (all but TPE).
func TestSameSeedSameTrials(t *testing.T) {
	for _, s := range []hpo.Sampler{hpo.Random, hpo.CMAES, hpo.Sobol} {
		t.Run(string(s), func(t *testing.T) {
			run := func(seed int64) []hpo.Trial[Point, BraninOut] {
				// 24 trials in 4 rounds: past TPE's 10 random start-up trials
				// and CMA-ES's first generations, with replays in every round.
				p, search := braninSearch(&hpo.Options{Sampler: s, Seed: seed, MaxTrials: 24, ParallelTrials: 6}, nil)
				env := pipelinetest.NewEnv(t)
				res := env.Run(p)
				require.NoError(t, res.Err())
				return pipelinetest.Output(res, search).Trials
			}
			a, b := run(7), run(7)
			assert.Equal(t, a, b)
			if s != hpo.Sobol { // Sobol is deterministic and ignores the seed
				assert.NotEqual(t, a, run(8))
			}
		})
	}
}

func TestGridRunsCombinationsInOrder(t *testing.T) {
	space := hpo.Space[Point]{"X1": hpo.FloatStep(0, 1, 0.5), "X2": hpo.Choice(10.0, 20.0)}
	p, search := braninSearch(&hpo.Options{Sampler: hpo.Grid, MaxTrials: 6, ParallelTrials: 3}, space)
	env := pipelinetest.NewEnv(t)
	stub(env, nil)
	res := env.Run(p)
	require.NoError(t, res.Err())
	var got []Point
	for _, tr := range pipelinetest.Output(res, search).Trials {
		got = append(got, tr.Params)
	}
	assert.Equal(t, []Point{{0, 10}, {0, 20}, {0.5, 10}, {0.5, 20}, {1, 10}, {1, 20}}, got)
}

// gridX1 searches X1 over 0…5 in order with X2 fixed at 0, so trial i
// has X1 = i.
func gridX1() hpo.Space[Point] {
	return hpo.Space[Point]{"X1": hpo.FloatStep(0, 5, 1), "X2": hpo.Fixed(0.0)}
}

func TestGoalStopsTheSearchEarly(t *testing.T) {
	p, search := braninSearch(&hpo.Options{Sampler: hpo.Grid, MaxTrials: 6, ParallelTrials: 1, Goal: new(0.5)}, gridX1())
	env := pipelinetest.NewEnv(t)
	stub(env, nil) // (x1-2)²: trial 2 reaches 0

	res := env.Run(p)

	require.NoError(t, res.Err())
	out := pipelinetest.Output(res, search)
	require.Len(t, out.Trials, 3, "rounds 3 to 5 propose nothing")
	assert.Equal(t, 2, out.BestTrial)
	assert.Equal(t, "goal reached: trial 2's objective 0 ≤ goal 0.5; rounds 3 to 5 proposed no trials", out.Stopped)
	for r := 3; r <= 5; r++ {
		step := res.Step(named(fmt.Sprintf("search-trials-%d", r)))
		assert.Equal(t, backends.PhaseSucceeded, step.Phase)
		assert.Empty(t, step.Instances, "round %d ran no trial", r)
	}
}

func TestGoalWhenMaximizing(t *testing.T) {
	p, search := braninSearch(&hpo.Options{Sampler: hpo.Grid, MaxTrials: 6, Direction: hpo.Maximize, Goal: new(4.0)}, gridX1())
	env := pipelinetest.NewEnv(t)
	stub(env, nil) // (x1-2)²: 4, 1, 0, 1, 4, 9; trial 0 reaches 4
	res := env.Run(p)
	require.NoError(t, res.Err())
	out := pipelinetest.Output(res, search)
	assert.Len(t, out.Trials, 1)
	assert.Equal(t, "goal reached: trial 0's objective 4 ≥ goal 4; rounds 1 to 5 proposed no trials", out.Stopped)
}

func TestFailedTrialsWithinTheBudget(t *testing.T) {
	p, search := braninSearch(&hpo.Options{Sampler: hpo.Grid, MaxTrials: 6, ParallelTrials: 2, MaxFailedTrials: 2}, gridX1())
	env := pipelinetest.NewEnv(t)
	stub(env, func(pt Point) (error, bool) {
		switch pt.X1 {
		case 1:
			return errors.New("out of memory"), false
		case 4:
			return nil, true // an infinite objective
		}
		return nil, false
	})

	res := env.Run(p)

	require.NoError(t, res.Err())
	out := pipelinetest.Output(res, search)
	var states []hpo.State
	for _, tr := range out.Trials {
		states = append(states, tr.State)
	}
	assert.Equal(t, []hpo.State{hpo.Complete, hpo.Failed, hpo.Complete, hpo.Complete, hpo.Failed, hpo.Complete}, states)
	assert.Equal(t, "the trial failed; step search-trials-0 says why", out.Trials[1].Error)
	assert.Equal(t, "the objective is +Inf; it must be a finite number", out.Trials[4].Error)
	assert.Contains(t, res.Step(named("search-trials-0")).Message, "out of memory", "the fan-out names the failure")
	assert.Equal(t, 2, out.BestTrial)
}

func TestTooManyFailedTrialsFailTheSearch(t *testing.T) {
	p, search := braninSearch(&hpo.Options{Sampler: hpo.Grid, MaxTrials: 6, ParallelTrials: 2, MaxFailedTrials: 1}, gridX1())
	env := pipelinetest.NewEnv(t)
	stub(env, func(pt Point) (error, bool) { return nil, pt.X1 == 1 || pt.X1 == 2 })

	res := env.Run(p)

	require.ErrorIs(t, res.Err(), pipeline.ErrRunFailed)
	assert.Equal(t, backends.PhaseSucceeded, res.Phase(named("search-suggest-1")), "one failure is within the budget")
	st := res.Step(named("search-suggest-2"))
	assert.Equal(t, backends.PhaseFailed, st.Phase)
	assert.Contains(t, st.Message, "2 of 4 trials failed, more than MaxFailedTrials (1): trial 1: the objective is +Inf; it must be a finite number; trial 2: the objective is +Inf")
	assert.True(t, res.Skipped(search))
}

// Without a failure budget, a failed trial fails its round's fan-out and
// so the search; no tolerance is asked of the backend (Argo has none).
func TestNoFailureBudget(t *testing.T) {
	p, search := braninSearch(&hpo.Options{Sampler: hpo.Grid, MaxTrials: 3, ParallelTrials: 3}, gridX1())
	env := pipelinetest.NewEnv(t)
	stub(env, func(pt Point) (error, bool) {
		if pt.X1 == 1 {
			return errors.New("diverged"), false
		}
		return nil, false
	})
	res := env.Run(p)
	require.ErrorIs(t, res.Err(), pipeline.ErrRunFailed)
	assert.Equal(t, backends.PhaseFailed, res.Phase(named("search-trials-0")))
	assert.True(t, res.Skipped(search))
}

func TestAllTrialsFailed(t *testing.T) {
	p, search := braninSearch(&hpo.Options{Sampler: hpo.Grid, MaxTrials: 2, ParallelTrials: 2, MaxFailedTrials: 2}, gridX1())
	env := pipelinetest.NewEnv(t)
	stub(env, func(Point) (error, bool) { return errors.New("no GPU"), false })
	res := env.Run(p)
	require.ErrorIs(t, res.Err(), pipeline.ErrRunFailed)
	st := res.Step(search)
	assert.Equal(t, backends.PhaseFailed, st.Phase)
	assert.Contains(t, st.Message, "all 2 trials failed: trial 0: the trial failed; step search-trials-0 says why; trial 1:")
}

// The Result is an ordinary output: later steps read it.
func TestLaterStepsReadTheResult(t *testing.T) {
	p, search := braninSearch(&hpo.Options{Sampler: hpo.Grid, MaxTrials: 6, ParallelTrials: 3}, gridX1())
	final := pipeline.Add(p, evaluate.WithName("final"), BraninIn{P: pipeline.Field[Point](search.Output(), "BestParams")})
	env := pipelinetest.NewEnv(t)
	stub(env, nil)
	res := env.Run(p)
	require.NoError(t, res.Err())
	assert.Equal(t, Point{X1: 2}, pipelinetest.Output(res, search).BestParams)
	assert.Equal(t, branin(2, 0), pipelinetest.Output(res, final).Value, "the real task ran with the best parameters")
}

type named string

func (n named) Name() string { return string(n) }

// The local backend and the test Env run the same trials for a seed.
func TestLocalBackendRunsTheSameTrials(t *testing.T) {
	opts := &hpo.Options{Sampler: hpo.Random, Seed: 11, MaxTrials: 16, ParallelTrials: 4}
	p, search := braninSearch(opts, nil)
	st, err := pipeline.Run(context.Background(), p, local.New(&local.Options{Parallelism: 4}), nil)
	require.NoError(t, err)
	var got hpo.Result[Point, BraninOut]
	require.NoError(t, json.Unmarshal(st.Step(search.Name()).Output, &got))

	p, search = braninSearch(opts, nil)
	res := pipelinetest.NewEnv(t).Run(p)
	require.NoError(t, res.Err())
	want := pipelinetest.Output(res, search)
	// Durations are on the local backend's wall clock, and on the Env's
	// virtual clock (0 here: the real task does not sleep).
	for i := range got.Trials {
		assert.Zero(t, want.Trials[i].Duration)
		got.Trials[i].Duration = 0
	}
	// The report's files are in other stores, written at other times,
	// with the same bytes.
	assert.Equal(t, want.Files.CSV.Digest, got.Files.CSV.Digest)
	assert.Equal(t, want.Files.SVG.Digest, got.Files.SVG.Digest)
	want.Files, got.Files = hpo.Files{}, hpo.Files{}
	assert.Equal(t, want, got)
	assert.Len(t, got.Trials, 16)
}

type scaledIn struct {
	P     pipeline.Ref[Point]
	Scale pipeline.Ref[float64] // from an upstream step
	Shift pipeline.Ref[float64] // from a parameter
}

// A trial's input takes other Refs besides its hyperparameters: an
// upstream step's output and a parameter, the same in every round.
func TestTrialsReadOtherRefs(t *testing.T) {
	p := pipeline.New("refs", nil)
	shift := pipeline.NewParam(p, "shift", 1.0)
	scale := pipeline.Add(p, task.New("scale", func(ctx context.Context, _ struct{}) (float64, error) { return 10, nil }), struct{}{})
	trial := task.New("scaled", func(ctx context.Context, in scaledIn) (float64, error) {
		return in.Scale.Get()*in.P.Get().X1 + in.Shift.Get(), nil
	})
	search := hpo.Search(p, gridX1(), trial,
		func(pt pipeline.Ref[Point]) scaledIn {
			return scaledIn{P: pt, Scale: scale.Output(), Shift: shift.Ref()}
		},
		func(v float64) float64 { return v },
		&hpo.Options{Sampler: hpo.Grid, MaxTrials: 4, ParallelTrials: 2, Direction: hpo.Maximize})

	res := pipelinetest.NewEnv(t).RunWithParams(p, map[string]string{"shift": "0.5"})

	require.NoError(t, res.Err())
	out := pipelinetest.Output(res, search)
	var got []float64
	for _, tr := range out.Trials {
		got = append(got, tr.Output)
	}
	assert.Equal(t, []float64{0.5, 10.5, 20.5, 30.5}, got)
	assert.Equal(t, 3, out.BestTrial)
}
