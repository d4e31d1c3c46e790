package hpo_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/argo"
	"github.com/sluice-ml/sluice/backends/kubejob"
	"github.com/sluice-ml/sluice/hpo"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/pipeline/pipelinetest"
	"github.com/sluice-ml/sluice/task"
)

// EpochHP has a budget field, Epochs, that the search sets.
type EpochHP struct {
	X      float64
	Epochs int
}

type fitIn struct{ HP pipeline.Ref[EpochHP] }

// fitOut names the trial's checkpoint and the one it resumed from.
type fitOut struct {
	Loss       float64
	Checkpoint string
	From       string  // the previous rung's checkpoint, if resumed
	PrevBudget float64 // the previous rung's budget, if resumed
}

var fit = task.New("fit", func(ctx context.Context, in fitIn) (fitOut, error) {
	return fitOut{}, errors.New("the real trial does not run in these tests; stub it")
})

// stubFit replaces fit by a synthetic trial whose loss is (x-2)² +
// 10/epochs, that takes a virtual minute per epoch it trains (only the
// epochs beyond its checkpoint's), and that fails where fail says so.
func stubFit(env *pipelinetest.Env, fail func(EpochHP) bool) {
	pipelinetest.Stub(env, fit, func(ctx context.Context, in fitIn) (fitOut, error) {
		hp := in.HP.Get()
		prev, prevBudget, ok := hpo.Previous[fitOut](ctx)
		if err := env.Clock().Sleep(ctx, time.Duration(float64(hp.Epochs)-prevBudget)*time.Minute); err != nil {
			return fitOut{}, err
		}
		if fail != nil && fail(hp) {
			return fitOut{}, fmt.Errorf("diverged at %d epochs", hp.Epochs)
		}
		out := fitOut{Loss: (hp.X-2)*(hp.X-2) + 10/float64(hp.Epochs), Checkpoint: fmt.Sprintf("x%v-e%d", hp.X, hp.Epochs)}
		if ok {
			out.From, out.PrevBudget = prev.Checkpoint, prevBudget
		}
		return out, nil
	})
}

func fitSearch(space hpo.Space[EpochHP], opts *hpo.Options) (*pipeline.Pipeline, pipeline.Step[hpo.Result[EpochHP, fitOut]]) {
	p := pipeline.New("tune", nil)
	if space == nil {
		space = hpo.Space[EpochHP]{"X": hpo.FloatStep(0, 8, 1)}
	}
	s := hpo.Search(p, space, fit,
		func(hp pipeline.Ref[EpochHP]) fitIn { return fitIn{HP: hp} },
		func(o fitOut) float64 { return o.Loss }, opts)
	return p, s
}

func asha(minB, maxB float64) *hpo.EarlyStopping {
	return &hpo.EarlyStopping{Budget: "Epochs", Min: minB, Max: maxB}
}

// runsAt counts the runs of every trial by budget.
func runsAt(trials []hpo.Trial[EpochHP, fitOut]) map[float64]int {
	n := map[float64]int{}
	for _, t := range trials {
		for _, r := range t.Rungs {
			n[r.Budget]++
		}
	}
	return n
}

func statesOf(trials []hpo.Trial[EpochHP, fitOut]) map[hpo.State]int {
	n := map[hpo.State]int{}
	for _, t := range trials {
		n[t.State]++
	}
	return n
}

