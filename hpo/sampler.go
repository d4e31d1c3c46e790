package hpo

import (
	"fmt"
	"math"
	"math/rand"
	randv2 "math/rand/v2"
	"reflect"
	"slices"
	"sync"
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
	// in the better trials. goptuna v0.9.0's TPE draws the components of
	// its Parzen estimators from math/rand's process-wide source, which
	// Go 1.24 and later seed at random and do not let a program seed by
	// default: math/rand.Seed is a no-op unless GODEBUG has
	// randseednop=0. For TPE to repeat for a seed, add
	//
	//	//go:debug randseednop=0
	//
	// to your main package, above its package clause (or run it with
	// GODEBUG=randseednop=0); each suggest step then seeds that source
	// from the seed and the round. Without it, TPE's proposals do not
	// repeat for a seed (see "Seeds" in the package doc).
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
	// seedGlobal says that each ask seeds math/rand's process-wide
	// source (TPE, when seeding takes effect; see seedable), from seed
	// and asks, the number of earlier asks.
	seedGlobal bool
	seed       int64
	asks       int
	// independent says that the sampler draws each field on its own
	// (Random, TPE), so a conditional field that is not active is left
	// out of the trial; the others draw every field of their fixed space.
	independent bool
	// unit says that the sampler draws each field in [0, 1], mapped
	// onto the field's range by fromUnit.
	unit bool
}

// globalRand serializes the studies that seed math/rand's process-wide
// source: one holds it from seeding the source until its proposal is
// made, so that two searches in one process do not draw from each
// other's seeding.
var globalRand sync.Mutex

// seedable reports whether math/rand.Seed takes effect in this process:
// since Go 1.24 it is a no-op unless GODEBUG has randseednop=0 (a
// //go:debug line in the main package, or the environment). It is found
// out once, by seeding twice with one value and comparing the draws.
var seedable = sync.OnceValue(func() bool {
	globalRand.Lock()
	defer globalRand.Unlock()
	draw := func() [2]int64 {
		rand.Seed(1) //nolint:staticcheck // the point: seeding the global source goptuna's TPE draws from
		return [2]int64{rand.Int63(), rand.Int63()}
	}
	ok := draw() == draw()
	reseedGlobal()
	return ok
})

