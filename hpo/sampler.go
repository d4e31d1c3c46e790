package hpo

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"time"

	"github.com/c-bata/goptuna"
	"github.com/c-bata/goptuna/cmaes"
	"github.com/c-bata/goptuna/sobol"
	"github.com/c-bata/goptuna/tpe"
)

// Sampler chooses the trials' hyperparameters. TPE, Random, CMAES and
// Sobol are goptuna's (github.com/c-bata/goptuna v0.9.0); Grid is this
// package's.
type Sampler string

const (
	// TPE is the tree-structured Parzen estimator: random for the first
	// 10 finished trials, then it proposes values that were more likely
	// in the better trials. Its proposals do not repeat for a seed:
	// goptuna v0.9.0's TPE draws the components of its Parzen estimators
	// from math/rand's process-wide source, which Go 1.24 and later seed
	// at random and no longer let a program seed (see "Seeds" in the
	// package doc).
	TPE Sampler = "tpe"
	// Random, the default, draws every field independently and uniformly
	// (log-uniformly for LogFloat and LogInt).
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

var samplers = []Sampler{Random, TPE, CMAES, Sobol, Grid}

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

// add adds a finished trial with the sampler's values xs: how the
// samplers without state of their own (Random, TPE) learn the earlier
// rounds, in time linear in the number of trials.
func (st *study) add(xs []float64, objective float64, complete bool) error {
	t := goptuna.FrozenTrial{
		State:              goptuna.TrialStateFail,
		IntermediateValues: map[int]float64{},
		DatetimeStart:      time.Unix(0, 0),
		DatetimeComplete:   time.Unix(0, 0),
		InternalParams:     make(map[string]float64, len(st.dims)),
		Params:             make(map[string]any, len(st.dims)),
		Distributions:      make(map[string]any, len(st.dims)),
		UserAttrs:          map[string]string{},
		SystemAttrs:        map[string]string{},
	}
	if complete {
		t.State, t.Value = goptuna.TrialStateComplete, st.sign*objective
	}
	for i, d := range st.dims {
		t.InternalParams[d.name], t.Params[d.name], t.Distributions[d.name] = xs[i], xs[i], distribution(d)
	}
	_, err := st.s.Storage.CloneTrial(st.s.ID, t)
	return err
}

// stateless reports whether the sampler's proposals depend only on the
// trials in the study and its random source: then a suggest step adds
// the earlier trials (study.add) and seeds the sampler for its round,
// rather than replaying every earlier proposal.
func (s Sampler) stateless() bool { return s == Random || s == TPE }

// roundSeed is the seed of round r's sampler when the sampler is
// stateless: derived from the search's seed, and different per round so
// that rounds do not repeat each other's random draws.
func roundSeed(seed int64, r int) int64 {
	return seed ^ int64(uint64(r+1)*0x9E3779B97F4A7C15)
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

// toSampler returns the sampler's values for p: the inverse of
// fromSampler, up to rounding.
func toSampler[P any](sp *spacePlan, p P) ([]float64, error) {
	pv := reflect.ValueOf(p)
	var xs []float64
	for _, d := range sp.searchedDims() {
		x, err := d.internal(pv.FieldByName(d.goName))
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", d.goName, err)
		}
		xs = append(xs, x)
	}
	return xs, nil
}

// internal returns the sampler's value for the field's value v.
func (d *dimPlan) internal(v reflect.Value) (float64, error) {
	dim := d.dim
	if dim.kind == dimChoice {
		i := slices.IndexFunc(dim.values, func(c any) bool {
			cv, err := convertTo(c, d.typ)
			return err == nil && cv.Equal(v)
		})
		if i < 0 {
			return 0, fmt.Errorf("%v is not one of the choices %v", v, dim.values)
		}
		return float64(i), nil
	}
	var x float64
	switch {
	case isFloatKind(v.Kind()):
		x = v.Float()
	case v.CanInt():
		x = float64(v.Int())
	case v.CanUint():
		x = float64(v.Uint())
	default:
		return 0, fmt.Errorf("%v is not a number", v)
	}
	lo, hi, _ := d.bounds()
	if dim.kind == dimFloatStep || dim.kind == dimIntStep {
		x = math.Round((x - dim.lo) / dim.step)
	}
	return min(max(x, lo), hi), nil
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