// Successive halving of 9 trials at once, eta 3: 9 runs at budget 1, the
// best 3 at 3, the best of those at 9, in three rounds.
func TestASHARunsRungsOfGrowingBudget(t *testing.T) {
	p, search := fitSearch(nil, &hpo.Options{Sampler: hpo.Grid, MaxTrials: 9, ParallelTrials: 9, EarlyStopping: asha(1, 9)})
	env := pipelinetest.NewEnv(t)
	stubFit(env, nil)

	res := env.Run(p)

	require.NoError(t, res.Err())
	out := pipelinetest.Output(res, search)
	require.Len(t, out.Trials, 9, "MaxTrials counts configurations")
	assert.Equal(t, map[float64]int{1: 9, 3: 3, 9: 1}, runsAt(out.Trials))
	assert.Equal(t, map[hpo.State]int{hpo.Pruned: 8, hpo.Complete: 1}, statesOf(out.Trials))
	assert.Equal(t, []string{
		"search-suggest-0", "search-trials-0", "search-suggest-1", "search-trials-1",
		"search-suggest-2", "search-trials-2", "search",
	}, stepsOf(res), "three rounds by default: the schedule's")

	best := out.Trials[2] // x = 2
	assert.Equal(t, 2, out.BestTrial)
	assert.Equal(t, hpo.Complete, best.State)
	assert.Equal(t, EpochHP{X: 2, Epochs: 9}, best.Params, "the search set the budget field")
	assert.Equal(t, out.BestParams, best.Params)
	assert.Equal(t, 9.0, best.Budget)
	assert.InDelta(t, 10.0/9, out.BestObjective, 1e-12)
	assert.Equal(t, []hpo.Rung{
		{Budget: 1, Objective: 10, State: hpo.Complete, Duration: time.Minute},
		{Budget: 3, Objective: 10.0 / 3, State: hpo.Complete, Duration: 2 * time.Minute},
		{Budget: 9, Objective: 10.0 / 9, State: hpo.Complete, Duration: 6 * time.Minute},
	}, best.Rungs, "each run resumed from the previous one's checkpoint")
	assert.Equal(t, 9*time.Minute, best.Duration, "the sum of its runs")
	// Previous gave the trial its previous rung's output and budget.
	assert.Equal(t, fitOut{Loss: 10.0 / 9, Checkpoint: "x2-e9", From: "x2-e3", PrevBudget: 3}, best.Output)

	// x = 1 and 3 went on to budget 3 and stopped there; the rest at 1.
	for _, tr := range out.Trials {
		switch tr.ID {
		case 1, 3:
			assert.Equal(t, 3.0, tr.Budget)
			assert.Equal(t, "x"+fmt.Sprint(tr.ID)+"-e1", tr.Output.From)
			assert.Equal(t, "pruned at budget 3: not promoted to budget 9", tr.Error)
		case 2:
		default:
			assert.Equal(t, hpo.Pruned, tr.State)
			assert.Equal(t, 1.0, tr.Budget)
			assert.Len(t, tr.Rungs, 1)
			assert.Empty(t, tr.Output.From, "a first run has nothing to resume from")
			assert.Zero(t, tr.Output.PrevBudget)
			assert.Equal(t, time.Minute, tr.Duration)
		}
	}
}

// stepsOf lists the steps that ran, a fan-out once for its instances.
func stepsOf(res *pipelinetest.Result) []string {
	var out []string
	for _, name := range res.Order() {
		name, _, _ = strings.Cut(name, "[")
		if len(out) == 0 || out[len(out)-1] != name {
			out = append(out, name)
		}
	}
	return out
}

// With fewer runs per round than trials, the default rounds are those
// the schedule needs at that width, and every rung still fills.
func TestASHAInNarrowRounds(t *testing.T) {
	opts := &hpo.Options{Sampler: hpo.Grid, MaxTrials: 9, ParallelTrials: 3, EarlyStopping: asha(1, 9)}
	p, search := fitSearch(nil, opts)
	env := pipelinetest.NewEnv(t)
	stubFit(env, nil)

	res := env.Run(p)

	require.NoError(t, res.Err())
	out := pipelinetest.Output(res, search)
	assert.Len(t, stepsOf(res), 2*6+1, "six rounds: 3 new; 1 promoted, 2 new; 3 new; 1 and 1; 1; 1")
	assert.Equal(t, map[float64]int{1: 9, 3: 3, 9: 1}, runsAt(out.Trials))
	assert.Equal(t, map[hpo.State]int{hpo.Pruned: 8, hpo.Complete: 1}, statesOf(out.Trials))
	assert.Equal(t, 9.0, out.Trials[out.BestTrial].Budget)

	opts.Rounds = 5
	p, _ = fitSearch(nil, opts)
	assert.Equal(t, []fieldKey{{"pipeline.tasks[search].rounds", pipeline.ErrorTypeInvalid}}, keys(p.Validate()))
	assert.ErrorContains(t, p.Validate(), "set rounds to at least 6")
}

