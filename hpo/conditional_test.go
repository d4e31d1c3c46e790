package hpo

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/internal/field"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/pipeline/pipelinetest"
	"github.com/sluice-ml/sluice/task"
)

// optParams has fields that matter only for one optimizer.
type optParams struct {
	Optimizer string  `json:"optimizer"`
	LR        float64 `json:"lr"`
	Momentum  float64 `json:"momentum"`
	Beta2     float64 `json:"beta2"`
	Nesterov  bool    `json:"nesterov"`
	Layers    int     `json:"layers"`
}

func optSpace() Space[optParams] {
	return Space[optParams]{
		"Optimizer": Choice("sgd", "adam", "rmsprop"),
		"LR":        LogFloat(1e-4, 1),
		"Momentum":  Float(0.5, 0.99).When("Optimizer", "sgd", "rmsprop"),
		"Beta2":     LogFloat(0.9, 0.9999).When("optimizer", "adam"),
		"Nesterov":  Choice(false, true).When("Optimizer", "sgd"),
		"Layers":    Fixed(2),
	}
}

// checkActive fails unless every field of p that its optimizer does not
// use holds its zero value, and every one it uses is in range.
func checkActive(t *testing.T, p optParams) {
	t.Helper()
	switch p.Optimizer {
	case "sgd":
		assert.True(t, p.Momentum >= 0.5 && p.Momentum <= 0.99, "momentum searched for sgd: %+v", p)
		assert.Zero(t, p.Beta2, "beta2 is adam's: %+v", p)
	case "adam":
		assert.Zero(t, p.Momentum, "momentum is not adam's: %+v", p)
		assert.False(t, p.Nesterov, "nesterov is sgd's: %+v", p)
		assert.True(t, p.Beta2 >= 0.9 && p.Beta2 <= 0.9999, "beta2 searched for adam: %+v", p)
	case "rmsprop":
		assert.True(t, p.Momentum >= 0.5, "momentum searched for rmsprop: %+v", p)
		assert.Zero(t, p.Beta2)
		assert.False(t, p.Nesterov)
	default:
		t.Errorf("optimizer %q", p.Optimizer)
	}
	assert.Equal(t, 2, p.Layers)
}

type condIn struct {
	HP pipeline.Ref[optParams] `json:"hp"`
}

func TestConditionalValidation(t *testing.T) {
	base := optSpace()
	with := func(k string, d Dim) Space[optParams] {
		s := Space[optParams]{}
		for kk, v := range base {
			s[kk] = v
		}
		s[k] = d
		return s
	}
	for _, tc := range []struct {
		name  string
		space Space[optParams]
		want  []string
	}{
		{"UnknownParent", with("Momentum", Float(0, 1).When("Optimiser", "sgd")),
			[]string{`space.Momentum.when: NotFound "Optimiser": hpo.optParams has no searched field "Optimiser"`}},
		{"ParentNotAChoice", with("Momentum", Float(0, 1).When("LR", 0.1)),
			[]string{`space.Momentum.when: Invalid "LR": LR is LogFloat(0.0001, 1), not a Choice`}},
		{"ParentConditional", with("Beta2", LogFloat(0.9, 0.99).When("Nesterov", true)),
			[]string{`space.Beta2.when: Invalid "Nesterov": Nesterov is conditional itself`}},
		{"Self", with("Momentum", Float(0, 1).When("Momentum", 1.0)),
			[]string{`space.Momentum.when: Invalid "Momentum": a field cannot depend on itself`}},
		{"NoValues", with("Momentum", Float(0, 1).When("Optimizer")),
			[]string{`space.Momentum.when: Required: say which of Optimizer's values make Momentum searched`}},
		{"NotAChoiceValue", with("Momentum", Float(0, 1).When("Optimizer", "sgd", "adagrad")),
			[]string{`space.Momentum.when[1]: Invalid "adagrad": is not one of Optimizer's choices [sgd adam rmsprop]`}},
		{"ParentFixed", with("Optimizer", Fixed("sgd")),
			[]string{`space.Momentum.when: Invalid "Optimizer": Optimizer is Fixed(sgd), not a Choice`,
				`space.Beta2.when: Invalid "optimizer": Optimizer is Fixed(sgd), not a Choice`,
				`space.Nesterov.when: Invalid "Optimizer": Optimizer is Fixed(sgd), not a Choice`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errs := tc.space.plan(field.NewPath("space"))
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
			}
			require.Len(t, got, len(tc.want), "%q", got)
			for i, w := range tc.want {
				assert.True(t, strings.HasPrefix(got[i], w), "got %q, want %q", got[i], w)
			}
		})
	}
	_, errs := optSpace().plan(nil)
	assert.Empty(t, errs)
	assert.Equal(t, "Float(0.5, 0.99).When(Optimizer, [sgd rmsprop])", optSpace()["Momentum"].String())
}

