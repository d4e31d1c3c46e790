package hpo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/sluice-ml/sluice/internal/field"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/resources"
	"github.com/sluice-ml/sluice/task"
)

// Bounds of a search's budget: whatever Validate accepts compiles on
// every backend.
const (
	// MaxTrialCount bounds Options.MaxTrials.
	MaxTrialCount = 100_000
	// MaxRounds bounds Options.Rounds (two steps per round).
	MaxRounds = 1_000
)

// Options configures a [Search]. Only MaxTrials is required.
type Options struct {
	// Name names the search's steps: NAME-suggest-R and NAME-trials-R for
	// round R, and NAME, the step with the [Result]. The default is
	// "search".
	Name string
	// Sampler chooses the hyperparameters; the default is [Random].
	Sampler Sampler
	// Seed seeds the sampler: the same seed and space give the same
	// trials on every backend and on a re-run, with every sampler but
	// TPE (see [TPE]).
	Seed int64
	// Direction says whether the objective is minimized (the default) or
	// maximized.
	Direction Direction
	// Goal, if set, ends the search early: once a finished trial's
	// objective reaches it (≤ Goal when minimizing, ≥ when maximizing),
	// the remaining rounds propose no trials and the Result says why.
	Goal *float64
	// MaxTrials is how many trials (configurations) the search runs in
	// all, 1 to [MaxTrialCount]. Required.
	MaxTrials int
	// ParallelTrials caps how many trials run at once, 1 (the default) to
	// MaxTrials.
	ParallelTrials int
	// Rounds is how many times the sampler proposes trials, each time
	// knowing the results of all earlier rounds: 1 to MaxTrials, and at
	// most [MaxRounds]. The MaxTrials trials are spread evenly over the
	// rounds. The default, MaxTrials/ParallelTrials rounded up, keeps
	// every round as wide as ParallelTrials. Fewer rounds make a smaller
	// graph and a less adaptive search. With EarlyStopping every round
	// is ParallelTrials runs wide and the default is the fewest rounds
	// that finish the schedule; fewer is a validation error that names
	// them, more rounds run nothing.
	Rounds int
	// MaxFailedTrials is how many trials may fail (an error, or an
	// objective that is NaN or infinite) with the search going on, 0 (the
	// default) to MaxTrials. One failure more fails the search, naming
	// the failed trials. Trials that fail are retried first, by the trial
	// task's retry policy. A tolerance above zero uses the fan-out's
	// failure tolerance (pipeline.Fan.Tolerate), the same on every
	// backend.
	MaxFailedTrials int
	// StepResources are the resources of the search's own steps, the
	// suggest steps and the result step, merged over the pipeline's
	// Defaults.Resources like any task's profile (so a default node pool
	// still applies). Nil means [DefaultStepResources]: the steps only
	// tell the sampler the results and propose a round, or gather the
	// Result and draw its plot.
	StepResources *resources.Profile
	// EarlyStopping, if set, runs each trial in rungs of growing budget
	// and stops the unpromising ones early (ASHA, Hyperband or the
	// median rule); see [EarlyStopping].
	EarlyStopping *EarlyStopping
}

// DefaultStepResources is what a search's suggest and result steps ask
// for when Options.StepResources is nil.
var DefaultStepResources = resources.Profile{CPU: "250m", Memory: "512Mi"}

// The search's state, the output of every suggest step.
type state[P, Out any] struct {
	// Trials are all trials proposed so far, in id order; those of the
	// latest round are running.
	Trials []Trial[P, Out] `json:"trials"`
	// Next are the trials to run in this round.
	Next []proposal[P, Out] `json:"next"`
	// Sched is each trial's place in the early-stopping schedule, by
	// id; empty without early stopping.
	Sched []sched `json:"sched,omitempty"`
	// Stopped says why the search ended before its last round.
	Stopped string `json:"stopped,omitempty"`
}

