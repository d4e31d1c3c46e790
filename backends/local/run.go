package local

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/sluice-ml/sluice/artifact"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/runstate"
	"github.com/sluice-ml/sluice/task"
)

// loc addresses a status in a run: step is the index into run.steps (the
// exit handler is last), inst the fan-out instance or -1 for the step.
type loc struct{ step, inst int }

const msgNotStarted = runstate.MsgNotStarted

// run is one run of a plan. A plan step starts once its dependencies have
// ended (see schedule): its task waits for capacity in the pool's line
// without a goroutine, then runs on the goroutine of a task that ended or
// on a new one; a fan-out has a goroutine, and one per instance. Cancel
// ends the steps not started yet. When every step has ended the exit
// handler runs, then the run ends. Every status change goes through
// update, which wakes the watchers waiting for changes. Steps are
// addressed by index, never by name, on the hot path.
type run struct {
	b      *Backend
	id     string
	seq    int // the Backend's run number, the first key of scheduling order
	plan   *backends.Plan
	steps  []*backends.Step // plan order, exit handler last
	index  map[string]int   // step name to index in steps, for refs
	deps   [][]int          // indices in steps of each step's DependsOn
	params map[string]json.RawMessage
	meta   backends.RunMeta // what RefMeta refs read; Scheduled set by Submit
	span   trace.Span
	store  *artifact.Store // the run's artifacts; closed when it ends if ownStore

	ownStore bool // the run opened store (not Options.Store), so closes it

	exitCtx     context.Context // the exit handler's; Cancel leaves it alone
	stepCtx     context.Context // every step's; Cancel cancels it
	cancelSteps context.CancelFunc

	// The scheduling of plan steps, when not Sequential.
	users   [][]int        // the plan steps that depend on each plan step
	waiting []atomic.Int32 // how many of each plan step's dependencies have not ended
	state   []atomic.Int32 // each plan step's stepWaiting, stepStarted or stepCanceled
	ended   sync.WaitGroup // counts plan steps not ended

	// fate is each step's outcome for its dependents, set when it ends
	// (see upstream): fateRunOn until then.
	fate     []atomic.Uint32
	outputFn func(step string) (json.RawMessage, bool) // r.output
	info     atomic.Pointer[backends.RunInfo]          // the outcome of the steps, once they ended

	// traced: the run's span records, so attempts have spans too (see
	// run.attemptSpan).
	traced bool

	// mu guards the status and what goes with it. A step's status does
	// not change once its phase is final (Phase.Done): watchers share
	// the attempts, output and instances of such a step without copying
	// them (see sync).
	mu        sync.Mutex
	status    backends.RunStatus
	outputs   []json.RawMessage // by step, once it ended Succeeded or Cached (has)
	has       []bool
	version   uint64        // counts status changes
	stepVer   []uint64      // the version of each step's last change
	changed   chan struct{} // closed once version reaches wakeAt; nil until a watcher waits
	wakeAt    uint64        // the least version a watcher waits for (see waitFor)
	canceled  bool          // Cancel came before the steps ended
	stepsOver bool
	over      bool
	overCh    chan struct{} // closed when over is set
}

