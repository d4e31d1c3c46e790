package hpo

// The benchmarks of issue #13 ("How it is checked"): each runs a sampler
// or an early-stopping rule and its baseline in the same run, over 20
// seeds, through Search on pipelinetest's virtual clock (the rounds and
// their widths are the real ones), and reports the figures as custom
// metrics and as a markdown table in the benchmark's log. They are
// deterministic for a seed: this package's test binary lets math/rand's
// global Seed take effect (the //go:debug line in sampler_test.go), which
// seeded TPE needs. Run them with
//
//	go test ./hpo -run '^$' -bench . -benchtime 1x
//
// The time per op is that of all the searches of a sub-benchmark; only
// the custom metrics are the point.

import (
	"context"
	"fmt"
	"math"
	randv2 "math/rand/v2"
	"strings"
	"testing"

	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/pipeline/pipelinetest"
	"github.com/sluice-ml/sluice/task"

	"github.com/stretchr/testify/assert"
)

// benchSeeds is how many seeds every comparison runs.
const benchSeeds = 20

// braninMin is Branin's global minimum, at (-π, 12.275), (π, 2.275) and
// (9.42478, 2.475).
const braninMin = 0.397887

// objIn and objOut are the input and output of a benchmark's trial,
// which evaluates a test function at the proposed point.
type objIn[P any] struct{ P pipeline.Ref[P] }
type objOut struct{ V float64 }

// searchOn runs a search over space that minimizes f, with opts, in a
// fresh pipelinetest environment, and returns its Result.
func searchOn[P any](b *testing.B, space Space[P], f func(P) float64, opts Options) Result[P, objOut] {
	b.Helper()
	eval := task.New("objective", func(_ context.Context, in objIn[P]) (objOut, error) {
		return objOut{f(in.P.Get())}, nil
	})
	p := pipeline.New("bench", nil)
	s := Search(p, space, eval,
		func(pt pipeline.Ref[P]) objIn[P] { return objIn[P]{P: pt} },
		func(o objOut) float64 { return o.V }, &opts)
	res := pipelinetest.NewEnv(b).Run(p)
	if err := res.Err(); err != nil {
		b.Fatalf("search with %+v: %v", opts, err)
	}
	return pipelinetest.Output(res, s)
}

// width is a round width: Sequential rounds of one trial (Rounds =
// MaxTrials, the most adaptive) or rounds of ParallelTrials trials.
type width struct {
	name     string
	parallel int
}

var widths = []width{{"sequential", 1}, {"parallel4", 4}}

// comparison is the outcome of a sampler against a baseline over the
// seeds: each seed's best objective.
type comparison struct {
	name, sampler, baseline string
	optimum                 float64 // subtracted to give the regret
	best, base              []float64
}

// wins is the fraction of seeds where the sampler's best is strictly
// better (lower) than the baseline's.
func (c comparison) wins() float64 {
	n := 0
	for i := range c.best {
		if c.best[i] < c.base[i] {
			n++
		}
	}
	return float64(n) / float64(len(c.best))
}

func regrets(xs []float64, optimum float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = x - optimum
	}
	return out
}

// report reports c's figures as metrics and logs them as a markdown
// table row (with the header, so that every sub-benchmark's log reads
// alone).
func (c comparison) report(b *testing.B) {
	ms, mb := median(regrets(c.best, c.optimum)), median(regrets(c.base, c.optimum))
	b.ReportMetric(ms, c.sampler+"-median-regret")
	b.ReportMetric(mb, c.baseline+"-median-regret")
	b.ReportMetric(c.wins(), "win-fraction")
	b.Logf("\n| benchmark | %s median regret | %s median regret | %s wins |\n|---|---|---|---|\n| %s | %.4g | %.4g | %d/%d |",
		c.sampler, c.baseline, c.sampler, c.name, ms, mb, int(math.Round(c.wins()*float64(len(c.best)))), len(c.best))
}

// compare runs the sampler and Random, maxTrials each, on every seed.
func compare[P any](b *testing.B, name string, s Sampler, space Space[P], f func(P) float64, optimum float64, maxTrials int, w width) comparison {
	c := comparison{name: name, sampler: string(s), baseline: string(Random), optimum: optimum}
	for seed := int64(1); seed <= benchSeeds; seed++ {
		opts := Options{Seed: seed, MaxTrials: maxTrials, ParallelTrials: w.parallel}
		opts.Sampler = s
		c.best = append(c.best, searchOn(b, space, f, opts).BestObjective)
		opts.Sampler = Random
		c.base = append(c.base, searchOn(b, space, f, opts).BestObjective)
	}
	return c
}