// Hyperband splits the trials over brackets that start at budgets 1, 3
// and 9 in the proportions 9/3 : 3/2 : 1/1, and halves within each.
func TestHyperbandBrackets(t *testing.T) {
	p, search := fitSearch(nil, &hpo.Options{Sampler: hpo.Random, Seed: 1, MaxTrials: 11, ParallelTrials: 11,
		EarlyStopping: &hpo.EarlyStopping{Rule: hpo.Hyperband, Budget: "Epochs", Min: 1, Max: 9}})
	env := pipelinetest.NewEnv(t)
	stubFit(env, nil)

	res := env.Run(p)

	require.NoError(t, res.Err())
	out := pipelinetest.Output(res, search)
	require.Len(t, out.Trials, 11)
	var starts []float64
	for _, tr := range out.Trials {
		starts = append(starts, tr.Rungs[0].Budget)
	}
	assert.Equal(t, []float64{1, 1, 1, 1, 1, 1, 3, 3, 3, 9, 9}, starts, "brackets of 6, 3 and 2 trials")
	// Bracket 0: 6 at 1, 2 at 3, none at 9 (2/3 rounds down); bracket 1:
	// 3 at 3, 1 at 9; bracket 2: 2 at 9.
	assert.Equal(t, map[float64]int{1: 6, 3: 2 + 3, 9: 1 + 2}, runsAt(out.Trials))
	assert.Equal(t, map[hpo.State]int{hpo.Pruned: 8, hpo.Complete: 3}, statesOf(out.Trials))
	assert.Equal(t, 9.0, out.Trials[out.BestTrial].Budget, "the best trial is among those at the last rung")
}

// The median rule stops a trial whose objective is worse than the median
// of the other trials' at its rung, and lets the others go on.
func TestMedianRulePrunesABadTrial(t *testing.T) {
	space := hpo.Space[EpochHP]{"X": hpo.FloatStep(0, 3, 1)} // losses 4, 1, 0, 1 + 10/epochs
	p, search := fitSearch(space, &hpo.Options{Sampler: hpo.Grid, MaxTrials: 4, ParallelTrials: 4,
		EarlyStopping: &hpo.EarlyStopping{Rule: hpo.Median, Budget: "Epochs", Min: 1, Max: 4, Eta: 2}})
	env := pipelinetest.NewEnv(t)
	stubFit(env, nil)

	res := env.Run(p)

	require.NoError(t, res.Err())
	out := pipelinetest.Output(res, search)
	var states []hpo.State
	var budgets []float64
	for _, tr := range out.Trials {
		states, budgets = append(states, tr.State), append(budgets, tr.Budget)
	}
	assert.Equal(t, []hpo.State{hpo.Pruned, hpo.Complete, hpo.Complete, hpo.Complete}, states)
	assert.Equal(t, []float64{1, 4, 4, 4}, budgets)
	assert.Equal(t, "pruned at budget 1: objective 14 is worse than the median 11 of 3 other trials there", out.Trials[0].Error)
	assert.Equal(t, 2, out.BestTrial)
}

// A run that fails fails its trial, within MaxFailedTrials; the rung it
// failed at then has fewer results to promote.
func TestFailedRunDuringARung(t *testing.T) {
	p, search := fitSearch(nil, &hpo.Options{Sampler: hpo.Grid, MaxTrials: 9, ParallelTrials: 9, MaxFailedTrials: 1, EarlyStopping: asha(1, 9)})
	env := pipelinetest.NewEnv(t)
	stubFit(env, func(hp EpochHP) bool { return hp.X == 2 && hp.Epochs == 3 })

	res := env.Run(p)

	require.NoError(t, res.Err())
	out := pipelinetest.Output(res, search)
	failed := out.Trials[2]
	assert.Equal(t, hpo.Failed, failed.State)
	assert.Equal(t, "the trial failed; step search-trials-1 says why", failed.Error)
	assert.Equal(t, []hpo.State{hpo.Complete, hpo.Failed}, []hpo.State{failed.Rungs[0].State, failed.Rungs[1].State})
	assert.Equal(t, time.Minute, failed.Duration, "the failed run's time is lost with its output")
	// Two results at budget 3 promote none (2/3 rounds down).
	assert.Equal(t, map[float64]int{1: 9, 3: 3}, runsAt(out.Trials))
	assert.Equal(t, map[hpo.State]int{hpo.Pruned: 8, hpo.Failed: 1}, statesOf(out.Trials))
	assert.Equal(t, 1, out.BestTrial, "the best of those that got furthest, budget 3")
}