func newRun(ctx context.Context, b *Backend, id string, seq int, plan *backends.Plan) *run {
	ctx, span := b.tel.startRun(context.WithoutCancel(ctx), plan.Name, id)
	ctx = task.WithClock(ctx, b.opts.Clock) // for every attempt
	stepCtx, cancel := context.WithCancel(ctx)
	r := &run{
		b: b, id: id, seq: seq, plan: plan,
		steps:       plan.AllSteps(),
		params:      map[string]json.RawMessage{},
		span:        span,
		exitCtx:     ctx,
		stepCtx:     stepCtx,
		cancelSteps: cancel,
		overCh:      make(chan struct{}),
		fate:        make([]atomic.Uint32, len(plan.Steps)+1),
		version:     1,
	}
	r.outputFn = r.output
	r.traced = span.IsRecording()
	for _, p := range plan.Params {
		r.params[p.Name] = p.Value
	}
	r.status = backends.RunStatus{RunID: id, Pipeline: plan.Name, Phase: backends.PhaseRunning, Started: b.opts.Clock.Now()}
	r.meta = backends.RunMeta{ID: id, Started: r.status.Started}
	if len(r.steps) > 0 {
		r.status.Steps = make([]backends.StepStatus, len(r.steps))
	}
	r.stepVer = make([]uint64, len(r.steps))
	r.outputs, r.has = make([]json.RawMessage, len(r.steps)), make([]bool, len(r.steps))
	r.index = make(map[string]int, len(r.steps))
	r.deps = make([][]int, len(r.steps))
	// The statuses are laid out and the lists of dependencies cut out of
	// one array, in chunks, while this goroutine makes the index; then
	// the dependencies are looked up in it, in chunks.
	chunks := numChunks(len(r.steps))
	ends := make([]int, len(r.steps)) // where the list of each step ends in flat
	laid := make(chan []int, 1)
	lay := func() {
		forChunks(len(r.steps), chunks, func(_, lo, hi int) {
			for i := lo; i < hi; i++ {
				r.status.Steps[i] = pendingStatus(r.steps[i])
			}
		})
		n := 0
		for i, s := range r.steps {
			n += len(s.DependsOn)
			ends[i] = n
		}
		laid <- make([]int, n) // one allocation for all the lists
	}
	if chunks > 1 {
		go lay()
	} else {
		lay()
	}
	for i, s := range r.steps {
		r.index[s.Name] = i
	}
	flat := <-laid
	forChunks(len(r.steps), chunks, func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			list := flat[ends[i]-len(r.steps[i].DependsOn) : ends[i] : ends[i]]
			for k, d := range r.steps[i].DependsOn {
				list[k] = r.index[d]
			}
			r.deps[i] = list
		}
	})
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
		r.schedule()
	}
	r.endSteps()
	if r.plan.Exit != nil {
		r.runNode(r.exitCtx, len(r.plan.Steps))
	}
	r.finish()
}

// States of a plan step, when not Sequential.
const (
	stepWaiting  int32 = iota // for its dependencies
	stepStarted               // its dependencies ended
	stepCanceled              // Cancel ended it before it started
)

// schedule runs every plan step once its dependencies have ended, and
// returns when all have ended. A step that runs a task waits in the pool's
// line without a goroutine (see pool.submit): a goroutine that ends a task
// runs the next one the pool grants, so a wide run needs few goroutines,
// whose stacks have grown already, and no hand-offs between them.
func (r *run) schedule() {
	n := len(r.plan.Steps)
	r.waiting = make([]atomic.Int32, n)
	r.state = make([]atomic.Int32, n)
	// The lists of users share one array: start[d] is where the list of
	// step d begins, start[d+1] where it ends.
	start := make([]int, n+1)
	for i := range n {
		r.waiting[i].Store(int32(len(r.deps[i])))
		for _, d := range r.deps[i] {
			start[d+1]++
		}
	}
	for d := range n {
		start[d+1] += start[d]
	}
	flat := make([]int, start[n])
	r.users = make([][]int, n)
	for d := range n {
		r.users[d] = flat[start[d]:start[d]:start[d+1]]
	}
	for i := range n {
		for _, d := range r.deps[i] {
			r.users[d] = append(r.users[d], i) // in plan order, within its capacity
		}
	}
	r.ended.Add(n)
	canceled := make(chan struct{})
	stop := context.AfterFunc(r.stepCtx, func() {
		defer close(canceled)
		r.cancelWaiting()
	})
	for i := range n {
		if len(r.deps[i]) == 0 && r.state[i].CompareAndSwap(stepWaiting, stepStarted) {
			ended, next := r.begin(i)
			if ended {
				next = r.advance(i, nil)
			}
			goRun(next)
		}
	}
	r.ended.Wait()
	if !stop() {
		<-canceled // cancelWaiting is running or has run
	}
}

