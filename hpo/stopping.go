package hpo

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"slices"
	"time"

	"github.com/sluice-ml/sluice/internal/field"
	"github.com/sluice-ml/sluice/task"
)

// StoppingRule is how an [EarlyStopping] search decides which trials go
// on to a larger budget.
type StoppingRule string

const (
	// ASHA is asynchronous successive halving, run in rounds: each
	// round promotes the best trials of each rung to the next, larger
	// budget, then starts new trials at the first rung.
	ASHA StoppingRule = "asha"
	// Hyperband runs successive halving in brackets that start their
	// trials at different rungs: the first at the smallest budget, the
	// last at Max.
	Hyperband StoppingRule = "hyperband"
	// Median goes on with a trial while its objective is no worse than
	// the median of the other trials' objectives at the same rung.
	Median StoppingRule = "median"
)

var stoppingRules = []StoppingRule{ASHA, Hyperband, Median}

// DefaultEta is EarlyStopping.Eta's default.
const DefaultEta = 3

// EarlyStopping runs trials in rungs of growing budget (epochs, steps, a
// fraction of the data) and stops the unpromising ones early; see the
// package doc, "Early stopping".
type EarlyStopping struct {
	// Rule is ASHA (the default), Hyperband or Median.
	Rule StoppingRule
	// Budget names the field of the hyperparameter struct that holds a
	// trial's budget, of an integer or float type. The search sets it for
	// every run of a trial; the space must not name it. Required.
	Budget string
	// Min and Max are the first and the last rung's budgets, 0 < Min <
	// Max.
	Min, Max float64
	// Eta is the reduction factor, 2 or more (0 means [DefaultEta]): the
	// rungs' budgets are Min, Min·Eta, Min·Eta², …, the last one Max
	// (Min·Eta^k for the largest k with Min·Eta^k ≤ Max, raised to Max),
	// and successive halving promotes one trial in Eta of each rung. An
	// integer budget field gets the budgets rounded, which must stay
	// distinct.
	Eta int
}

// Rung is one run of a trial under early stopping: the trial at one
// budget.
type Rung struct {
	// Budget is the value the budget field had.
	Budget float64 `json:"budget"`
	// Objective is the run's objective, if it is complete.
	Objective float64 `json:"objective"`
	// State is Complete or Failed.
	State State `json:"state"`
	// Duration is how long the run took (0 if it failed).
	Duration time.Duration `json:"duration"`
}

// resume is what a promoted trial's run gets from its previous rung.
type resume[Out any] struct {
	Budget float64 `json:"budget"`
	Out    Out     `json:"out"`
}

type previousKey struct{}

// Previous returns, inside a trial task of a search with early stopping,
// the trial's output at its previous rung and that rung's budget, when
// this run continues the trial at a larger budget; ok is false for a
// trial's first run (and outside a search). A trial that checkpoints
// resumes from the checkpoint the previous output names, and trains for
// the budget's difference only:
//
//	prev, prevEpochs, ok := hpo.Previous[TrainOut](ctx)
//	if ok {
//		model = load(prev.Checkpoint) // an artifact.Ref written by the previous run
//	}
//	for epoch := int(prevEpochs); epoch < hp.Epochs; epoch++ { … }
//
// Out must be the trial's output type.
func Previous[Out any](ctx context.Context) (out Out, budget float64, ok bool) {
	r, ok := ctx.Value(previousKey{}).(resume[Out])
	return r.Out, r.Budget, ok
}

// sched is a trial's place in the early-stopping schedule, kept in the
// search's state next to the trial.
type sched struct {
	// Bracket is the trial's Hyperband bracket (0 for the other rules).
	Bracket int `json:"bracket"`
	// Start is the rung of the trial's first run, Rung that of its
	// latest.
	Start int `json:"start"`
	Rung  int `json:"rung"`
}

// stopPlan is a checked EarlyStopping.
type stopPlan struct {
	rule    StoppingRule
	eta     int
	budgets []float64 // per rung
	field   string    // the budget field's Go name
	jname   string    // and JSON name
	typ     reflect.Type
	errs    []*field.Error
	// brackets are the trials per bracket: one bracket but with
	// Hyperband.
	brackets []int
}

func (sp *stopPlan) top() int { return len(sp.budgets) - 1 }