type proposal[P, Out any] struct {
	ID     int `json:"id"`
	Params P   `json:"params"`
	// Resume is what a promoted trial continues from (early stopping),
	// or nil.
	Resume *resume[Out] `json:"resume"`
}

type suggestIn[P, Out any] struct {
	State pipeline.Ref[state[P, Out]] `json:"state"`
	// Results are the last round's results of a Go trial; Outputs the
	// outputs of a container trial, in the order of State's Next (a
	// container trial's fan-out tolerates no failure, so none is missing).
	Results pipeline.Ref[[]trialOut[Out]] `json:"results"`
	Outputs pipeline.Ref[[]Out]           `json:"outputs,omitzero"`
}

// results are the last round's results that in carries.
func (in suggestIn[P, Out]) results(st *state[P, Out]) ([]trialOut[Out], error) {
	outs := in.Outputs.Get()
	if outs == nil {
		return in.Results.Get(), nil
	}
	if len(outs) != len(st.Next) {
		return nil, fmt.Errorf("the round's fan-out gave %d outputs for %d trials", len(outs), len(st.Next))
	}
	res := make([]trialOut[Out], len(outs))
	for i, o := range outs {
		res[i] = trialOut[Out]{ID: st.Next[i].ID, Out: o}
	}
	return res, nil
}

// trialIn is the input of a trial wrapped by Search: the trial's id,
// what a promoted trial continues from (early stopping) and the user's
// input.
type trialIn[In, Out any] struct {
	ID     pipeline.Ref[int]          `json:"id"`
	Resume pipeline.Ref[*resume[Out]] `json:"resume,omitzero"`
	In     In                         `json:"in"`
}

// trialOut is a trial's output tagged with its id, so that the suggest
// step knows which trials are missing from a fan-out that tolerated
// failures.
type trialOut[Out any] struct {
	ID       int           `json:"id"`
	Out      Out           `json:"out"`
	Duration time.Duration `json:"duration"`
}

// runTrial runs a trial, timing it on the executor's clock (task.Now),
// with what it continues from in its context for [Previous].
func runTrial[In, Out any](ctx context.Context, in trialIn[In, Out], run task.Func[In, Out]) (trialOut[Out], error) {
	if r := in.Resume.Get(); r != nil {
		ctx = context.WithValue(ctx, previousKey{}, *r)
	}
	start := task.Now(ctx)
	out, err := run(ctx, in.In)
	return trialOut[Out]{ID: in.ID.Get(), Out: out, Duration: task.Now(ctx).Sub(start)}, err
}

// search holds one Search's settings; its methods are the suggest and
// result steps' code.
type search[P, Out any] struct {
	space     Space[P]
	plan      *spacePlan
	spaceErrs []*field.Error
	objective func(Out) float64
	opts      Options // as given
	name      string
	sampler   Sampler
	dir       Direction
	sizes     []int // trials per round (runs, under early stopping)
	trialErrs []*field.Error
	stop      *stopPlan // nil without early stopping
	minRounds int       // the rounds early stopping needs
}