// BenchmarkTPEBranin: TPE against random search on Branin (x1 ∈ [-5,
// 10], x2 ∈ [0, 15]), 60 trials. The goals: TPE's median regret
// (best − 0.397887) ≤ 0.1, and TPE's best lower than random search's for
// at least 80% of the seeds.
func BenchmarkTPEBranin(b *testing.B) {
	space := Space[point]{"X1": Float(-5, 10), "X2": Float(0, 15)}
	f := func(p point) float64 { return branin(p.X1, p.X2) }
	for _, w := range widths {
		b.Run(w.name, func(b *testing.B) {
			var c comparison
			for range b.N {
				c = compare(b, "Branin 60 trials "+w.name, TPE, space, f, braninMin, 60, w)
			}
			c.report(b)
		})
	}
}

// vec5 is a point of a 5-D benchmark.
type vec5 struct{ A, B, C, D, E float64 }

func (v vec5) xs() []float64 { return []float64{v.A, v.B, v.C, v.D, v.E} }

// sphere is Σ x², 0 at the origin.
func sphere(v vec5) float64 {
	s := 0.0
	for _, x := range v.xs() {
		s += x * x
	}
	return s
}

// rosenbrock is Σ 100(x_{i+1} − x_i²)² + (1 − x_i)², 0 at (1, …, 1).
func rosenbrock(v vec5) float64 {
	x, s := v.xs(), 0.0
	for i := range len(x) - 1 {
		s += 100*math.Pow(x[i+1]-x[i]*x[i], 2) + math.Pow(1-x[i], 2)
	}
	return s
}

func cube5(lo, hi float64) Space[vec5] {
	return Space[vec5]{"A": Float(lo, hi), "B": Float(lo, hi), "C": Float(lo, hi), "D": Float(lo, hi), "E": Float(lo, hi)}
}

// BenchmarkCMAES: CMA-ES against random search on the 5-D sphere (x_i ∈
// [-5.12, 5.12]) and Rosenbrock (x_i ∈ [-5, 10]) functions, 100 trials,
// in rounds of 4. Both minima are 0, so the regret is the best value.
// The goal: CMA-ES beats random search. Only rounds of 4 run:
// goptuna's CMA-ES learns once per generation (8 trials in 5-D), and
// the sequential search (each suggest step replays every earlier trial,
// so it is quadratic in the rounds and three times slower here)
// proposed the very same trials.
func BenchmarkCMAES(b *testing.B) {
	fns := []struct {
		name  string
		space Space[vec5]
		f     func(vec5) float64
	}{
		{"sphere5", cube5(-5.12, 5.12), sphere},
		{"rosenbrock5", cube5(-5, 10), rosenbrock},
	}
	w := widths[1]
	for _, fn := range fns {
		b.Run(fn.name+"/"+w.name, func(b *testing.B) {
			var c comparison
			for range b.N {
				c = compare(b, fn.name+" 100 trials "+w.name, CMAES, fn.space, fn.f, 0, 100, w)
			}
			c.report(b)
		})
	}
}

// curveHP is the hyperparameters of the synthetic learning-curve
// benchmark; Epochs is the early-stopping budget.
type curveHP struct {
	LR       float64
	Momentum float64
	Epochs   int
}

type curveIn struct{ HP pipeline.Ref[curveHP] }

// curveOut is a trial's validation loss and the epochs it trained in
// this run (those beyond the checkpoint it resumed from).
type curveOut struct {
	Loss    float64
	Trained int
}

const curveStart = 2.3 // every curve's loss at epoch 0