// newStopPlan checks es against P and MaxTrials; its problems are at
// paths under earlyStopping.
func newStopPlan[P any](es *EarlyStopping, maxTrials int) *stopPlan {
	path := field.NewPath("earlyStopping")
	sp := &stopPlan{rule: es.Rule, eta: es.Eta}
	if sp.rule == "" {
		sp.rule = ASHA
	}
	if sp.eta == 0 {
		sp.eta = DefaultEta
	}
	if !contains(stoppingRules, sp.rule) {
		sp.errs = append(sp.errs, field.NotSupported(path.Child("rule"), sp.rule, stoppingRules))
	}
	pt := reflect.TypeFor[P]()
	switch jname, ft, ok := task.FieldByName(pt, es.Budget); {
	case es.Budget == "":
		sp.errs = append(sp.errs, field.Required(path.Child("budget"), "name the field of %v that holds a trial's budget (epochs, steps, a data fraction)", pt))
	case !ok:
		sp.errs = append(sp.errs, field.NotFound(path.Child("budget"), es.Budget, "%v has no exported field %q; its fields are %s", pt, es.Budget, fieldList(task.JSONFields(pt))))
	case !isFloatKind(ft.Kind()) && !isIntKind(ft.Kind()):
		sp.jname = jname // the space need not name it all the same
		sp.errs = append(sp.errs, field.Invalid(path.Child("budget"), es.Budget, "the field has type %v; a budget field must be an integer or a float", ft))
	default:
		sp.jname, sp.typ = jname, ft
		if f, ok := pt.FieldByName(es.Budget); ok {
			sp.field = f.Name
		} else {
			for _, f := range task.JSONFields(pt) {
				if f.Name == jname {
					sp.field = f.GoName
				}
			}
		}
	}
	switch {
	case !finite(es.Min) || es.Min <= 0:
		sp.errs = append(sp.errs, field.Invalid(path.Child("min"), fmt.Sprint(es.Min), "the first rung's budget must be above 0"))
	case !finite(es.Max) || es.Max <= es.Min:
		sp.errs = append(sp.errs, field.Invalid(path.Child("max"), fmt.Sprint(es.Max), "the last rung's budget must be above min (%v)", es.Min))
	}
	if sp.eta < 2 {
		sp.errs = append(sp.errs, field.Invalid(path.Child("eta"), es.Eta, "the reduction factor must be 2 or more (0 means %d)", DefaultEta))
	}
	if len(sp.errs) > 0 {
		sp.budgets = []float64{1, 2} // a graph all the same; Validate reports the problems
		sp.brackets = []int{max(maxTrials, 1)}
		return sp
	}
	b := es.Min
	sp.budgets = []float64{b}
	for b*float64(sp.eta) <= es.Max*(1+1e-9) {
		b *= float64(sp.eta)
		sp.budgets = append(sp.budgets, b)
	}
	if len(sp.budgets) < 2 {
		sp.errs = append(sp.errs, field.Invalid(path.Child("max"), fmt.Sprint(es.Max), "gives one rung only: max must be at least min·eta (%v) for two rungs", es.Min*float64(sp.eta)))
		sp.budgets = []float64{es.Min, es.Max}
	}
	sp.budgets[len(sp.budgets)-1] = es.Max
	if isIntKind(sp.typ.Kind()) {
		for i, b := range sp.budgets {
			sp.budgets[i] = math.Round(b)
			if sp.budgets[i] < 1 || (i > 0 && sp.budgets[i] == sp.budgets[i-1]) {
				sp.errs = append(sp.errs, field.Invalid(path.Child("min"), fmt.Sprint(es.Min), "the budget field %s is an integer and the rungs' budgets %v round to %v; raise min (or eta) so that they stay distinct and positive", sp.field, sp.rawBudgets(es), sp.budgets[:i+1]))
				break
			}
		}
	}
	for _, b := range sp.budgets {
		if len(sp.errs) > 0 {
			break
		}
		if _, err := numberTo(b, sp.typ); err != nil {
			sp.errs = append(sp.errs, field.Invalid(path.Child("max"), fmt.Sprint(es.Max), "budget %v: %v", b, err))
			break
		}
	}
	sp.brackets = []int{max(maxTrials, 1)}
	if sp.rule == Hyperband {
		sp.brackets = hyperbandBrackets(max(maxTrials, 1), len(sp.budgets), sp.eta)
	}
	return sp
}

// rawBudgets are the rungs' budgets before rounding, for a message.
func (sp *stopPlan) rawBudgets(es *EarlyStopping) []float64 {
	out := make([]float64, len(sp.budgets))
	b := es.Min
	for i := range out {
		out[i] = b
		b *= float64(sp.eta)
	}
	out[len(out)-1] = es.Max
	return out
}