// Search adds a hyperparameter search to p and returns the step whose
// output is its [Result].
//
// The search runs in rounds. Round R is a suggest step, NAME-suggest-R,
// a Go task that rebuilds the sampler's study from every earlier round's
// results and proposes the round's trials, and a fan-out NAME-trials-R
// (pipeline.ForEach) that runs trial once per proposal, at most
// ParallelTrials at once. bind builds a trial's input from a reference
// to its hyperparameters, as a ForEach bind function does, and may wire
// any other Ref (a dataset, a parameter). objective reads the number to
// optimize from a trial's output; it runs in the next suggest step, not
// in the trial. A last step, NAME, gathers the [Result].
//
// The graph grows with the number of rounds, not of trials, and every
// step is an ordinary step: the search runs the same on every backend.
// The space and options are checked by Validate, with the pipeline's
// other problems, at pipeline.tasks[NAME].space.FIELD, .maxTrials, and so
// on. trial is a Go task (task.New) or a container task (task.Container;
// see "Container trials" in the package doc). Search panics if p, bind or
// objective is nil, as pipeline.ForEach does for a nil bind function.
func Search[P, In, Out any](p *pipeline.Pipeline, space Space[P], trial task.Task[In, Out], bind func(params pipeline.Ref[P]) In, objective func(Out) float64, opts *Options) pipeline.Step[Result[P, Out]] {
	switch {
	case p == nil:
		panic("hpo: Search with a nil *pipeline.Pipeline; create one with pipeline.New")
	case bind == nil:
		panic(fmt.Sprintf("hpo: Search of %q with a nil bind function; pass one that builds a trial's input from its hyperparameters", trial.Name()))
	case objective == nil:
		panic(fmt.Sprintf("hpo: Search of %q with a nil objective; pass one that reads the number to optimize from the trial's output", trial.Name()))
	}
	s := &search[P, Out]{space: space, objective: objective, name: "search", sampler: Random, dir: Minimize}
	if opts != nil {
		s.opts = *opts
		if opts.Goal != nil {
			g := *opts.Goal
			s.opts.Goal = &g
		}
	}
	if s.opts.Name != "" {
		s.name = s.opts.Name
	}
	if s.opts.Sampler != "" {
		s.sampler = s.opts.Sampler
	}
	if s.opts.Direction != "" {
		s.dir = s.opts.Direction
	}
	if es := s.opts.EarlyStopping; es != nil {
		e := *es
		s.opts.EarlyStopping = &e
		s.stop = newStopPlan[P](&e, s.opts.MaxTrials)
	}
	if s.stop != nil {
		s.plan, s.spaceErrs = space.planExcept(field.NewPath("space"), s.stop.jname)
		s.minRounds = s.stop.minRounds(max(s.opts.ParallelTrials, 1))
		s.sizes = stoppingRounds(s.opts, s.minRounds)
	} else {
		s.plan, s.spaceErrs = space.plan(field.NewPath("space"))
		s.sizes = roundSizes(s.opts)
	}

	spec := trial.Spec()
	canWrap := spec.Kind == task.KindGo && trial.Func() != nil
	container := spec.Kind == task.KindContainer
	switch {
	case container && s.opts.MaxFailedTrials > 0:
		s.trialErrs = append(s.trialErrs, field.Invalid(field.NewPath("maxFailedTrials"), s.opts.MaxFailedTrials,
			"a container trial cannot tolerate failed trials yet: its fan-out's outputs would not say which trials they belong to; set maxFailedTrials to 0, or run the container's work from a Go task"))
	case !canWrap && !container:
		s.trialErrs = append(s.trialErrs, field.Invalid(field.NewPath("trial"), trial.Name(), "a trial must be a Go task (task.New) or a container task (task.Container)"))
	}
	if len(spec.Cache.ExcludeInputs) > 0 {
		s.trialErrs = append(s.trialErrs, field.Forbidden(field.NewPath("trial", "cache", "excludeInputs"), "a trial's cache cannot exclude inputs yet; drop ExcludeInputs"))
	}
	parallel := min(max(s.opts.ParallelTrials, 1), pipeline.MaxParallelism)

	var st pipeline.Ref[state[P, Out]]
	var results pipeline.Ref[[]trialOut[Out]]
	var outputs pipeline.Ref[[]Out]
	for r := range s.sizes {
		sug := pipeline.Add(p, ownStep(s, spec, task.New(fmt.Sprintf("%s-suggest-%d", s.name, r), s.suggest(r))),
			suggestIn[P, Out]{State: st, Results: results, Outputs: outputs})
		st = sug.Output()
		if container {
			// The container runs as it is: its outputs come back in the
			// order of the round's proposals, which the next suggest
			// step reads them in.
			outputs = pipeline.ForEach(p, trial.WithName(fmt.Sprintf("%s-trials-%d", s.name, r)), pipeline.Field[[]proposal[P, Out]](st, "Next"),
				func(it pipeline.Ref[proposal[P, Out]]) In { return bind(pipeline.Field[P](it, "Params")) }).Limit(parallel).Collect()
			continue
		}
		if !canWrap {
			continue
		}
		trials := task.Wrap(fmt.Sprintf("%s-trials-%d", s.name, r), trial, runTrial[In, Out])
		fan := pipeline.ForEach(p, trials, pipeline.Field[[]proposal[P, Out]](st, "Next"),
			func(it pipeline.Ref[proposal[P, Out]]) trialIn[In, Out] {
				in := trialIn[In, Out]{ID: pipeline.Field[int](it, "ID"), In: bind(pipeline.Field[P](it, "Params"))}
				if s.stop != nil {
					in.Resume = pipeline.Field[*resume[Out]](it, "Resume")
				}
				return in
			}).Limit(parallel)
		if s.opts.MaxFailedTrials > 0 {
			fan = fan.Tolerate(s.opts.MaxFailedTrials)
		}
		results = fan.Collect()
	}
	res := pipeline.Add(p, ownStep(s, spec, task.New(s.name, s.result)), suggestIn[P, Out]{State: st, Results: results, Outputs: outputs})
	return res.Check(s.check).Summarize(summary[P, Out])
}

