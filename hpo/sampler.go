package hpo

import (
	"fmt"
	"math"
	"reflect"

	"github.com/c-bata/goptuna"
	"github.com/c-bata/goptuna/cmaes"
	"github.com/c-bata/goptuna/sobol"
	"github.com/sluice-ml/sluice/hpo/internal/tpe"
)

// Sampler chooses the trials' hyperparameters. TPE, Random, CMAES and
// Sobol are goptuna's (github.com/c-bata/goptuna v0.9.0); Grid is this
// package's.
type Sampler string

const (
	// TPE is the tree-structured Parzen estimator, the default: random
	// for the first 10 finished trials, then it proposes values that
	// were more likely in the better trials.
	TPE Sampler = "tpe"
	// Random draws every field independently and uniformly (log-uniformly
	// for LogFloat and LogInt).
	Random Sampler = "random"
	// CMAES is the covariance matrix adaptation evolution strategy, for
	// two or more searched fields.
	CMAES Sampler = "cmaes"
	// Sobol draws quasi-random points from a Sobol sequence, which cover
	// the space more evenly than Random. It is deterministic and ignores
	// the seed.
	Sobol Sampler = "sobol"
	// Grid runs every combination of the fields' values, in order (the
	// last field varies fastest). Every searched field must have finitely
	// many values (Int, LogInt, IntStep, FloatStep, Choice); MaxTrials
	// must not exceed the number of combinations and runs the first ones.
	Grid Sampler = "grid"
)

var samplers = []Sampler{TPE, Random, CMAES, Sobol, Grid}

// Direction says whether the objective is minimized or maximized.
type Direction string

const (
	// Minimize looks for the smallest objective (a loss), the default.
	Minimize Direction = "minimize"
	// Maximize looks for the largest objective (an accuracy).
	Maximize Direction = "maximize"
)

var directions = []Direction{Minimize, Maximize}

// better reports whether objective a is better than b.
func (d Direction) better(a, b float64) bool {
	if d == Maximize {
		return a > b
	}
	return a < b
}

// study is a goptuna study rebuilt in memory: every suggest step makes a
// new one and replays the earlier rounds into it (see proposer.replay).
type study struct {
	s    *goptuna.Study
	dims []*dimPlan
	sign float64 // goptuna always minimizes sign × objective
}

// quiet is a goptuna.Logger that logs nothing: goptuna's default logs
// every trial to stdout.
type quiet struct{}

func (quiet) Debug(string, ...any) {}
func (quiet) Info(string, ...any)  {}
func (quiet) Warn(string, ...any)  {}
func (quiet) Error(string, ...any) {}

// newStudy returns an empty study over the searched dimensions of sp.
func newStudy(sp *spacePlan, s Sampler, seed int64, dir Direction) (*study, error) {
	st := &study{dims: sp.searchedDims(), sign: 1}
	if dir == Maximize {
		// CMA-ES in goptuna v0.9.0 ignores the study's direction, so
		// every sampler is told sign × objective and minimizes.
		st.sign = -1
	}
	random := goptuna.NewRandomSampler(goptuna.RandomSamplerOptionSeed(seed))
	opts := []goptuna.StudyOption{
		goptuna.StudyOptionLogger(quiet{}),
		goptuna.StudyOptionDirection(goptuna.StudyDirectionMinimize),
		goptuna.StudyOptionSampler(random),
	}
	space := make(map[string]any, len(st.dims))
	for _, d := range st.dims {
		space[d.name] = distribution(d)
	}
	switch s {
	case Random:
	case TPE:
		opts = append(opts, goptuna.StudyOptionSampler(tpe.NewSampler(tpe.SamplerOptionSeed(seed))))
	case CMAES:
		opts = append(opts, goptuna.StudyOptionRelativeSampler(cmaes.NewSampler(
			cmaes.SamplerOptionSeed(seed),
			cmaes.SamplerOptionOptimizerOptions(cmaes.OptimizerOptionSeed(seed)))),
			goptuna.StudyOptionDefineSearchSpace(space))
	case Sobol:
		opts = append(opts, goptuna.StudyOptionRelativeSampler(sobol.NewSampler()),
			goptuna.StudyOptionDefineSearchSpace(space))
	default:
		return nil, fmt.Errorf("sampler %q is not one of %v", s, samplers)
	}
	gs, err := goptuna.CreateStudy("hpo", opts...)
	if err != nil {
		return nil, fmt.Errorf("create the study: %w", err)
	}
	st.s = gs
	return st, nil
}

func distribution(d *dimPlan) any {
	lo, hi, log := d.bounds()
	if log {
		return goptuna.LogUniformDistribution{Low: lo, High: hi}
	}
	return goptuna.UniformDistribution{Low: lo, High: hi}
}

// ask starts a trial and returns its id in the study and the sampler's
// value of each searched dimension.
func (st *study) ask() (int, []float64, error) {
	id, err := st.s.Storage.CreateNewTrial(st.s.ID)
	if err != nil {
		return 0, nil, err
	}
	t := goptuna.Trial{Study: st.s, ID: id}
	if err := t.CallRelativeSampler(); err != nil {
		return 0, nil, err
	}
	xs := make([]float64, len(st.dims))
	for i, d := range st.dims {
		lo, hi, log := d.bounds()
		if log {
			xs[i], err = t.SuggestLogFloat(d.name, lo, hi)
		} else {
			xs[i], err = t.SuggestFloat(d.name, lo, hi)
		}
		if err != nil {
			return 0, nil, fmt.Errorf("suggest %s: %w", d.goName, err)
		}
	}
	return id, xs, nil
}

// tell ends trial id: complete with the objective, or failed.
func (st *study) tell(id int, objective float64, complete bool) error {
	if !complete {
		return st.s.Storage.SetTrialState(id, goptuna.TrialStateFail)
	}
	if err := st.s.Storage.SetTrialValue(id, st.sign*objective); err != nil {
		return err
	}
	return st.s.Storage.SetTrialState(id, goptuna.TrialStateComplete)
}

// gridSize returns the number of combinations of the searched
// dimensions' values, capped at limit+1.
func gridSize(sp *spacePlan, limit int) int {
	n := 1
	for _, d := range sp.searchedDims() {
		if d.n == 0 {
			return 0
		}
		if n > (limit+1)/d.n {
			return limit + 1
		}
		n *= d.n
	}
	return n
}

// gridPoint returns combination i of the grid, the last field varying
// fastest.
func gridPoint[P any](sp *spacePlan, i int) (P, error) {
	dims := sp.searchedDims()
	idx := make([]int, len(dims))
	for k := len(dims) - 1; k >= 0; k-- {
		idx[k] = i % dims[k].n
		i /= dims[k].n
	}
	return build[P](sp, func(k int, d *dimPlan) (reflect.Value, error) { return d.at(idx[k]) })
}

// fromSampler returns the P for the sampler's values xs.
func fromSampler[P any](sp *spacePlan, xs []float64) (P, error) {
	return build[P](sp, func(k int, d *dimPlan) (reflect.Value, error) {
		if math.IsNaN(xs[k]) {
			return reflect.Value{}, fmt.Errorf("the sampler proposed NaN")
		}
		return d.value(xs[k])
	})
}
