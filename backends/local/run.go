package local

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/sluice-ml/sluice/backends"
)

// loc addresses a status in a run: step is the index into run.steps (the
// exit handler is last), inst the fan-out instance or -1 for the step.
type loc struct{ step, inst int }

const msgNotStarted = "canceled before it started"

// run is one run of a plan. Each step has a goroutine that waits for its
// dependencies, then runs the step (a fan-out starts a goroutine per
// instance). When every step has ended the exit handler runs, then the run
// ends. Every status change goes through update, which wakes watchers.
type run struct {
	b      *Backend
	id     string
	seq    int // the Backend's run number, the first key of scheduling order
	plan   *backends.Plan
	steps  []*backends.Step // plan order, exit handler last
	index  map[string]int   // step name to index in steps
	params map[string]json.RawMessage
	span   trace.Span

	exitCtx     context.Context // the exit handler's; Cancel leaves it alone
	stepCtx     context.Context // every step's; Cancel cancels it
	cancelSteps context.CancelFunc
	stepDone    []chan struct{} // closed when plan step i has ended

	mu        sync.Mutex
	status    backends.RunStatus
	outputs   map[string]json.RawMessage // outputs of ended steps, for refs
	info      *backends.RunInfo          // the outcome of the steps, once they ended
	version   uint64                     // counts status changes
	changed   chan struct{}              // closed and replaced on each change
	canceled  bool                       // Cancel came before the steps ended
	stepsOver bool
	over      bool
}

func newRun(ctx context.Context, b *Backend, id string, seq int, plan *backends.Plan) *run {
	ctx, span := b.tel.startRun(context.WithoutCancel(ctx), plan.Name, id)
	stepCtx, cancel := context.WithCancel(ctx)
	r := &run{
		b: b, id: id, seq: seq, plan: plan,
		steps:       planSteps(plan),
		index:       map[string]int{},
		params:      map[string]json.RawMessage{},
		span:        span,
		exitCtx:     ctx,
		stepCtx:     stepCtx,
		cancelSteps: cancel,
		stepDone:    make([]chan struct{}, len(plan.Steps)),
		outputs:     map[string]json.RawMessage{},
		changed:     make(chan struct{}),
		version:     1,
	}
	for _, p := range plan.Params {
		r.params[p.Name] = p.Value
	}
	r.status = backends.RunStatus{RunID: id, Pipeline: plan.Name, Phase: backends.PhaseRunning, Started: b.opts.Clock.Now()}
	for i, s := range r.steps {
		r.index[s.Name] = i
		r.status.Steps = append(r.status.Steps, backends.StepStatus{Name: s.Name, Phase: backends.PhasePending})
	}
	for i := range r.stepDone {
		r.stepDone[i] = make(chan struct{})
	}
	return r
}

func (r *run) now() time.Time { return r.b.opts.Clock.Now() }

// execute runs the plan to its end.
func (r *run) execute() {
	if r.b.opts.Sequential {
		// Plan order is topological: each step's dependencies have ended
		// by the time it comes up.
		for i := range r.plan.Steps {
			r.runStep(i)
		}
	} else {
		var wg sync.WaitGroup
		for i := range r.plan.Steps {
			wg.Go(func() { r.runStep(i) })
		}
		wg.Wait()
	}
	r.endSteps()
	if r.plan.Exit != nil {
		r.runNode(r.exitCtx, len(r.plan.Steps))
	}
	r.finish()
}

// runStep waits for the dependencies of plan step i, then runs it.
func (r *run) runStep(i int) {
	defer close(r.stepDone[i])
	for _, d := range r.steps[i].DependsOn {
		select {
		case <-r.stepDone[r.index[d]]:
		case <-r.stepCtx.Done():
		}
	}
	if r.stepCtx.Err() != nil {
		r.end(loc{i, -1}, backends.PhaseCanceled, msgNotStarted, nil)
		return
	}
	r.runNode(r.stepCtx, i)
}

// runNode runs step i, whose dependencies have ended, unless an upstream
// outcome or its condition says otherwise.
func (r *run) runNode(ctx context.Context, i int) {
	s, at := r.steps[i], loc{i, -1}
	if phase, msg := r.upstream(s); phase != "" {
		r.end(at, phase, msg, nil)
		return
	}
	rv := r.resolver()
	if s.When != nil {
		ok, err := s.When.Eval(rv.value)
		if err != nil {
			r.end(at, backends.PhaseFailed, fmt.Sprintf("condition %s: %v", s.When, err), nil)
			return
		}
		if !ok {
			r.end(at, backends.PhaseSkipped, fmt.Sprintf("condition %s is false", s.When), nil)
			return
		}
	}
	if s.ForEach != nil {
		r.runForEach(ctx, at, s, rv)
		return
	}
	r.runTask(ctx, at, s, rv)
}