// ownStep sets up one of the search's own steps (a suggest step, the
// result step): its resources (Options.StepResources), and caching when
// the trial task caches, so that a run resumed with the same cache skips
// the finished rounds — their suggest steps and trials hit — and runs
// only what is left. The steps' code depends on the search's definition
// as well as on their inputs, so the cache version is a fingerprint of
// it (the space, the options, the types): changing the seed, the sampler
// or a range is a miss.
func ownStep[In, Out any](s searchDef, trial task.Spec, t task.Task[In, Out]) task.Task[In, Out] {
	t = t.WithResources(s.stepResources())
	if !trial.Cache.Enabled {
		return t
	}
	return t.WithCache(task.Cache{Enabled: true, Version: "hpo/" + s.fingerprint() + "/" + trial.Cache.Version})
}

// searchDef is what ownStep needs of a search.
type searchDef interface {
	fingerprint() string
	stepResources() resources.Profile
}

// roundSizes spreads MaxTrials over the rounds, the earlier rounds taking
// the remainder. Invalid options still give a graph (Validate reports
// them).
func roundSizes(o Options) []int {
	total := min(max(o.MaxTrials, 1), MaxTrialCount)
	rounds := o.Rounds
	if rounds == 0 {
		par := max(o.ParallelTrials, 1)
		rounds = (total + par - 1) / par
	}
	rounds = min(max(rounds, 1), MaxRounds, total)
	sizes := make([]int, rounds)
	for r := range sizes {
		sizes[r] = total / rounds
		if r < total%rounds {
			sizes[r]++
		}
	}
	return sizes
}

// stoppingRounds are the rounds of a search with early stopping, each
// ParallelTrials runs wide: Rounds, or by default the fewest that finish
// the schedule (need).
func stoppingRounds(o Options, need int) []int {
	rounds := o.Rounds
	if rounds == 0 {
		rounds = need
	}
	sizes := make([]int, min(max(rounds, 1), MaxRounds))
	for r := range sizes {
		sizes[r] = max(o.ParallelTrials, 1)
	}
	return sizes
}