// reseedGlobal gives math/rand's process-wide source a fresh random
// seed (from math/rand/v2's own source), so that code drawing from it
// after a study is not left with a sequence the study's seed decides.
// A no-op where seeding is.
func reseedGlobal() {
	rand.Seed(randv2.Int64()) //nolint:staticcheck // see seedable
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
	st := &study{dims: sp.searchedDims(), sign: 1, independent: s == Random || s == TPE}
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
	// CMA-ES searches the unit cube, each field's range mapped onto
	// [0, 1] (linearly, or in the log domain): goptuna v0.9.0 starts it
	// with a step size of a sixth of the narrowest range, so over the
	// fields' own ranges one narrow field (a log range of 0.1) would keep
	// it from moving along the wide ones (a log range of 9).
	st.unit = s == CMAES
	space := make(map[string]any, len(st.dims))
	for _, d := range st.dims {
		space[d.name] = distribution(d)
		if st.unit {
			space[d.name] = goptuna.UniformDistribution{Low: 0, High: 1}
		}
	}
	switch s {
	case Random:
	case TPE:
		opts = append(opts, goptuna.StudyOptionSampler(tpe.NewSampler(tpe.SamplerOptionSeed(seed))))
		st.seedGlobal, st.seed = seedable(), seed
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
// value of each searched dimension. When st.seedGlobal, it holds
// globalRand and seeds math/rand's process-wide source from the seed and
// the number of earlier asks, so the same study asked alike proposes the
// same values in every process where seeding takes effect.
func (st *study) ask() (int, []float64, error) {
	if st.seedGlobal {
		globalRand.Lock()
		defer globalRand.Unlock()
		rand.Seed(askSeed(st.seed, st.asks)) //nolint:staticcheck // see seedable
		defer reseedGlobal()
	}
	st.asks++
	id, err := st.s.Storage.CreateNewTrial(st.s.ID)
	if err != nil {
		return 0, nil, err
	}
	t := goptuna.Trial{Study: st.s, ID: id}
	if err := t.CallRelativeSampler(); err != nil {
		return 0, nil, err
	}
	xs := make([]float64, len(st.dims))
	// The unconditional fields first, in field order, then the
	// conditional ones, whose parents are drawn by then.
	for _, cond := range []bool{false, true} {
		for i, d := range st.dims {
			if d.conditional() != cond {
				continue
			}
			if cond && st.independent && !st.activeIn(d, xs) {
				xs[i] = math.NaN()
				continue
			}
			lo, hi, log := d.bounds()
			switch {
			case st.unit:
				var u float64
				u, err = t.SuggestFloat(d.name, 0, 1)
				xs[i] = fromUnit(u, lo, hi, log)
			case log:
				xs[i], err = t.SuggestLogFloat(d.name, lo, hi)
			default:
				xs[i], err = t.SuggestFloat(d.name, lo, hi)
			}
			if err != nil {
				return 0, nil, fmt.Errorf("suggest %s: %w", d.goName, err)
			}
		}
	}
	return id, xs, nil
}

// fromUnit maps u in [0, 1] onto [lo, hi], in the log domain when log.
func fromUnit(u, lo, hi float64, log bool) float64 {
	u = min(max(u, 0), 1)
	if log {
		return min(max(math.Exp(math.Log(lo)+u*(math.Log(hi)-math.Log(lo))), lo), hi)
	}
	return min(max(lo+u*(hi-lo), lo), hi)
}

// activeIn reports whether the conditional field d is active for the
// sampler's values xs, whose parent Choice is drawn already.
func (st *study) activeIn(d *dimPlan, xs []float64) bool {
	for k, p := range st.dims {
		if p.name == d.parentName {
			return slices.Contains(d.when, p.index(xs[k]))
		}
	}
	return false
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
		if math.IsNaN(xs[i]) {
			continue // a conditional field the trial did not search
		}
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

// askSeed is the seed of math/rand's process-wide source for ask k of a
// study seeded with seed: a different stream for every ask.
func askSeed(seed int64, k int) int64 {
	return seed ^ int64(uint64(k+1)*0xBF58476D1CE4E5B9)
}

// gridSize returns the number of points of the grid over the searched
// dimensions, capped at limit+1.
func gridSize(sp *spacePlan, limit int) int {
	dims := sp.searchedDims()
	for _, d := range dims {
		if d.n == 0 {
			return 0
		}
	}
	n := 0
	eachGridPoint(dims, func([]int) bool {
		n++
		return n <= limit
	})
	return n
}

// gridPoints returns points from … from+n-1 of the grid.
func gridPoints[P any](sp *spacePlan, from, n int) ([]P, error) {
	var out []P
	var err error
	k := 0
	dims := sp.searchedDims()
	eachGridPoint(dims, func(idx []int) bool {
		if k >= from {
			var p P
			p, err = build[P](sp, func(i int, d *dimPlan) (reflect.Value, error) {
				if idx[i] < 0 {
					return reflect.Zero(d.typ), nil
				}
				return d.at(idx[i])
			})
			if err != nil {
				return false
			}
			out = append(out, p)
		}
		k++
		return len(out) < n
	})
	return out, err
}

// eachGridPoint calls yield with the value indices of every point of the
// grid over dims (-1 for a conditional field the point does not search),
// until yield returns false. The unconditional fields vary in field
// order, the last fastest; for each of their combinations, the active
// conditional fields vary the same way, inside it.
func eachGridPoint(dims []*dimPlan, yield func(idx []int) bool) {
	var outer, inner []int // positions in dims
	for i, d := range dims {
		if d.conditional() {
			inner = append(inner, i)
		} else {
			outer = append(outer, i)
		}
	}
	idx := make([]int, len(dims))
	// odometer steps positions ps of idx (last fastest) and reports
	// whether it wrapped around.
	odometer := func(ps []int) bool {
		for j := len(ps) - 1; j >= 0; j-- {
			if idx[ps[j]]++; idx[ps[j]] < dims[ps[j]].n {
				return false
			}
			idx[ps[j]] = 0
		}
		return true
	}
	for {
		var active []int
		for _, i := range inner {
			idx[i] = -1
			for _, o := range outer {
				if dims[o].name == dims[i].parentName && slices.Contains(dims[i].when, idx[o]) {
					idx[i] = 0
					active = append(active, i)
				}
			}
		}
		for {
			if !yield(idx) {
				return
			}
			if odometer(active) {
				break
			}
		}
		if odometer(outer) {
			return
		}
	}
}

// toSampler returns the sampler's values for p: the inverse of
// fromSampler, up to rounding.
func toSampler[P any](sp *spacePlan, p P) ([]float64, error) {
	pv := reflect.ValueOf(p)
	var xs []float64
	for _, d := range sp.searchedDims() {
		if !sp.active(d, pv) {
			xs = append(xs, math.NaN()) // not searched in this trial
			continue
		}
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
			if d.conditional() {
				return reflect.Zero(d.typ), nil // not searched in this trial
			}
			return reflect.Value{}, fmt.Errorf("the sampler proposed NaN")
		}
		return d.value(xs[k])
	})
}