// begin starts plan step i, whose dependencies have ended: a task gets in
// the pool's line, a fan-out gets a goroutine, and a step that does not
// run ends at once. It reports whether the step ended, and returns a
// ticket the pool granted meanwhile for the caller to run.
func (r *run) begin(i int) (ended bool, granted ticket) {
	ctx, s, at := r.stepCtx, r.steps[i], loc{i, -1}
	if ctx.Err() != nil {
		r.end(at, backends.PhaseCanceled, msgNotStarted, nil)
		return true, nil
	}
	rv, ok := r.precheck(i)
	if !ok {
		return true, nil
	}
	if s.ForEach != nil {
		go func() {
			r.runForEach(ctx, at, s, rv)
			runTickets(r.advance(i, nil))
		}()
		return false, nil
	}
	t := r.prepare(ctx, at, s, rv)
	if t == nil {
		return true, nil
	}
	t.w = waiter{need: t.need, ticket: t, owner: r}
	return false, r.b.pool.submit(t.prio(), &t.w)
}

// advance notes that plan step i has ended and begins the steps this made
// ready, and those that this made ready in turn when they end at once. It
// returns next or, when that is nil, a ticket the pool granted meanwhile,
// for the caller to run; other granted tickets get goroutines.
func (r *run) advance(i int, next ticket) ticket {
	var buf [8]int
	ended := append(buf[:0], i)
	for len(ended) > 0 {
		i := ended[len(ended)-1]
		ended = ended[:len(ended)-1]
		for _, u := range r.users[i] {
			if r.waiting[u].Add(-1) != 0 || !r.state[u].CompareAndSwap(stepWaiting, stepStarted) {
				continue
			}
			done, t := r.begin(u)
			if done {
				ended = append(ended, u)
			}
			switch {
			case t == nil:
			case next == nil:
				next = t
			default:
				goRun(t)
			}
		}
		r.ended.Done()
	}
	return next
}

// cancelWaiting ends, Canceled, the plan steps not started yet: those
// waiting for dependencies, and the tasks waiting in the pool's line.
func (r *run) cancelWaiting() {
	for i := range r.plan.Steps {
		if r.state[i].CompareAndSwap(stepWaiting, stepCanceled) {
			r.end(loc{i, -1}, backends.PhaseCanceled, msgNotStarted, nil)
			r.ended.Done()
		}
	}
	for _, t := range r.b.pool.drop(r) {
		t.drop()
	}
}

// runStep runs plan step i, whose dependencies have ended, unless the run
// was canceled (Sequential runs).
func (r *run) runStep(i int) {
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
	rv, ok := r.precheck(i)
	if !ok {
		return
	}
	if s.ForEach != nil {
		r.runForEach(ctx, at, s, rv)
		return
	}
	r.runTask(ctx, at, s, rv)
}

// precheck ends step i, whose dependencies have ended, when an upstream
// outcome or its condition says it does not run (see runstate.Gate); it
// returns the resolver to run it with and whether it runs.
func (r *run) precheck(i int) (backends.Values, bool) {
	s, at := r.steps[i], loc{i, -1}
	if !r.ranOn(i) {
		if v, decided := runstate.Upstream(s, r.upstream(i), false); decided {
			r.end(at, v.Phase, v.Message, nil)
			return backends.Values{}, false
		}
	}
	rv := r.resolver()
	if v := runstate.Condition(s, rv.Value); !v.Run {
		r.end(at, v.Phase, v.Message, nil)
		return backends.Values{}, false
	}
	return rv, true
}

// runForEach runs one instance of s per element of its list, at most
// ForEach.Parallelism at once, and ends s with the list of their outputs.
func (r *run) runForEach(ctx context.Context, at loc, s *backends.Step, rv backends.Values) {
	items, err := rv.Items(s)
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
			r.runTask(ctx, in, s, rv.WithItem(item))
		})
	}
	wg.Wait()
	phase, msg, out := r.fanOutcome(at)
	r.end(at, phase, msg, out)
}