// check reports the problems of the search's space and options, relative
// to the result step.
func (s *search[P, Out]) check() error {
	var l field.List
	o := s.opts
	l.Add(s.spaceErrs...)
	l.Add(s.trialErrs...)
	switch {
	case o.MaxTrials == 0:
		l.Add(field.Required(field.NewPath("maxTrials"), "say how many trials to run in all, 1 to %d", MaxTrialCount))
	case o.MaxTrials < 0 || o.MaxTrials > MaxTrialCount:
		l.Add(field.Invalid(field.NewPath("maxTrials"), o.MaxTrials, "must be 1 to %d", MaxTrialCount))
	}
	validMax := o.MaxTrials >= 1 && o.MaxTrials <= MaxTrialCount
	switch {
	case o.ParallelTrials < 0:
		l.Add(field.Invalid(field.NewPath("parallelTrials"), o.ParallelTrials, "must be 1 or more (0 means 1)"))
	case validMax && o.ParallelTrials > o.MaxTrials:
		l.Add(field.Invalid(field.NewPath("parallelTrials"), o.ParallelTrials, "is more than maxTrials (%d): no more than %d trials can ever run at once; lower parallelTrials or raise maxTrials", o.MaxTrials, o.MaxTrials))
	}
	switch {
	case o.Rounds < 0 || o.Rounds > MaxRounds:
		l.Add(field.Invalid(field.NewPath("rounds"), o.Rounds, "must be 1 to %d (0: maxTrials/parallelTrials)", MaxRounds))
	case s.stop != nil:
		// checkStopping checks the rounds against the schedule.
	case validMax && o.Rounds > o.MaxTrials:
		l.Add(field.Invalid(field.NewPath("rounds"), o.Rounds, "is more than maxTrials (%d): every round runs at least one trial", o.MaxTrials))
	case o.Rounds == 0 && validMax && len(s.sizes) == MaxRounds && o.MaxTrials > MaxRounds*max(o.ParallelTrials, 1):
		l.Add(field.Invalid(field.NewPath("rounds"), o.Rounds, "maxTrials/parallelTrials is more than %d rounds; set Rounds (at most %d) or raise parallelTrials", MaxRounds, MaxRounds))
	}
	if s.stop != nil {
		s.checkStopping(&l)
	}
	switch {
	case o.MaxFailedTrials < 0:
		l.Add(field.Invalid(field.NewPath("maxFailedTrials"), o.MaxFailedTrials, "must be 0 or more"))
	case validMax && o.MaxFailedTrials > o.MaxTrials:
		l.Add(field.Invalid(field.NewPath("maxFailedTrials"), o.MaxFailedTrials, "is more than maxTrials (%d)", o.MaxTrials))
	}
	if !contains(samplers, s.sampler) {
		l.Add(field.NotSupported(field.NewPath("sampler"), s.sampler, samplers))
	}
	if !contains(directions, s.dir) {
		l.Add(field.NotSupported(field.NewPath("direction"), s.dir, directions))
	}
	if o.Goal != nil && !finite(*o.Goal) {
		l.Add(field.Invalid(field.NewPath("goal"), fmt.Sprint(*o.Goal), "must be a finite number"))
	}
	if len(s.spaceErrs) == 0 {
		s.checkSampler(&l, validMax)
	}
	return l.Err()
}

// checkStopping checks the early-stopping settings and the rounds they
// need.
func (s *search[P, Out]) checkStopping(l *field.List) {
	o, sp := s.opts, s.stop
	l.Add(sp.errs...)
	path := field.NewPath("earlyStopping", "budget")
	if sp.jname != "" {
		for key := range s.space {
			if j, _, ok := task.FieldByName(s.plan.typ, key); ok && j == sp.jname {
				l.Add(field.Invalid(path, o.EarlyStopping.Budget, "the space also names the budget field (as %q); the search sets it for every rung, so remove it from the space", key))
			}
		}
	}
	if len(sp.errs) > 0 || o.Rounds < 0 || o.Rounds > MaxRounds {
		return
	}
	switch {
	case o.Rounds > 0 && o.Rounds < s.minRounds:
		l.Add(field.Invalid(field.NewPath("rounds"), o.Rounds, "is too few for the early-stopping schedule of %d trials at %d runs per round (parallelTrials); set rounds to at least %d, or 0 for that", o.MaxTrials, max(o.ParallelTrials, 1), s.minRounds))
	case o.Rounds == 0 && s.minRounds > MaxRounds:
		l.Add(field.Invalid(field.NewPath("rounds"), o.Rounds, "the early-stopping schedule needs more than %d rounds at %d runs per round; raise parallelTrials or lower maxTrials", MaxRounds, max(o.ParallelTrials, 1)))
	}
}