// curveLoss is the validation loss of hp after e epochs: a curve that
// decays exponentially from curveStart to the configuration's final loss,
//
//	loss(e) = final + (start − final)·exp(−e/τ)
//
// times (1 + 0.002·z), z a standard normal drawn from a source seeded by
// the configuration and e (so the same trial at the same epoch gives the
// same loss, resumed or not). final is smallest, 0.05, at LR = 10⁻²
// and momentum 0.9, and grows with the distance from them (in decades of
// LR); τ, the epochs the curve takes to decay by e, is 2 at LR = 10⁻²,
// larger for smaller rates (20 at 10⁻⁴) and smaller for larger ones,
// and grows as momentum drops. So a fast learner can lead at a few
// epochs and lose at many: early rungs rank configurations imperfectly,
// as short runs of real training favour large learning rates. With
// fixedTau > 0, every curve has τ = fixedTau instead: the curves do not
// cross (but for the noise), and early rungs rank them as the last does.
func curveLoss(hp curveHP, e int, fixedTau float64) float64 {
	u := math.Log10(hp.LR) + 2
	final := 0.05 + 0.08*u*u + 0.3*(hp.Momentum-0.9)*(hp.Momentum-0.9)
	tau := 2 * math.Pow(10, -0.5*u) * (1.5 - hp.Momentum) / 0.6
	if fixedTau > 0 {
		tau = fixedTau
	}
	loss := final + (curveStart-final)*math.Exp(-float64(e)/tau)
	r := randv2.New(randv2.NewPCG(math.Float64bits(hp.LR)^uint64(e), math.Float64bits(hp.Momentum)))
	return loss * (1 + 0.002*r.NormFloat64())
}

// curveSearch runs a search of the learning-curve benchmark and returns
// its Result.
func curveSearch(b *testing.B, opts Options, epochs int, fixedTau float64) Result[curveHP, curveOut] {
	b.Helper()
	train := task.New("train", func(ctx context.Context, in curveIn) (curveOut, error) {
		hp := in.HP.Get()
		if hp.Epochs == 0 {
			hp.Epochs = epochs
		}
		_, from, _ := Previous[curveOut](ctx)
		return curveOut{Loss: curveLoss(hp, hp.Epochs, fixedTau), Trained: hp.Epochs - int(from)}, nil
	})
	space := Space[curveHP]{"LR": LogFloat(1e-4, 1), "Momentum": Float(0, 0.99)}
	if opts.EarlyStopping == nil {
		space["Epochs"] = Fixed(epochs)
	}
	p := pipeline.New("bench", nil)
	s := Search(p, space, train,
		func(hp pipeline.Ref[curveHP]) curveIn { return curveIn{HP: hp} },
		func(o curveOut) float64 { return o.Loss }, &opts)
	res := pipelinetest.NewEnv(b).Run(p)
	if err := res.Err(); err != nil {
		b.Fatalf("search with %+v: %v", opts, err)
	}
	return pipelinetest.Output(res, s)
}

// epochsOf is the epochs a search trained in all: each run's epochs
// beyond the checkpoint it resumed from, as a trial that resumes with
// Previous trains them.
func epochsOf(r Result[curveHP, curveOut]) int {
	n := 0
	for _, t := range r.Trials {
		if len(t.Rungs) == 0 {
			n += t.Output.Trained
			continue
		}
		prev := 0.0
		for _, g := range t.Rungs {
			n += int(g.Budget - prev)
			prev = g.Budget
		}
	}
	return n
}

// BenchmarkASHA: ASHA (Eta 3, Max 27 epochs) against full-budget random
// search (20 configurations at 27 epochs), both with the Random sampler,
// on the synthetic learning curves of curveLoss. Two ASHA schedules with
// about a third of random search's epochs: rungs 1, 3, 9, 27 with 60
// configurations, and rungs 3, 9, 27 with 30. Two families of curves:
// "crossing", whose speed depends on the hyperparameters (large learning
// rates lead early and end worse), and "tau4", which all decay alike and
// so keep their order from the first epoch. ASHA's best objective is its
// best trial's at 27 epochs; ASHA "reaches" random search's best when it
// is at most 1% above it (≤ 1.01 × random's best). Epochs count what the
// trials train: a promoted trial resumes from its previous rung's
// checkpoint. The goal: ASHA reaches full-budget random search's
// best with ≤ 40% of its epochs; the benchmark reports the fraction of
// seeds where it reaches it, the medians of both bests and the ratio of
// the epochs (summed over the seeds).
func BenchmarkASHA(b *testing.B) {
	schedules := []struct {
		minEpochs float64
		trials    int
	}{{1, 60}, {3, 30}}
	curves := []struct {
		name     string
		fixedTau float64
	}{{"crossing", 0}, {"tau4", 4}}
	for _, cv := range curves {
		for _, sc := range schedules {
			for _, w := range widths {
				ashaCase(b, cv.name, cv.fixedTau, sc.minEpochs, sc.trials, w)
			}
		}
	}
}