// The goal counts only at the last rung.
func TestGoalNeedsTheLastRung(t *testing.T) {
	p, search := fitSearch(nil, &hpo.Options{Sampler: hpo.Grid, MaxTrials: 9, ParallelTrials: 3, Rounds: 8, Goal: new(5.0), EarlyStopping: asha(1, 9)})
	env := pipelinetest.NewEnv(t)
	stubFit(env, nil)
	res := env.Run(p)
	require.NoError(t, res.Err())
	out := pipelinetest.Output(res, search)
	// x = 2 reaches 10/3 < 5 at budget 3, which does not count.
	assert.Equal(t, "goal reached: trial 2's objective 1.1111111111111112 ≤ goal 5; rounds 6 to 7 proposed no trials", out.Stopped)
	assert.Equal(t, 9.0, out.Trials[2].Budget)
}

// A stateful sampler (Sobol) rebuilds its study in every round, asking
// again for the earlier trials, whose budgets the search set.
func TestEarlyStoppingWithAStatefulSampler(t *testing.T) {
	space := hpo.Space[EpochHP]{"X": hpo.Float(0, 8)}
	p, search := fitSearch(space, &hpo.Options{Sampler: hpo.Sobol, MaxTrials: 12, ParallelTrials: 4, EarlyStopping: asha(1, 9)})
	env := pipelinetest.NewEnv(t)
	stubFit(env, nil)
	res := env.Run(p)
	require.NoError(t, res.Err())
	out := pipelinetest.Output(res, search)
	assert.Len(t, out.Trials, 12)
	assert.Equal(t, 9.0, out.Trials[out.BestTrial].Budget)
}