// checkSampler checks what the sampler needs of a valid space.
func (s *search[P, Out]) checkSampler(l *field.List, validMax bool) {
	dims := s.plan.searchedDims()
	switch s.sampler {
	case CMAES:
		if len(dims) < 2 {
			l.Add(field.Invalid(field.NewPath("sampler"), string(s.sampler), "CMA-ES needs two or more searched fields, the space has %d; use TPE", len(dims)))
		}
	case Grid:
		finiteDims := true
		for _, d := range dims {
			if d.n == 0 {
				finiteDims = false
				l.Add(field.Invalid(field.NewPath("space").Child(d.key), d.dim.String(), "a grid needs finitely many values; use FloatStep, IntStep or Choice (or an Int range of at most %d)", maxValues))
			}
		}
		if finiteDims && validMax {
			if g := gridSize(s.plan, MaxTrialCount); g < s.opts.MaxTrials {
				l.Add(field.Invalid(field.NewPath("maxTrials"), s.opts.MaxTrials, "is more than the grid's %d points; set maxTrials to %d", g, g))
			}
		}
	}
}

func contains[T comparable](list []T, v T) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// suggest returns the code of round r's suggest step.
func (s *search[P, Out]) suggest(r int) task.Func[suggestIn[P, Out], state[P, Out]] {
	return func(ctx context.Context, in suggestIn[P, Out]) (state[P, Out], error) {
		st := in.State.Get()
		if err := s.recordRound(&st, in, r-1); err != nil {
			return st, err
		}
		st.Next = []proposal[P, Out]{}
		if st.Stopped == "" {
			if why := s.goalReached(st.Trials); why != "" {
				st.Stopped = fmt.Sprintf("%s; rounds %d to %d proposed no trials", why, r, len(s.sizes)-1)
				if r == len(s.sizes)-1 {
					st.Stopped = fmt.Sprintf("%s; round %d proposed no trials", why, r)
				}
			}
		}
		if st.Stopped != "" {
			return st, nil
		}
		if s.stop != nil {
			return s.suggestStopping(r, st)
		}
		next, err := s.propose(r, st.Trials, s.sizes[r])
		if err != nil {
			return st, fmt.Errorf("round %d: %w", r, err)
		}
		for i, p := range next {
			id := len(st.Trials)
			st.Trials = append(st.Trials, Trial[P, Out]{ID: id, Round: r, Params: p, State: running})
			st.Next = append(st.Next, proposal[P, Out]{ID: id, Params: next[i]})
		}
		return st, nil
	}
}

// result is the code of the last step.
func (s *search[P, Out]) result(ctx context.Context, in suggestIn[P, Out]) (Result[P, Out], error) {
	st := in.State.Get()
	if err := s.recordRound(&st, in, len(s.sizes)-1); err != nil {
		return Result[P, Out]{}, err
	}
	res := Result[P, Out]{BestTrial: -1, Trials: st.Trials, Stopped: st.Stopped}
	ok := func(t Trial[P, Out]) bool { return t.State == Complete }
	if s.stop != nil {
		// The best trial is among those that got furthest: objectives at
		// different budgets do not compare.
		s.finishStopping(&st)
		top := -1.0
		for _, t := range st.Trials {
			if t.State != Failed {
				top = max(top, t.Budget)
			}
		}
		ok = func(t Trial[P, Out]) bool { return t.State != Failed && t.Budget == top }
	}
	for _, t := range st.Trials {
		if ok(t) && (res.BestTrial < 0 || s.dir.better(t.Objective, res.BestObjective)) {
			res.BestTrial, res.BestObjective, res.BestParams, res.BestOutput = t.ID, t.Objective, t.Params, t.Output
		}
	}
	if res.BestTrial < 0 {
		return res, fmt.Errorf("all %d trials failed: %s", len(st.Trials), failures(st.Trials))
	}
	res.Direction, res.Dims = s.dir, dimInfos(s.plan)
	return res, writeFiles(ctx, &res)
}