// Every sampler proposes conditional fields only where they are active;
// the independent samplers leave inactive ones out of the study.
func TestConditionalSamplers(t *testing.T) {
	sp, errs := optSpace().plan(nil)
	require.Empty(t, errs)
	for _, s := range []Sampler{Random, TPE, CMAES, Sobol} {
		t.Run(string(s), func(t *testing.T) {
			st, err := newStudy(sp, s, 7, Minimize)
			require.NoError(t, err)
			seen := map[string]int{}
			for range 40 {
				id, xs, err := st.ask()
				require.NoError(t, err)
				p, err := fromSampler[optParams](sp, xs)
				require.NoError(t, err)
				checkActive(t, p)
				seen[p.Optimizer]++
				back, err := toSampler(sp, p)
				require.NoError(t, err)
				p2, err := fromSampler[optParams](sp, back)
				require.NoError(t, err)
				assert.Equal(t, p, p2, "toSampler then fromSampler gives the same params")
				// Lower is better with momentum near 0.9.
				require.NoError(t, st.tell(id, p.LR+(p.Momentum-0.9)*(p.Momentum-0.9), true))
			}
			if s != CMAES {
				// (goptuna's CMA-ES starts with a step size of a sixth of
				// the narrowest range, here beta2's log range, so it
				// stays near the centre's optimizer.)
				assert.Len(t, seen, 3, "every optimizer proposed: %v", seen)
			}
			trials, err := st.s.GetTrials()
			require.NoError(t, err)
			for _, tr := range trials {
				_, hasBeta := tr.InternalParams["beta2"]
				if st.independent {
					assert.Equal(t, hasBeta, math.Round(tr.InternalParams["optimizer"]) == 1, "beta2 only in adam's trials")
				} else {
					assert.True(t, hasBeta, "a fixed search space draws every field")
				}
			}
		})
	}
}

func TestConditionalGrid(t *testing.T) {
	type gp struct {
		Model string `json:"model"`
		Depth int    `json:"depth"`
		C     float64
		Seed  int
	}
	sp, errs := Space[gp]{
		"Model": Choice("tree", "svm", "linear"),
		"Depth": IntStep(2, 6, 2).When("Model", "tree"),
		"C":     Choice(0.1, 1.0).When("Model", "svm", "linear"),
		"Seed":  Int(1, 2),
	}.plan(nil)
	require.Empty(t, errs)
	// tree: 3 depths; svm, linear: 2 Cs each; all × 2 seeds.
	assert.Equal(t, 14, gridSize(sp, 100))
	all, err := gridPoints[gp](sp, 0, 100)
	require.NoError(t, err)
	require.Len(t, all, 14)
	assert.Equal(t, gp{Model: "tree", Depth: 2, Seed: 1}, all[0])
	assert.Equal(t, gp{Model: "tree", Depth: 6, Seed: 1}, all[2])
	assert.Equal(t, gp{Model: "tree", Depth: 2, Seed: 2}, all[3])
	assert.Equal(t, gp{Model: "svm", C: 0.1, Seed: 1}, all[6])
	assert.Equal(t, gp{Model: "linear", C: 1.0, Seed: 2}, all[13])
	seen := map[gp]bool{}
	for _, p := range all {
		assert.False(t, seen[p], "each point once: %+v", p)
		seen[p] = true
	}
}

// A conditional search runs end to end: every trial gets only its
// optimizer's fields, the plot and CSV are drawn, and a stateful sampler
// replays the earlier rounds (CMA-ES: the fields it drew for an inactive
// field are dropped, and replaying gives the same params again).
func TestConditionalSearch(t *testing.T) {
	for _, s := range []Sampler{TPE, CMAES, Grid} {
		t.Run(string(s), func(t *testing.T) {
			space := optSpace()
			if s == Grid {
				space = Space[optParams]{
					"Optimizer": Choice("sgd", "adam"),
					"LR":        Choice(0.01, 0.1),
					"Momentum":  Choice(0.9, 0.99).When("Optimizer", "sgd"),
					"Beta2":     Fixed(0.999).When("Optimizer", "adam"),
					"Nesterov":  Fixed(false),
					"Layers":    Fixed(2),
				}
			}
			p := pipeline.New("cond", nil)
			train := task.New("train", func(_ context.Context, in condIn) (float64, error) {
				hp := in.HP.Get()
				return hp.LR + (hp.Momentum-0.9)*(hp.Momentum-0.9) + hp.Beta2/10, nil
			})
			search := Search(p, space, train, func(r pipeline.Ref[optParams]) condIn { return condIn{HP: r} },
				func(v float64) float64 { return v }, &Options{Sampler: s, Seed: 3, MaxTrials: 6, ParallelTrials: 2})
			res := pipelinetest.NewEnv(t).Run(p)
			require.NoError(t, res.Err())
			out := pipelinetest.Output(res, search)
			require.Len(t, out.Trials, 6)
			for _, tr := range out.Trials {
				if s == Grid {
					if tr.Params.Optimizer == "adam" {
						assert.Equal(t, 0.999, tr.Params.Beta2)
						assert.Zero(t, tr.Params.Momentum)
					} else {
						assert.Zero(t, tr.Params.Beta2)
					}
					continue
				}
				checkActive(t, tr.Params)
			}
			var svg strings.Builder
			require.NoError(t, out.Plot(&svg, "svg"))
			var csv strings.Builder
			require.NoError(t, out.WriteCSV(&csv))
			b, err := json.Marshal(out.Dims)
			require.NoError(t, err)
			if s != Grid {
				assert.Contains(t, string(b), `"when":{"field":"optimizer","values":["sgd","rmsprop"]}`)
			}
		})
	}
}