// upstream says how s ends without running because of a dependency:
// Canceled after a canceled one, Skipped after a failed or skipped one.
// It returns "" when s may run.
func (r *run) upstream(s *backends.Step) (backends.Phase, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	skipped := ""
	for _, d := range s.DependsOn {
		switch r.status.Steps[r.index[d]].Phase {
		case backends.PhaseCanceled:
			return backends.PhaseCanceled, fmt.Sprintf("upstream step %q was canceled", d)
		case backends.PhaseFailed:
			return backends.PhaseSkipped, fmt.Sprintf("upstream step %q failed", d)
		case backends.PhaseSkipped:
			if skipped == "" {
				skipped = d
			}
		}
	}
	if skipped != "" {
		return backends.PhaseSkipped, fmt.Sprintf("upstream step %q was skipped", skipped)
	}
	return "", ""
}

// runForEach runs one instance of s per element of its list, at most
// ForEach.Parallelism at once, and ends s with the list of their outputs.
func (r *run) runForEach(ctx context.Context, at loc, s *backends.Step, rv resolver) {
	items, err := forEachItems(s, rv)
	if err != nil {
		r.end(at, backends.PhaseFailed, err.Error(), nil)
		return
	}
	r.startFanOut(at, s.Name, len(items))
	n := s.ForEach.Parallelism
	if r.b.opts.Sequential {
		n = 1
	}
	var limit chan struct{}
	if n > 0 {
		limit = make(chan struct{}, n)
	}
	var wg sync.WaitGroup
	for i, item := range items {
		in := loc{at.step, i}
		if limit != nil {
			select {
			case limit <- struct{}{}:
			case <-ctx.Done():
				r.end(in, backends.PhaseCanceled, msgNotStarted, nil)
				continue
			}
		}
		wg.Go(func() {
			if limit != nil {
				defer func() { <-limit }()
			}
			r.runTask(ctx, in, s, rv.withItem(item))
		})
	}
	wg.Wait()
	phase, msg, out := r.fanOutcome(at)
	r.end(at, phase, msg, out)
}

// forEachItems resolves the list a fan-out iterates over.
func forEachItems(s *backends.Step, rv resolver) ([]json.RawMessage, error) {
	v, err := rv.value(s.ForEach.Items)
	if err != nil {
		return nil, fmt.Errorf("forEach items %s: %w", s.ForEach.Items, err)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(v, &items); err != nil {
		return nil, fmt.Errorf("forEach items %s: not a list: %s", s.ForEach.Items, v)
	}
	return items, nil
}

func (r *run) startFanOut(at loc, name string, n int) {
	now := r.now()
	r.update(func(st *backends.RunStatus) {
		ss := &st.Steps[at.step]
		ss.Phase, ss.Started = backends.PhaseRunning, now
		ss.Instances = make([]backends.StepStatus, n)
		for i := range ss.Instances {
			ss.Instances[i] = backends.StepStatus{Name: fmt.Sprintf("%s[%d]", name, i), Phase: backends.PhasePending}
		}
	})
}

// fanOutcome is how a fan-out ends once its instances have: Failed if one
// failed, Canceled if one was canceled, else Cached if all were, else
// Succeeded; the output is the list of instance outputs.
func (r *run) fanOutcome(at loc) (backends.Phase, string, json.RawMessage) {
	r.mu.Lock()
	defer r.mu.Unlock()
	insts := r.status.Steps[at.step].Instances
	outs := make([]json.RawMessage, len(insts))
	canceled, allCached := false, len(insts) > 0
	for i, in := range insts {
		switch in.Phase {
		case backends.PhaseFailed:
			return backends.PhaseFailed, fmt.Sprintf("instance %d failed: %s", i, in.Message), nil
		case backends.PhaseCanceled:
			canceled = true
		case backends.PhaseSucceeded:
			allCached = false
		}
		outs[i] = in.Output
	}
	if canceled {
		return backends.PhaseCanceled, "canceled", nil
	}
	out, err := json.Marshal(outs)
	if err != nil {
		return backends.PhaseFailed, fmt.Sprintf("collect instance outputs: %v", err), nil
	}
	if allCached {
		return backends.PhaseCached, "", out
	}
	return backends.PhaseSucceeded, "", out
}

// runTask runs one task (a step, or one instance of a fan-out) through the
// cache, the resource pool and its attempts, and records how it ended.
func (r *run) runTask(ctx context.Context, at loc, s *backends.Step, rv resolver) {
	if ctx.Err() != nil {
		r.end(at, backends.PhaseCanceled, msgNotStarted, nil)
		return
	}
	input, err := s.Input.Resolve(rv.value)
	if err != nil {
		r.end(at, backends.PhaseFailed, "resolve input: "+err.Error(), nil)
		return
	}
	entry, note := r.cacheEntry(at, s, input), ""
	if entry != nil {
		if out, ok := entry.load(); ok {
			r.logf(at, "cached (%s)", entry.key)
			r.end(at, backends.PhaseCached, "", out)
			return
		}
		if note = entry.explainMiss(); note != "" {
			r.logf(at, "%s", note)
		}
	}
	release, err := r.b.pool.acquire(ctx, prio{r.seq, at.step, at.inst + 1}, demandOf(s))
	if err != nil {
		r.end(at, backends.PhaseCanceled, msgNotStarted, nil)
		return
	}
	out, phase, msg := r.attempts(ctx, at, s, input)
	release()
	if phase == backends.PhaseSucceeded && entry != nil {
		if err := entry.store(out); err != nil {
			r.logf(at, "cache: %v", err)
		}
		if msg == "" {
			msg = note
		}
	}
	r.end(at, phase, msg, out)
}

// end records that the task or step at at ended.
func (r *run) end(at loc, phase backends.Phase, msg string, out json.RawMessage) {
	now := r.now()
	r.update(func(st *backends.RunStatus) {
		ss := statusAt(st, at)
		ss.Phase, ss.Message, ss.Output, ss.Finished = phase, msg, out, now
		if at.inst < 0 && (phase == backends.PhaseSucceeded || phase == backends.PhaseCached) {
			r.outputs[ss.Name] = out
		}
	})
}

func statusAt(st *backends.RunStatus, at loc) *backends.StepStatus {
	ss := &st.Steps[at.step]
	if at.inst >= 0 {
		ss = &ss.Instances[at.inst]
	}
	return ss
}

// update applies f to the status and wakes watchers.
func (r *run) update(f func(st *backends.RunStatus)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(&r.status)
	r.version++
	close(r.changed)
	r.changed = make(chan struct{})
}

// snapshot returns a copy of the status, its version, a channel closed on
// the next change, and whether the run is over.
func (r *run) snapshot() (*backends.RunStatus, uint64, <-chan struct{}, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status.Clone(), r.version, r.changed, r.over
}

func (r *run) isOver() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.over
}