func (r *run) startFanOut(at loc, name string, n int) {
	now := r.now()
	r.update(at.step, func(st *backends.RunStatus) {
		ss := &st.Steps[at.step]
		ss.Phase, ss.Started = backends.PhaseRunning, now
		ss.Instances = make([]backends.StepStatus, n)
		for i := range ss.Instances {
			ss.Instances[i] = backends.StepStatus{Name: fmt.Sprintf("%s[%d]", name, i), Phase: backends.PhasePending}
		}
	})
}

// fanOutcome is how the fan-out at at ends once its instances have (see
// runstate.FanOutEnd).
func (r *run) fanOutcome(at loc) (backends.Phase, string, json.RawMessage) {
	r.mu.Lock()
	defer r.mu.Unlock()
	o := runstate.FanOutEnd(r.steps[at.step], r.status.Steps[at.step].Instances)
	return o.Phase, o.Message, o.Output
}

// runTask runs one task (a step, or one instance of a fan-out) through the
// cache, the resource pool and its attempts, and records how it ended.
func (r *run) runTask(ctx context.Context, at loc, s *backends.Step, rv backends.Values) {
	t := r.prepare(ctx, at, s, rv)
	if t == nil {
		return
	}
	release, err := r.b.pool.acquire(ctx, t.prio(), t.need)
	if err != nil {
		r.end(at, backends.PhaseCanceled, msgNotStarted, nil)
		return
	}
	out, phase, msg := r.attempts(ctx, at, s, t.input)
	done := r.now() // before the demand goes back, so a task it admits starts later
	release()
	t.conclude(out, phase, msg, done)
}

// pending is a task ready to run once it gets its demand from the pool.
// As a ticket it runs a plan step without a goroutine of its own.
type pending struct {
	r     *run
	ctx   context.Context
	at    loc
	s     *backends.Step
	need  amounts
	input json.RawMessage
	entry *cacheEntry // nil when not cached
	note  string      // why the cache missed
	w     waiter      // its place in the pool's line, for a plan step
}

// prepare resolves the input of the task at at and looks it up in the
// cache. It returns nil when the task has ended: canceled, failed or
// cached.
func (r *run) prepare(ctx context.Context, at loc, s *backends.Step, rv backends.Values) *pending {
	if ctx.Err() != nil {
		r.end(at, backends.PhaseCanceled, msgNotStarted, nil)
		return nil
	}
	input, err := resolveInput(s.Input, rv)
	if err != nil {
		r.end(at, backends.PhaseFailed, runstate.InputError(err), nil)
		return nil
	}
	t := &pending{r: r, ctx: ctx, at: at, s: s, need: demandOf(s, r.b.opts.Pools), input: input, entry: r.cacheEntry(at, s, input)}
	if t.entry != nil {
		if out, ok := t.entry.load(); ok {
			r.logf(at, "cached (%s)", t.entry.key)
			r.end(at, backends.PhaseCached, "", out)
			return nil
		}
		if t.note = t.entry.explainMiss(); t.note != "" {
			r.logf(at, "%s", t.note)
		}
	}
	return t
}

// prio is the task's place in the pool's line.
func (t *pending) prio() prio { return prio{t.r.seq, t.at.step, t.at.inst + 1} }

// conclude stores a successful output in the cache and records how the
// task ended, at done.
func (t *pending) conclude(out json.RawMessage, phase backends.Phase, msg string, done time.Time) {
	if phase == backends.PhaseSucceeded && t.entry != nil {
		if err := t.entry.store(out); err != nil {
			t.r.logf(t.at, "cache: %v", err)
		}
		if msg == "" {
			msg = t.note
		}
	}
	t.r.endAt(t.at, phase, msg, out, done)
}