func TestEarlyStoppingValidation(t *testing.T) {
	const at = "pipeline.tasks[search]."
	type EpochStr struct {
		X      float64
		Epochs string
	}
	for _, tc := range []struct {
		name  string
		es    hpo.EarlyStopping
		space hpo.Space[EpochHP]
		opts  hpo.Options
		want  []fieldKey
		text  string
	}{
		// Without a budget field, the space must name Epochs.
		{name: "no budget", es: hpo.EarlyStopping{Min: 1, Max: 9},
			want: []fieldKey{{at + "space.Epochs", pipeline.ErrorTypeRequired}, {at + "earlyStopping.budget", pipeline.ErrorTypeRequired}}, text: "name the field of hpo_test.EpochHP"},
		{name: "unknown budget field", es: hpo.EarlyStopping{Budget: "Steps", Min: 1, Max: 9},
			want: []fieldKey{{at + "space.Epochs", pipeline.ErrorTypeRequired}, {at + "earlyStopping.budget", pipeline.ErrorTypeNotFound}}, text: "its fields are X, Epochs"},
		{name: "the space names the budget", es: *asha(1, 9), space: hpo.Space[EpochHP]{"X": hpo.Float(0, 1), "Epochs": hpo.Int(1, 9)},
			want: []fieldKey{{at + "earlyStopping.budget", pipeline.ErrorTypeInvalid}}, text: "remove it from the space"},
		{name: "min 0", es: *asha(0, 9),
			want: []fieldKey{{at + "earlyStopping.min", pipeline.ErrorTypeInvalid}}, text: "must be above 0"},
		{name: "min above max", es: *asha(9, 3),
			want: []fieldKey{{at + "earlyStopping.max", pipeline.ErrorTypeInvalid}}, text: "must be above min (9)"},
		{name: "eta 1", es: hpo.EarlyStopping{Budget: "Epochs", Min: 1, Max: 9, Eta: 1},
			want: []fieldKey{{at + "earlyStopping.eta", pipeline.ErrorTypeInvalid}}, text: "2 or more"},
		{name: "one rung", es: *asha(1, 2),
			want: []fieldKey{{at + "earlyStopping.max", pipeline.ErrorTypeInvalid}}, text: "max must be at least min·eta (3)"},
		{name: "integer budgets that round alike", es: hpo.EarlyStopping{Budget: "Epochs", Min: 0.2, Max: 1, Eta: 2},
			want: []fieldKey{{at + "earlyStopping.min", pipeline.ErrorTypeInvalid}}, text: "raise min"},
		{name: "unknown rule", es: hpo.EarlyStopping{Rule: "sha", Budget: "Epochs", Min: 1, Max: 9},
			want: []fieldKey{{at + "earlyStopping.rule", pipeline.ErrorTypeNotSupported}}},
		{name: "too few rounds", es: *asha(1, 9), opts: hpo.Options{Rounds: 2},
			want: []fieldKey{{at + "rounds", pipeline.ErrorTypeInvalid}}, text: "set rounds to at least 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.opts
			opts.MaxTrials, opts.ParallelTrials, opts.EarlyStopping = 9, 9, &tc.es
			p, _ := fitSearch(tc.space, &opts)
			err := p.Validate()
			assert.Equal(t, tc.want, keys(err))
			if tc.text != "" {
				assert.ErrorContains(t, err, tc.text)
			}
		})
	}
	t.Run("a budget field that is not a number", func(t *testing.T) {
		p := pipeline.New("p", nil)
		trial := task.New("t", func(ctx context.Context, in pipeline.Ref[EpochStr]) (float64, error) { return 0, nil })
		hpo.Search(p, hpo.Space[EpochStr]{"X": hpo.Float(0, 1)}, trial,
			func(r pipeline.Ref[EpochStr]) pipeline.Ref[EpochStr] { return r },
			func(v float64) float64 { return v },
			&hpo.Options{MaxTrials: 3, EarlyStopping: &hpo.EarlyStopping{Budget: "Epochs", Min: 1, Max: 9}})
		err := p.Validate()
		assert.Equal(t, []fieldKey{{at + "earlyStopping.budget", pipeline.ErrorTypeInvalid}}, keys(err))
		assert.ErrorContains(t, err, "must be an integer or a float")
	})
	t.Run("valid", func(t *testing.T) {
		for _, rule := range []hpo.StoppingRule{hpo.ASHA, hpo.Hyperband, hpo.Median} {
			p, _ := fitSearch(nil, &hpo.Options{MaxTrials: 9, ParallelTrials: 3, EarlyStopping: &hpo.EarlyStopping{Rule: rule, Budget: "Epochs", Min: 1, Max: 9}})
			assert.NoError(t, p.Validate(), rule)
		}
		// A float budget: a fraction of the data.
		type Frac struct {
			X    float64
			Data float64
		}
		p := pipeline.New("p", nil)
		trial := task.New("t", func(ctx context.Context, in pipeline.Ref[Frac]) (float64, error) { return 0, nil })
		hpo.Search(p, hpo.Space[Frac]{"X": hpo.Float(0, 1)}, trial,
			func(r pipeline.Ref[Frac]) pipeline.Ref[Frac] { return r },
			func(v float64) float64 { return v },
			&hpo.Options{MaxTrials: 8, ParallelTrials: 8, EarlyStopping: &hpo.EarlyStopping{Budget: "Data", Min: 0.125, Max: 1, Eta: 2}})
		assert.NoError(t, p.Validate())
	})
}

// With early stopping too, the manifest grows with the rounds, not with
// the trials or their runs.
func TestEarlyStoppingManifestDoesNotGrowWithTrials(t *testing.T) {
	for name, b := range map[string]backends.Backend{
		"argo":    argo.New(nil, &argo.Options{Pod: pod}),
		"kubejob": kubejob.New(nil, &kubejob.Options{Pod: pod}),
	} {
		t.Run(name, func(t *testing.T) {
			size := func(trials, parallel int) int {
				p, _ := fitSearch(hpo.Space[EpochHP]{"X": hpo.Float(0, 8)}, &hpo.Options{MaxTrials: trials, ParallelTrials: parallel, Rounds: 30, EarlyStopping: asha(1, 9)})
				require.NoError(t, p.Validate())
				art, err := pipeline.Compile(context.Background(), p, b, nil)
				require.NoError(t, err)
				return len(bytes.Join(art.Documents(), []byte("---\n")))
			}
			small, large := size(9, 9), size(900, 90)
			t.Logf("%s: 9 trials %d bytes, 900 trials %d bytes", name, small, large)
			assert.LessOrEqual(t, float64(large)/float64(small), 1.05)
		})
	}
}