// hyperbandBrackets splits n trials over the brackets of rungs rungs:
// bracket s starts its trials at rung s and promotes them rungs-1-s
// times, and gets trials in Hyperband's proportion eta^h/(h+1) for h =
// rungs-1-s halvings (Li et al., 2018), so that every bracket spends
// about the same budget; the shares are rounded by largest remainder,
// ties to the earlier bracket.
func hyperbandBrackets(n, rungs, eta int) []int {
	w := make([]float64, rungs)
	sum := 0.0
	for s := range w {
		h := rungs - 1 - s
		w[s] = math.Pow(float64(eta), float64(h)) / float64(h+1)
		sum += w[s]
	}
	out := make([]int, rungs)
	rem := make([]float64, rungs)
	left := n
	for s := range w {
		x := float64(n) * w[s] / sum
		out[s] = int(math.Floor(x))
		rem[s] = x - float64(out[s])
		left -= out[s]
	}
	order := make([]int, rungs)
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case rem[a] > rem[b]:
			return -1
		case rem[a] < rem[b]:
			return 1
		}
		return 0
	})
	for i := 0; left > 0; i++ {
		out[order[i%rungs]]++
		left--
	}
	return out
}

// bracketOf returns the bracket of the trial with id.
func (sp *stopPlan) bracketOf(id int) int {
	for b, n := range sp.brackets {
		if id < n {
			return b
		}
		id -= n
	}
	return len(sp.brackets) - 1
}

// startRung is the rung a bracket's trials start at.
func (sp *stopPlan) startRung(bracket int) int {
	if sp.rule == Hyperband {
		return bracket
	}
	return 0
}

// minRounds simulates the schedule of maxTrials trials, at most width
// runs per round, with every run complete and, for the median rule,
// every trial going on: the rounds it takes are the fewest that let the
// schedule finish whatever the objectives are (successive halving
// promotes a number of trials that depends only on how many results a
// rung has; the median rule only ever runs fewer).
func (sp *stopPlan) minRounds(width int) int {
	nb, nr := len(sp.brackets), len(sp.budgets)
	done := make([][]int, nb)     // complete runs per bracket and rung
	promoted := make([][]int, nb) // promoted from each rung
	for b := range done {
		done[b], promoted[b] = make([]int, nr), make([]int, nr)
	}
	left := slices.Clone(sp.brackets)
	rounds := 0
	for rounds <= MaxRounds {
		slots := width
		runs := make([][]int, nb)
		for b := range runs {
			runs[b] = make([]int, nr)
		}
		for k := nr - 2; k >= 0; k-- {
			for b := range nb {
				take := min(sp.promotable(done[b][k], promoted[b][k]), slots)
				promoted[b][k] += take
				runs[b][k+1] += take
				slots -= take
			}
		}
		for b := range nb {
			take := min(left[b], slots)
			left[b] -= take
			runs[b][sp.startRung(b)] += take
			slots -= take
		}
		if slots == width {
			return rounds
		}
		rounds++
		for b := range nb {
			for k := range nr {
				done[b][k] += runs[b][k]
			}
		}
	}
	return rounds
}

// promotable is how many trials a rung with done complete results, of
// which promoted went on, may promote now.
func (sp *stopPlan) promotable(done, promoted int) int {
	if sp.rule == Median {
		return done - promoted
	}
	return max(done/sp.eta-promoted, 0)
}

// withBudget returns p with its budget field set to b.
func (sp *stopPlan) withBudget(p any, b float64) (any, error) {
	v := reflect.New(reflect.TypeOf(p)).Elem()
	v.Set(reflect.ValueOf(p))
	x, err := numberTo(b, sp.typ)
	if err != nil {
		return p, err
	}
	v.FieldByName(sp.field).Set(x)
	return v.Interface(), nil
}

// rungResult returns trial i's result at rung k, if it has one.
func rungResult[P, Out any](t *Trial[P, Out], sc sched, k int) (Rung, bool) {
	j := k - sc.Start
	if j < 0 || j >= len(t.Rungs) {
		return Rung{}, false
	}
	return t.Rungs[j], true
}

// promote chooses the waiting trials (complete at a rung below the top,
// not promoted) that go on, at most slots of them, from the highest rung
// down, and, under the median rule, prunes those that do not. It
// returns their indices in st.Trials.
func (s *search[P, Out]) promote(st *state[P, Out], slots int) []int {
	sp := s.stop
	var out []int
	for k := sp.top() - 1; k >= 0; k-- {
		for b := range sp.brackets {
			// The complete results at rung k of bracket b, best first.
			var results []int
			var objs []float64
			waiting := 0
			for i := range st.Trials {
				t, sc := &st.Trials[i], st.Sched[i]
				if sc.Bracket != b {
					continue
				}
				if r, ok := rungResult(t, sc, k); ok && r.State == Complete {
					results = append(results, i)
					objs = append(objs, r.Objective)
					if t.State == Complete && sc.Rung == k {
						waiting++
					}
				}
			}
			if waiting == 0 {
				continue
			}
			if sp.rule == Median {
				out = s.medianRule(st, k, results, objs, out, &slots)
				continue
			}
			rank := make([]int, len(results))
			for i := range rank {
				rank[i] = i
			}
			slices.SortStableFunc(rank, func(a, c int) int {
				switch {
				case s.dir.better(objs[a], objs[c]):
					return -1
				case s.dir.better(objs[c], objs[a]):
					return 1
				}
				return 0
			})
			promoted := len(results) - waiting
			n := min(sp.promotable(len(results), promoted), slots)
			for _, j := range rank[:len(results)/sp.eta] {
				if n == 0 {
					break
				}
				i := results[j]
				if st.Trials[i].State == Complete && st.Sched[i].Rung == k {
					out = append(out, i)
					n--
					slots--
				}
			}
		}
	}
	return out
}