// recordRound records the results of round r that in carries (see
// record).
func (s *search[P, Out]) recordRound(st *state[P, Out], in suggestIn[P, Out], r int) error {
	results, err := in.results(st)
	if err != nil {
		return fmt.Errorf("round %d: %w", r, err)
	}
	return s.record(st, results, r)
}

// record ends the running trials of round r: complete with their
// objective, or failed. It fails when more trials have failed than
// MaxFailedTrials allows.
func (s *search[P, Out]) record(st *state[P, Out], results []trialOut[Out], r int) error {
	byID := make(map[int]int, len(st.Trials))
	for i, t := range st.Trials {
		if t.State == running {
			byID[t.ID] = i
		}
	}
	for _, res := range results {
		i, ok := byID[res.ID]
		if !ok {
			return fmt.Errorf("round %d returned a result for trial %d, which was not running; were the rounds' outputs mixed up?", r, res.ID)
		}
		delete(byID, res.ID)
		t := &st.Trials[i]
		t.Output = res.Out
		t.Duration += res.Duration
		obj, err := s.apply(res.Out)
		if err != nil {
			t.State, t.Error, t.Objective = Failed, err.Error(), 0
			s.addRung(t, Rung{Budget: t.Budget, State: Failed, Duration: res.Duration})
			continue
		}
		t.State, t.Objective = Complete, obj
		s.addRung(t, Rung{Budget: t.Budget, Objective: obj, State: Complete, Duration: res.Duration})
	}
	for _, i := range byID {
		t := &st.Trials[i]
		var zero Out
		t.State, t.Output, t.Objective = Failed, zero, 0
		t.Error = fmt.Sprintf("the trial failed; step %s-trials-%d says why", s.name, r)
		s.addRung(t, Rung{Budget: t.Budget, State: Failed})
	}
	failed := 0
	for _, t := range st.Trials {
		if t.State == Failed {
			failed++
		}
	}
	if failed > max(s.opts.MaxFailedTrials, 0) {
		return fmt.Errorf("%d of %d trials failed, more than MaxFailedTrials (%d): %s", failed, len(st.Trials), max(s.opts.MaxFailedTrials, 0), failures(st.Trials))
	}
	return nil
}

// addRung records a run of t under early stopping.
func (s *search[P, Out]) addRung(t *Trial[P, Out], r Rung) {
	if s.stop != nil {
		t.Rungs = append(t.Rungs, r)
	}
}

// apply returns the objective of out, or why the trial fails.
func (s *search[P, Out]) apply(out Out) (obj float64, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("the objective panicked: %v", p)
		}
	}()
	obj = s.objective(out)
	if !finite(obj) {
		return obj, fmt.Errorf("the objective is %v; it must be a finite number", obj)
	}
	return obj, nil
}

// failures lists the failed trials, for messages.
func failures[P, Out any](trials []Trial[P, Out]) string {
	var parts []string
	for _, t := range trials {
		if t.State == Failed {
			parts = append(parts, fmt.Sprintf("trial %d: %s", t.ID, t.Error))
		}
	}
	if len(parts) > 5 {
		parts = append(parts[:5], fmt.Sprintf("and %d more", len(parts)-5))
	}
	return strings.Join(parts, "; ")
}

// goalReached says so when a complete trial reaches the goal.
func (s *search[P, Out]) goalReached(trials []Trial[P, Out]) string {
	if s.opts.Goal == nil {
		return ""
	}
	goal := *s.opts.Goal
	for _, t := range trials {
		if t.State != Complete || (s.stop != nil && t.Budget != s.stop.budgets[s.stop.top()]) {
			continue
		}
		if (s.dir == Maximize && t.Objective >= goal) || (s.dir != Maximize && t.Objective <= goal) {
			op := "≤"
			if s.dir == Maximize {
				op = "≥"
			}
			return fmt.Sprintf("goal reached: trial %d's objective %v %s goal %v", t.ID, t.Objective, op, goal)
		}
	}
	return ""
}

