package pipeline

import (
	"fmt"

	"github.com/sluice-ml/sluice/task"
)

// Step is a typed handle to a task added to a pipeline. The zero Step was
// never added; using it is reported by Validate.
type Step[Out any] struct{ n *node }

// Add adds t to p with input in and returns the new step. Each exported
// Ref field of in becomes a dependency edge. In and Out are inferred from
// t, so call sites never write type arguments. The step is named after the
// task; add the same definition twice with [task.Task.WithName]. A nil p
// is a programmer error and panics with a message that says so; every
// other problem is reported by Validate.
func Add[In, Out any](p *Pipeline, t task.Task[In, Out], in In) Step[Out] {
	mustPipeline(p, "Add")
	return Step[Out]{n: p.addNode(t.Spec(), t.Invoker(), in)}
}

// OnExit sets t as p's exit handler: it runs after every other step has
// finished, whether the run succeeded, failed or was canceled. Its input
// may read parameters and [Pipeline.Status], not step outputs (which may
// not exist). A pipeline has at most one exit handler.
func OnExit[In, Out any](p *Pipeline, t task.Task[In, Out], in In) Step[Out] {
	mustPipeline(p, "OnExit")
	n := p.addNode(t.Spec(), t.Invoker(), in)
	n.exit = true
	p.exits = append(p.exits, n)
	return Step[Out]{n: n}
}

// Name returns the step's name as the user sees it: its task's name, or
// "<task>-<i>" for a step made by [FanOut]; "" for the zero Step.
func (s Step[Out]) Name() string {
	if s.n == nil {
		return ""
	}
	return s.n.name
}

// Output returns a reference to the step's result, for use in downstream
// inputs.
func (s Step[Out]) Output() Ref[Out] {
	if s.n == nil {
		return Ref[Out]{src: newSource(&source{kind: srcStep, zeroStep: true, typ: typeOf[Out]()})}
	}
	return Ref[Out]{src: stepSource(s.n, typeOf[Out]())}
}

// After orders s after deps, in addition to its data dependencies, and
// returns s.
func (s Step[Out]) After(deps ...Dependency) Step[Out] {
	mustAdded(s.n, "Step.After")
	if s.n != nil {
		s.n.addAfter(deps)
	}
	return s
}

// When makes s run only if c holds once its inputs are known; otherwise s
// is skipped, and so is every step that depends on it. Calling When again
// adds a condition (all must hold). It returns s.
func (s Step[Out]) When(c Cond) Step[Out] {
	mustAdded(s.n, "Step.When")
	if s.n != nil {
		s.n.when = append(s.n.when, c)
	}
	return s
}

func (s Step[Out]) depNodes() []*node { return []*node{s.n} }

func (n *node) addAfter(deps []Dependency) {
	for _, d := range deps {
		if d == nil {
			n.badAfter++
			continue
		}
		for _, m := range d.depNodes() {
			if m == nil {
				n.badAfter++
				continue
			}
			n.after = append(n.after, m)
		}
	}
}

// Fan is a dynamic fan-out made by [ForEach]: one step that runs once per
// element of a list known only at run time.
type Fan[Out any] struct{ n *node }

// ForEach adds a dynamic fan-out to p: t runs once per element of the list
// items refers to. bind builds each instance's input from a reference to
// its element; it runs once, at definition time, so it must only wire
// references (as in any input literal). The instances' outputs are
// gathered, in element order, by [Fan.Collect]. ForEach panics if p or
// bind is nil, as [Add] does for a nil p.
//
//	trials := pipeline.ForEach(p, train, grid.Output(), func(hp pipeline.Ref[HParams]) TrainIn {
//		return TrainIn{Data: data.Output(), HP: hp}
//	}).Limit(4)
func ForEach[Item, In, Out any](p *Pipeline, t task.Task[In, Out], items Ref[[]Item], bind func(item Ref[Item]) In) Fan[Out] {
	mustPipeline(p, "ForEach")
	if bind == nil {
		panic(fmt.Sprintf("pipeline: ForEach(%q) with a nil bind function; pass one that builds each instance's input from its element", t.Name()))
	}
	n := p.addNode(t.Spec(), t.Invoker(), nil)
	n.forEach = &forEach{items: items.src}
	if items.src == nil {
		// A constant list, fixed at definition time.
		n.forEach.items = newSource(&source{kind: srcConst, typ: typeOf[[]Item](), constVal: items.val})
	}
	item := Ref[Item]{src: newSource(&source{kind: srcItem, node: n, typ: typeOf[Item]()})}
	n.input = bind(item)
	return Fan[Out]{n: n}
}

// FanOut adds one step per input, named "<task>-<index>", and returns
// them: a static fan-out. Gather their outputs with [Collect].
func FanOut[In, Out any](p *Pipeline, t task.Task[In, Out], ins []In) []Step[Out] {
	mustPipeline(p, "FanOut")
	steps := make([]Step[Out], len(ins))
	for i, in := range ins {
		s := Add(p, t, in)
		s.n.name = fmt.Sprintf("%s-%d", t.Name(), i)
		s.n.fanIndex = i
		steps[i] = s
	}
	return steps
}

// Name returns the fan-out's name (its task's name).
func (f Fan[Out]) Name() string {
	if f.n == nil {
		return ""
	}
	return f.n.name
}

// Collect returns a reference to the list of all instances' outputs, in
// element order: the typed fan-in.
func (f Fan[Out]) Collect() Ref[[]Out] {
	if f.n == nil {
		return Ref[[]Out]{src: newSource(&source{kind: srcStep, zeroStep: true, typ: typeOf[[]Out]()})}
	}
	return Ref[[]Out]{src: stepSource(f.n, typeOf[[]Out]())}
}

// Limit caps how many instances run at once, 0 to [MaxParallelism] (zero:
// no cap), and returns f.
func (f Fan[Out]) Limit(n int) Fan[Out] {
	mustAdded(f.n, "Fan.Limit")
	if f.n != nil {
		f.n.forEach.parallelism = n
		f.n.forEach.limitSet = true
	}
	return f
}

// Tolerate lets up to n instances fail without failing the fan-out, and
// returns f: the collected list then holds the outputs of the instances
// that succeeded, in element order, and the step's message names the
// failures. A search that can afford to lose some trials (HPO's
// maxFailedTrials) uses it. Zero, the default, tolerates none.
func (f Fan[Out]) Tolerate(n int) Fan[Out] {
	mustAdded(f.n, "Fan.Tolerate")
	if f.n != nil {
		f.n.forEach.maxFailed = n
	}
	return f
}

// TolerateFraction lets a fraction of the instances (0 to 1, rounded
// down to whole instances) fail without failing the fan-out, as
// [Fan.Tolerate] does; with both set, the larger allowance applies.
func (f Fan[Out]) TolerateFraction(x float64) Fan[Out] {
	mustAdded(f.n, "Fan.TolerateFraction")
	if f.n != nil {
		f.n.forEach.maxFailedF = x
	}
	return f
}

// After orders the whole fan-out after deps and returns f.
func (f Fan[Out]) After(deps ...Dependency) Fan[Out] {
	mustAdded(f.n, "Fan.After")
	if f.n != nil {
		f.n.addAfter(deps)
	}
	return f
}

// When makes the whole fan-out conditional, as [Step.When] does.
func (f Fan[Out]) When(c Cond) Fan[Out] {
	mustAdded(f.n, "Fan.When")
	if f.n != nil {
		f.n.when = append(f.n.when, c)
	}
	return f
}

func (f Fan[Out]) depNodes() []*node { return []*node{f.n} }