// medianRule promotes (while slots last) or prunes each waiting trial at
// rung k, in id order, by the median of the other trials' results there.
func (s *search[P, Out]) medianRule(st *state[P, Out], k int, results []int, objs []float64, out []int, slots *int) []int {
	for j, i := range results {
		t := &st.Trials[i]
		if t.State != Complete || st.Sched[i].Rung != k {
			continue
		}
		others := make([]float64, 0, len(objs)-1)
		others = append(append(others, objs[:j]...), objs[j+1:]...)
		if len(others) >= 3 {
			if m := median(others); s.dir.better(m, objs[j]) {
				t.State = Pruned
				t.Error = fmt.Sprintf("pruned at budget %v: objective %v is worse than the median %v of %d other trials there", st.Trials[i].Budget, objs[j], m, len(others))
				continue
			}
		}
		if *slots > 0 {
			out = append(out, i)
			*slots--
		}
	}
	return out
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// suggestStopping proposes round r's runs under early stopping: the
// promoted trials first, then new trials at their bracket's first rung,
// up to the round's width and MaxTrials trials in all.
func (s *search[P, Out]) suggestStopping(r int, st state[P, Out]) (state[P, Out], error) {
	sp := s.stop
	width := s.sizes[r]
	for _, i := range s.promote(&st, width) {
		t, sc := &st.Trials[i], &st.Sched[i]
		sc.Rung++
		prev := &resume[Out]{Budget: t.Budget, Out: t.Output}
		p, err := sp.withBudget(t.Params, sp.budgets[sc.Rung])
		if err != nil {
			return st, fmt.Errorf("round %d: trial %d: %w", r, t.ID, err)
		}
		t.Params, t.Budget, t.State = p.(P), sp.budgets[sc.Rung], running
		st.Next = append(st.Next, proposal[P, Out]{ID: t.ID, Params: t.Params, Resume: prev})
	}
	n := min(width-len(st.Next), max(s.opts.MaxTrials, 1)-len(st.Trials))
	if n <= 0 {
		return st, nil
	}
	next, err := s.propose(r, st.Trials, n)
	if err != nil {
		return st, fmt.Errorf("round %d: %w", r, err)
	}
	for _, p := range next {
		id := len(st.Trials)
		b := sp.bracketOf(id)
		start := sp.startRung(b)
		pb, err := sp.withBudget(p, sp.budgets[start])
		if err != nil {
			return st, fmt.Errorf("round %d: trial %d: %w", r, id, err)
		}
		st.Trials = append(st.Trials, Trial[P, Out]{ID: id, Round: r, Params: pb.(P), State: running, Budget: sp.budgets[start]})
		st.Sched = append(st.Sched, sched{Bracket: b, Start: start, Rung: start})
		st.Next = append(st.Next, proposal[P, Out]{ID: id, Params: pb.(P)})
	}
	return st, nil
}

// finishStopping ends the schedule: a complete trial below the last
// rung was stopped early.
func (s *search[P, Out]) finishStopping(st *state[P, Out]) {
	for i := range st.Trials {
		if t := &st.Trials[i]; t.State == Complete && st.Sched[i].Rung < s.stop.top() {
			t.State = Pruned
			t.Error = fmt.Sprintf("pruned at budget %v: not promoted to budget %v", t.Budget, s.stop.budgets[st.Sched[i].Rung+1])
		}
	}
}

// told returns what the sampler is told of trial t: under early
// stopping, its first run's objective, which later rounds do not change
// (so a stateful sampler's replay proposes the same trials again), else
// its objective; and whether that is complete.
func told[P, Out any](t *Trial[P, Out]) (float64, bool) {
	if len(t.Rungs) > 0 {
		return t.Rungs[0].Objective, t.Rungs[0].State == Complete
	}
	return t.Objective, t.State == Complete
}