// run runs the plan step t, granted its demand, and returns the ticket to
// run next: one granted when t released its demand, or one its end made
// ready.
func (t *pending) run() ticket {
	r := t.r
	if t.ctx.Err() != nil { // canceled in line
		next := r.b.pool.releaseTake(t.need)
		r.end(t.at, backends.PhaseCanceled, msgNotStarted, nil)
		return r.advance(t.at.step, next)
	}
	out, phase, msg := r.attempts(t.ctx, t.at, t.s, t.input)
	done := r.now() // before the demand goes back, so a task it admits starts later
	next := r.b.pool.releaseTake(t.need)
	t.conclude(out, phase, msg, done)
	return r.advance(t.at.step, next)
}

// drop ends the plan step t, taken out of the pool's line by Cancel.
func (t *pending) drop() {
	t.r.end(t.at, backends.PhaseCanceled, msgNotStarted, nil)
	goRun(t.r.advance(t.at.step, nil))
}

// placeholderPrefix starts every placeholder of an input template (see
// backends.Placeholder).
var placeholderPrefix = []byte(`{"$sluice":`)

// resolveInput is in.Resolve(rv.Value), without its detour through a
// string for the common input that has no refs.
func resolveInput(in backends.Input, rv backends.Values) (json.RawMessage, error) {
	if len(in.Refs) == 0 && !bytes.Contains(in.Template, placeholderPrefix) {
		return append(json.RawMessage{}, in.Template...), nil
	}
	return in.Resolve(rv.Value)
}

// Outcomes of a step for its dependents (see run.fate).
const (
	fateRunOn uint32 = iota
	fateCanceled
	fateFailed
	fateSkipped
)

// fatePhase is the phase of each fate, for runstate.
var fatePhase = [...]backends.Phase{fateRunOn: backends.PhaseSucceeded, fateCanceled: backends.PhaseCanceled, fateFailed: backends.PhaseFailed, fateSkipped: backends.PhaseSkipped}

// ranOn reports whether every dependency of step i ended with an output,
// when runstate.Upstream lets i run: the common case, decided without it.
func (r *run) ranOn(i int) bool {
	for _, d := range r.deps[i] {
		if r.fate[d].Load() != fateRunOn {
			return false
		}
	}
	return true
}

// upstream returns the phase of the k-th dependency of step i, for
// runstate.Upstream.
func (r *run) upstream(i int) func(k int) backends.Phase {
	return func(k int) backends.Phase { return fatePhase[r.fate[r.deps[i][k]].Load()] }
}

// end records that the task or step at at ended now.
func (r *run) end(at loc, phase backends.Phase, msg string, out json.RawMessage) {
	r.endAt(at, phase, msg, out, r.now())
}