// ashaCase runs one case of BenchmarkASHA: ASHA's rungs from minEpochs
// to 27 with trials configurations, full-budget random search with 20,
// on the curves of curveLoss with fixedTau.
func ashaCase(b *testing.B, curves string, fixedTau, minEpochs float64, trials int, w width) {
	const maxEpochs, fullTrials = 27, 20
	b.Run(fmt.Sprintf("%s/min%v-%dtrials/%s", curves, minEpochs, trials, w.name), func(b *testing.B) {
		var asha, full []float64
		var ashaEpochs, fullEpochs, reached int
		for range b.N {
			asha, full, ashaEpochs, fullEpochs, reached = nil, nil, 0, 0, 0
			for seed := int64(1); seed <= benchSeeds; seed++ {
				a := curveSearch(b, Options{Seed: seed, MaxTrials: trials, ParallelTrials: w.parallel,
					EarlyStopping: &EarlyStopping{Budget: "Epochs", Min: minEpochs, Max: maxEpochs}}, maxEpochs, fixedTau)
				f := curveSearch(b, Options{Seed: seed, MaxTrials: fullTrials, ParallelTrials: w.parallel}, maxEpochs, fixedTau)
				asha, full = append(asha, a.BestObjective), append(full, f.BestObjective)
				ashaEpochs += epochsOf(a)
				fullEpochs += epochsOf(f)
				if a.BestObjective <= 1.01*f.BestObjective {
					reached++
				}
			}
		}
		ratio := float64(ashaEpochs) / float64(fullEpochs)
		b.ReportMetric(median(asha), "asha-median-best")
		b.ReportMetric(median(full), "random-median-best")
		b.ReportMetric(float64(reached)/benchSeeds, "reach-fraction")
		b.ReportMetric(ratio, "epoch-ratio")
		var sb strings.Builder
		fmt.Fprintf(&sb, "\n| benchmark | ASHA median best | full random median best | ASHA reaches (≤ 1.01×) | ASHA epochs | random epochs | ratio |\n|---|---|---|---|---|---|---|\n")
		fmt.Fprintf(&sb, "| %s curves, rungs from %v, %d configs, %s | %.4f | %.4f | %d/%d | %d | %d | %.2f |",
			curves, minEpochs, trials, w.name, median(asha), median(full), reached, benchSeeds, ashaEpochs/benchSeeds, fullEpochs/benchSeeds, ratio)
		b.Log(sb.String())
	})
}

// The learning curves behave as BenchmarkASHA's doc says: repeatable,
// decaying, crossing unless τ is fixed.
func TestCurveLoss(t *testing.T) {
	best, fast := curveHP{LR: 1e-2, Momentum: 0.9}, curveHP{LR: 1e-1, Momentum: 0.9}
	assert.Equal(t, curveLoss(best, 5, 0), curveLoss(best, 5, 0), "repeatable")
	assert.Less(t, curveLoss(best, 27, 0), curveLoss(best, 3, 0))
	assert.Less(t, curveLoss(best, 3, 0), curveLoss(best, 1, 0))
	assert.Less(t, curveLoss(fast, 1, 0), curveLoss(best, 1, 0), "the fast learner leads at 1 epoch")
	assert.Less(t, curveLoss(best, 27, 0), curveLoss(fast, 27, 0), "and loses at 27")
	assert.Less(t, curveLoss(best, 1, 4), curveLoss(fast, 1, 4), "with a fixed τ, the better one leads from the start")
	assert.Less(t, curveLoss(best, 27, 4), curveLoss(fast, 27, 4))
}

// epochsOf counts a resumed trial's epochs once, and a full-budget
// trial's from its output.
func TestEpochsOf(t *testing.T) {
	r := Result[curveHP, curveOut]{Trials: []Trial[curveHP, curveOut]{
		{Rungs: []Rung{{Budget: 1}, {Budget: 3}, {Budget: 9}}},
		{Rungs: []Rung{{Budget: 1}}},
		{Output: curveOut{Trained: 27}},
	}}
	assert.Equal(t, 9+1+27, epochsOf(r))
}