// propose returns the hyperparameters of round r's n trials, given every
// earlier trial.
func (s *search[P, Out]) propose(r int, earlier []Trial[P, Out], n int) ([]P, error) {
	out := make([]P, 0, n)
	if s.sampler == Grid {
		return gridPoints[P](s.plan, len(earlier), n)
	}
	if s.sampler.stateless() {
		st, err := newStudy(s.plan, s.sampler, roundSeed(s.opts.Seed, r), s.dir)
		if err != nil {
			return nil, err
		}
		for _, t := range earlier {
			xs, err := toSampler(s.plan, t.Params)
			if err != nil {
				return nil, fmt.Errorf("trial %d: %w", t.ID, err)
			}
			obj, ok := told(&t)
			if err := st.add(xs, obj, ok); err != nil {
				return nil, err
			}
		}
		return s.ask(st, out, n)
	}
	st, err := newStudy(s.plan, s.sampler, s.opts.Seed, s.dir)
	if err != nil {
		return nil, err
	}
	if err := s.replay(st, earlier); err != nil {
		return nil, err
	}
	return s.ask(st, out, n)
}

// ask appends the next n proposals of st to out.
func (s *search[P, Out]) ask(st *study, out []P, n int) ([]P, error) {
	for range n {
		_, xs, err := st.ask()
		if err != nil {
			return nil, err
		}
		p, err := fromSampler[P](s.plan, xs)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// replay rebuilds the state of a stateful sampler (CMA-ES, Sobol): round by round, it asks the sampler
// for each earlier trial — which, seeded alike, proposes the same
// parameters again, and so ends in the same internal state (random
// sources, CMA-ES generations, the Sobol sequence) — then tells it the
// round's outcomes. A sampler that proposes different parameters means
// the space, sampler or seed changed between the rounds of one run.
func (s *search[P, Out]) replay(st *study, earlier []Trial[P, Out]) error {
	for start := 0; start < len(earlier); {
		end := start
		for end < len(earlier) && earlier[end].Round == earlier[start].Round {
			end++
		}
		ids := make([]int, 0, end-start)
		for _, t := range earlier[start:end] {
			id, xs, err := st.ask()
			if err != nil {
				return err
			}
			p, err := fromSampler[P](s.plan, xs)
			if err != nil {
				return err
			}
			want := any(t.Params)
			if s.stop != nil {
				// The sampler leaves the budget field zero; the search
				// set it.
				if want, err = s.stop.withBudget(t.Params, 0); err != nil {
					return err
				}
			}
			if a, b := mustJSON(p), mustJSON(want); a != b {
				return fmt.Errorf("replaying trial %d, the sampler proposed %s, not %s as before: the space, sampler or seed changed between the rounds of this run", t.ID, a, b)
			}
			ids = append(ids, id)
		}
		for k, t := range earlier[start:end] {
			obj, ok := told(&t)
			if err := st.tell(ids[k], obj, ok); err != nil {
				return err
			}
		}
		start = end
	}
	return nil
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v (%v)", v, err)
	}
	return string(b)
}

// fingerprint identifies the search's definition: what its suggest and
// result steps compute besides their inputs.
func (s *search[P, Out]) fingerprint() string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n", reflect.TypeFor[P](), reflect.TypeFor[Out]())
	for _, k := range slices.Sorted(maps.Keys(s.space)) {
		d := s.space[k]
		fmt.Fprintf(h, "%s=%s", k, d.String())
		if d.kind == dimFixed || d.kind == dimChoice {
			fmt.Fprintf(h, "%s", mustJSON(d.values))
		}
		fmt.Fprintln(h)
	}
	fmt.Fprintf(h, "%s\n%s\n%v\n", s.sampler, s.dir, s.sizes)
	fmt.Fprintln(h, mustJSON(s.opts))
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// stepResources are the resources of the search's own steps.
func (s *search[P, Out]) stepResources() resources.Profile {
	if s.opts.StepResources != nil {
		return *s.opts.StepResources
	}
	return DefaultStepResources
}