// endAt records that the task or step at at ended at now.
func (r *run) endAt(at loc, phase backends.Phase, msg string, out json.RawMessage, now time.Time) {
	r.update(at.step, func(st *backends.RunStatus) {
		ss := statusAt(st, at)
		ss.Phase, ss.Message, ss.Output, ss.Finished = phase, msg, out, now
		if at.inst >= 0 {
			return
		}
		switch phase {
		case backends.PhaseSucceeded, backends.PhaseCached:
			r.outputs[at.step], r.has[at.step] = out, true
		case backends.PhaseCanceled:
			r.fate[at.step].Store(fateCanceled)
		case backends.PhaseFailed:
			r.fate[at.step].Store(fateFailed)
		case backends.PhaseSkipped:
			r.fate[at.step].Store(fateSkipped)
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

// pendingStatus is the status of step s before anything happened to it,
// that of every step at the run's first version.
func pendingStatus(s *backends.Step) backends.StepStatus {
	return backends.StepStatus{Name: s.Name, Phase: backends.PhasePending}
}

// update applies f, which changes the status of step (or, when it is -1,
// only the run's own fields), and wakes the watchers waiting for the new
// version. f must not change a step whose phase is final (see run.mu).
func (r *run) update(step int, f func(st *backends.RunStatus)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	final := step >= 0 && checkFinal && r.status.Steps[step].Phase.Done()
	f(&r.status)
	if final {
		panic(fmt.Sprintf("local: step %s changed after it ended", r.steps[step].Name))
	}
	r.version++
	if step >= 0 {
		r.stepVer[step] = r.version
	}
	if r.changed != nil && r.version >= r.wakeAt {
		close(r.changed)
		r.changed = nil
	}
}

// checkFinal makes update check that no step changes once its phase is
// final, which watchers rely on (see run.mu); this package's tests set it.
var checkFinal bool

// closed is a closed channel.
var closed = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// waitFor returns a channel closed once the status is at version v or
// later (maybe earlier, when another watcher waits for an earlier one).
func (r *run) waitFor(v uint64) <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.version >= v:
		return closed
	case r.changed == nil:
		r.changed, r.wakeAt = make(chan struct{}), v
	default:
		r.wakeAt = min(r.wakeAt, v)
	}
	return r.changed
}

// current returns a copy of the status.
func (r *run) current() *backends.RunStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return cloneStatus(&r.status)
}

// cloneStatus is st.Clone() in a few allocations rather than a few per
// step: the steps' attempts share one array, and their outputs another,
// each step's slice capped at its length so that appending to it copies.
// The steps of a large status are copied in chunks (see forChunks).
func cloneStatus(st *backends.RunStatus) *backends.RunStatus {
	c := *st
	n := len(st.Steps)
	chunks := numChunks(n)
	na, no := make([]int, chunks+1), make([]int, chunks+1) // where each chunk's attempts and outputs begin
	forChunks(n, chunks, func(k, lo, hi int) {
		for _, s := range st.Steps[lo:hi] {
			na[k+1], no[k+1] = na[k+1]+len(s.Attempts), no[k+1]+len(s.Output)
		}
	})
	for k := range chunks {
		na[k+1], no[k+1] = na[k+1]+na[k], no[k+1]+no[k]
	}
	attempts, outputs := make([]backends.Attempt, na[chunks]), make([]byte, no[chunks])
	if st.Steps != nil {
		c.Steps = make([]backends.StepStatus, n)
	}
	forChunks(n, chunks, func(k, lo, hi int) {
		a, o := na[k], no[k]
		copy(c.Steps[lo:hi], st.Steps[lo:hi])
		for i := lo; i < hi; i++ {
			s := &c.Steps[i]
			if s.Attempts != nil {
				a0 := a
				a += copy(attempts[a:], s.Attempts)
				s.Attempts = attempts[a0:a:a]
			}
			if s.Output != nil {
				o0 := o
				o += copy(outputs[o:], s.Output)
				s.Output = outputs[o0:o:o]
			}
			if s.Instances != nil {
				s.Instances = (&backends.RunStatus{Steps: s.Instances}).Clone().Steps
			}
		}
	})
	return &c
}

func (r *run) isOver() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.over
}

// resolver resolves refs against the run's parameters and outputs (and,
// for the exit handler, its outcome).
func (r *run) resolver() backends.Values {
	return backends.Values{Params: r.params, Output: r.outputFn, Info: r.info.Load(), Meta: &r.meta}
}

func (r *run) output(step string) (json.RawMessage, bool) {
	i, ok := r.index[step]
	if !ok {
		return nil, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.outputs[i], r.has[i]
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
// handler sees (see runstate.Info).
func (r *run) endSteps() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stepsOver = true
	info := runstate.Info(r.status.Steps[:len(r.plan.Steps)], r.canceled)
	r.info.Store(&info)
}

// finish ends the run (see runstate.End). The outcome no longer changes
// once the steps have ended, so the span ends before watchers learn the
// run is over.
func (r *run) finish() {
	r.mu.Lock()
	o := runstate.End(r.status.Steps, r.canceled)
	r.mu.Unlock()
	r.cancelSteps()
	r.b.tel.endRun(r.span, o.Phase)
	now := r.now()
	r.update(-1, func(st *backends.RunStatus) {
		st.Phase, st.Message, st.Finished = o.Phase, o.Message, now
		r.over = true
		close(r.overCh)
	})
	if r.ownStore {
		if err := r.store.Close(); err != nil {
			r.logf(loc{-1, -1}, "artifact store: %v", err)
		}
	}
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