// resolver resolves refs against the run's parameters and outputs (and,
// for the exit handler, its outcome).
func (r *run) resolver() resolver {
	r.mu.Lock()
	defer r.mu.Unlock()
	return resolver{params: r.params, output: r.output, info: r.info}
}

func (r *run) output(step string) (json.RawMessage, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out, ok := r.outputs[step]
	return out, ok
}

// cancel stops the steps; see Backend.Cancel.
func (r *run) cancel() {
	r.mu.Lock()
	if !r.stepsOver {
		r.canceled = true
	}
	r.mu.Unlock()
	r.cancelSteps()
}

// endSteps notes that every step has ended and fixes the outcome the exit
// handler sees.
func (r *run) endSteps() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stepsOver = true
	phase, _, failed := r.outcome(len(r.plan.Steps))
	r.info = &backends.RunInfo{Phase: phase, Failed: failed}
}

// finish ends the run. The outcome no longer changes once the steps have
// ended, so the span ends before watchers learn the run is over.
func (r *run) finish() {
	r.mu.Lock()
	phase, msg, _ := r.outcome(len(r.status.Steps))
	r.mu.Unlock()
	r.cancelSteps()
	r.b.tel.endRun(r.span, phase)
	now := r.now()
	r.update(func(st *backends.RunStatus) {
		st.Phase, st.Message, st.Finished = phase, msg, now
		r.over = true
	})
}

// outcome is the phase of a run whose first n steps have ended: Canceled
// if Cancel came before the steps ended, else Failed if any failed, else
// Succeeded. It also returns a message and the failed steps' names in
// plan order. r.mu is held.
func (r *run) outcome(n int) (backends.Phase, string, []string) {
	var failed []string
	msg := ""
	for _, ss := range r.status.Steps[:n] {
		if ss.Phase == backends.PhaseFailed {
			failed = append(failed, ss.Name)
			if msg == "" {
				msg = fmt.Sprintf("step %q failed: %s", ss.Name, ss.Message)
			}
		}
	}
	switch {
	case r.canceled:
		return backends.PhaseCanceled, "canceled", failed
	case len(failed) > 1:
		return backends.PhaseFailed, fmt.Sprintf("steps %s failed; first: %s", strings.Join(failed, ", "), msg), failed
	case len(failed) == 1:
		return backends.PhaseFailed, msg, failed
	}
	return backends.PhaseSucceeded, "", nil
}

// logf writes one progress line for the task at at.
func (r *run) logf(at loc, format string, args ...any) {
	fmt.Fprintf(r.b.log, "[%s] %s\n", r.taskName(at), fmt.Sprintf(format, args...))
}

func (r *run) taskName(at loc) string {
	name := r.steps[at.step].Name
	if at.inst >= 0 {
		name = fmt.Sprintf("%s[%d]", name, at.inst)
	}
	return name
}
