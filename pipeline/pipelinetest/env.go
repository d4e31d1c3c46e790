package pipelinetest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-ml/sluice/artifact"
	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/local"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

// Named is a step handle: a [pipeline.Step], a [pipeline.Fan], or one
// instance of a fan-out ([Instance]).
type Named interface{ Name() string }

// Instance names instance i (from 0, in element order) of fan-out f, for
// [Env.Inject] (a fault in that instance only) and for the accessors of
// [Result] (that instance's status, attempts and reasons).
func Instance[Out any](f pipeline.Fan[Out], i int) Named {
	return instance{fan: f.Name(), i: i}
}

type instance struct {
	fan string
	i   int
}

func (in instance) Name() string { return fmt.Sprintf("%s[%d]", in.fan, in.i) }

// target is what a Named handle designates: a step by its display name,
// and an instance index, or -1 for the whole step.
type target struct {
	step string
	inst int
}

// badInstance reports whether n is an Instance with a negative index.
func badInstance(n Named) bool {
	in, ok := n.(instance)
	return ok && in.i < 0
}

func targetOf(n Named) target {
	if in, ok := n.(instance); ok {
		return target{in.fan, in.i}
	}
	return target{n.Name(), -1}
}

func (t target) String() string {
	if t.inst >= 0 {
		return fmt.Sprintf("%s[%d]", t.step, t.inst)
	}
	return t.step
}

// Fault is a failure injected into one attempt of a step.
type Fault int

const (
	// AppError makes the attempt fail as the task itself would: it
	// consumes the App retry budget.
	AppError Fault = iota + 1
	// Preemption makes the attempt fail as a preempted pod would: it
	// consumes the Infra retry budget.
	Preemption
	// Timeout makes the attempt run past its deadline: the virtual clock
	// advances beyond the step's timeout, which cancels the attempt and
	// fails it as timed out (App budget). A step with no timeout fails
	// with context.DeadlineExceeded instead.
	Timeout
)

func (f Fault) String() string {
	switch f {
	case AppError:
		return "application error"
	case Preemption:
		return "preemption"
	case Timeout:
		return "timeout"
	}
	return fmt.Sprintf("Fault(%d)", int(f))
}

// Env runs pipelines in process for tests, on the local executor, one
// task at a time in plan order (fan-out instances in element order), on a
// virtual clock, with typed stubs and injected faults. Create it with
// [NewEnv]; the zero value is not usable. An Env may run several
// pipelines, one after another; stubs and faults apply to all of them,
// and with [Env.EnableCache] so does the cache. All its runs share one
// in-memory artifact store (see [Env.Store]).
type Env struct {
	t        testing.TB
	clock    *Clock
	cacheDir string
	store    *artifact.Store
	runs     map[string]int // runs so far, by plan name: run ids are <plan>-<n>

	mu     sync.Mutex
	stubs  map[string]task.Invoker  // by task name
	faults map[target]map[int]Fault // by step or instance, then attempt
	fresh  []target                 // faults not yet checked against a run's pipeline
	calls  []string                 // invocations in order, "step" or "step[i]"
	// freshStubs are the task names stubbed since the last run, which
	// the next run checks against its pipeline.
	freshStubs []string
}

// NewEnv returns an environment for t, with a fresh, empty in-memory
// artifact store that is closed when the test ends.
func NewEnv(t testing.TB) *Env {
	if isNil(t) {
		misuse("NewEnv(nil): pass the test's *testing.T (or *testing.B, *testing.F)")
	}
	t.Helper()
	store, err := artifact.Open(context.Background(), "mem://pipelinetest")
	if err != nil {
		t.Fatalf("pipelinetest: %v", err)
	}
	t.Cleanup(func() { store.Close() })
	return &Env{t: t, clock: NewClock(Epoch), store: store, runs: map[string]int{}, stubs: map[string]task.Invoker{}, faults: map[target]map[int]Fault{}}
}

// Clock returns the environment's virtual clock. A stub that stands for
// slow work calls Clock().Sleep(ctx, d); it returns early with an error
// if d runs past the step's timeout.
func (e *Env) Clock() *Clock { e.usable("Clock"); return e.clock }

// EnableCache turns on the executor's cache for the rest of the Env's
// runs, in a directory removed when the test ends. Steps whose cache
// policy is enabled then report Cached on a repeated run.
func (e *Env) EnableCache() {
	e.usable("EnableCache")
	if e.cacheDir == "" {
		e.cacheDir = e.t.TempDir()
	}
}

// Stub replaces t's implementation for runs in e: every step made from a
// task named t.Name() (also each step of a FanOut and each instance of a
// ForEach) calls fn instead, and so does a task made by task.Wrap
// around t (such as the trials of an hpo.Search), inside its wrapper.
// fn's signature is checked by the compiler against t: no reflection and
// no run-time signature errors. Stubbing a container task runs fn
// instead of the container. A later Stub of the same name replaces an
// earlier one.
func Stub[In, Out any](e *Env, t task.Task[In, Out], fn task.Func[In, Out]) {
	e.usable("Stub")
	e.t.Helper()
	if t.Name() == "" {
		e.t.Fatalf("pipelinetest: Stub of a zero task.Task (it has no name); pass the task the pipeline's steps are made from")
	}
	if fn == nil {
		e.t.Fatalf("pipelinetest: Stub(%q) with a nil func", t.Name())
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stubs[t.Name()] = task.FuncInvoker(fn)
	e.freshStubs = append(e.freshStubs, t.Name())
}

// Inject makes attempt number attempt (from 1) of step fail with f. For a
// ForEach, it applies to that attempt of every instance; to fail one
// instance only, pass [Instance](fan, i). A fault for an instance wins
// over one for its whole fan-out.
//
// The next run checks the faults injected since the previous one: one
// that names a step the pipeline does not have (or an instance of a step
// that is not a ForEach, or beyond the instances the fan-out ran) fails
// the test, listing the pipeline's steps. An attempt below 1 or an
// unknown Fault fails the test at once.
func (e *Env) Inject(step Named, attempt int, f Fault) {
	e.usable("Inject")
	e.t.Helper()
	if msg := handleProblem(step); msg != "" {
		e.t.Fatalf("pipelinetest: Inject(%s): %s", f, msg)
	}
	tg := targetOf(step)
	switch {
	case attempt < 1:
		e.t.Fatalf("pipelinetest: Inject(%q, %d, %s): attempts are numbered from 1", tg, attempt, f)
	case f < AppError || f > Timeout:
		e.t.Fatalf("pipelinetest: Inject(%q, %d, %s): not a fault; use AppError, Preemption or Timeout", tg, attempt, f)
	case badInstance(step):
		e.t.Fatalf("pipelinetest: Inject(%q): instances are numbered from 0", step.Name())
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	m := e.faults[tg]
	if m == nil {
		m = map[int]Fault{}
		e.faults[tg] = m
	}
	m[attempt] = f
	e.fresh = append(e.fresh, tg)
}

// checkFaults fails the test when a fault injected since the last run
// names no step (or no fan-out) of plan.
func (e *Env) checkFaults(plan *backends.Plan) []target {
	e.t.Helper()
	e.mu.Lock()
	fresh := e.fresh
	e.fresh = nil
	e.mu.Unlock()
	for _, tg := range fresh {
		s := planStep(plan, tg.step)
		switch {
		case s == nil:
			e.t.Fatalf("pipelinetest: Inject(%q): pipeline %q has no step %q; its steps: %s", tg, plan.DisplayName, tg.step, strings.Join(stepNames(plan), ", "))
		case tg.inst >= 0 && s.ForEach == nil:
			e.t.Fatalf("pipelinetest: Inject(%q): step %q of pipeline %q is not a ForEach fan-out; its fan-outs: %s", tg, tg.step, plan.DisplayName, strings.Join(fanNames(plan), ", "))
		}
	}
	return fresh
}

// stubTarget reports whether a stub of the task named name applies to
// step s: s is made from that task, or wraps it (task.Wrapper).
func stubTarget(s *backends.Step, name string) bool {
	if s.Task.Name == name {
		return true
	}
	w, ok := s.Invoke.(task.Wrapper)
	return ok && w.Wrapped() == name
}

// checkStubs fails the test when a task stubbed since the last run is the
// task of no step of plan.
func (e *Env) checkStubs(plan *backends.Plan) {
	e.t.Helper()
	e.mu.Lock()
	fresh := e.freshStubs
	e.freshStubs = nil
	e.mu.Unlock()
	for _, name := range fresh {
		if !slices.ContainsFunc(plan.AllSteps(), func(s *backends.Step) bool { return stubTarget(s, name) }) {
			e.t.Fatalf("pipelinetest: Stub(%q): no step of pipeline %q is made from task %q; its steps: %s", name, plan.DisplayName, name, stepList(plan))
		}
	}
}

// checkInstances fails the test when an instance fault of fresh names an
// instance beyond those its fan-out ran.
func (e *Env) checkInstances(plan *backends.Plan, st *backends.RunStatus, fresh []target) {
	e.t.Helper()
	for _, tg := range fresh {
		if tg.inst < 0 {
			continue
		}
		ss := st.Step(planStep(plan, tg.step).Name)
		if ss == nil || ss.Phase == backends.PhaseSkipped || ss.Phase == backends.PhaseCanceled {
			continue
		}
		if tg.inst >= len(ss.Instances) {
			e.t.Fatalf("pipelinetest: Inject(%q): fan-out %q ran %d instances (0 to %d)", tg, tg.step, len(ss.Instances), len(ss.Instances)-1)
		}
	}
}

// planStep returns the step of plan (exit handler included) whose display
// name is name, or nil.
func planStep(plan *backends.Plan, name string) *backends.Step {
	for _, s := range plan.AllSteps() {
		if s.DisplayName == name {
			return s
		}
	}
	return nil
}

// stepNames lists the display names of plan's steps, exit handler last.
func stepNames(plan *backends.Plan) []string {
	var names []string
	for _, s := range plan.AllSteps() {
		names = append(names, s.DisplayName)
	}
	return names
}

// fanNames lists the display names of plan's ForEach steps, or "none".
func fanNames(plan *backends.Plan) []string {
	var names []string
	for _, s := range plan.Steps {
		if s.ForEach != nil {
			names = append(names, s.DisplayName)
		}
	}
	if len(names) == 0 {
		return []string{"none"}
	}
	return names
}

// Run runs p with its parameters' defaults and returns the result. An
// invalid pipeline gives a Result whose Err holds every problem and whose
// Status is nil.
// The runs of a pipeline in an Env have the ids <pipeline>-1,
// <pipeline>-2, … in order (Result.Status.RunID).
func (e *Env) Run(p *pipeline.Pipeline) *Result {
	e.usable("Run")
	e.t.Helper()
	return e.RunWithParams(p, nil)
}

// RunWithParams runs p with parameter overrides, as -p name=value does.
func (e *Env) RunWithParams(p *pipeline.Pipeline, params map[string]string) *Result {
	e.usable("RunWithParams")
	e.t.Helper()
	return e.RunWith(p, RunOptions{Params: params})
}

// RunWith runs p with the parameters, run id and times of opts.
func (e *Env) RunWith(p *pipeline.Pipeline, opts RunOptions) *Result {
	e.usable("RunWith")
	e.t.Helper()
	if p == nil {
		e.t.Fatalf("pipelinetest: Run of a nil *pipeline.Pipeline; pass the pipeline to run, made with pipeline.New")
	}
	e.mu.Lock()
	e.calls = nil
	e.mu.Unlock()
	res := &Result{t: e.t, store: e.store}
	plan, err := p.Plan(opts.Params)
	if err != nil {
		res.err = err
		return res
	}
	res.plan = plan
	e.checkStubs(plan)
	fresh := e.checkFaults(plan)
	for i := range plan.Steps {
		e.wrap(&plan.Steps[i])
	}
	if plan.Exit != nil {
		e.wrap(plan.Exit)
	}
	b := local.New(&local.Options{
		Parallelism: 1,
		Sequential:  true,
		Clock:       e.clock,
		CacheDir:    e.cacheDir,
		Runner:      noRunner{},
		Store:       e.store,
		Log:         testLog{e.t},
	})
	ctx := context.Background()
	art, err := b.Compile(ctx, plan, &backends.CompileOptions{})
	if err != nil {
		e.t.Fatalf("pipelinetest: compile %q: %v", p.Name(), err)
	}
	// Each run has its own id, <plan>-<n>, so that runs of one pipeline
	// in the Env keep their own artifacts in the shared store.
	runID := opts.RunID
	if runID == "" {
		e.mu.Lock()
		e.runs[plan.Name]++
		runID = fmt.Sprintf("%s-%d", plan.Name, e.runs[plan.Name])
		e.mu.Unlock()
	}
	if !opts.Start.IsZero() {
		e.clock.set(opts.Start)
	}
	id, err := b.Submit(ctx, art, &backends.SubmitOptions{RunID: runID, Scheduled: opts.Scheduled})
	if err != nil {
		e.t.Fatalf("pipelinetest: submit %q: %v", p.Name(), err)
	}
	st, err := b.Watch(ctx, id, &backends.WatchOptions{})
	if err != nil {
		e.t.Fatalf("pipelinetest: watch %q: %v", p.Name(), err)
	}
	res.Status = st
	e.checkInstances(plan, st, fresh)
	if st.Phase != backends.PhaseSucceeded {
		res.err = fmt.Errorf("%w: %s", pipeline.ErrRunFailed, firstNonEmpty(st.Message, string(st.Phase)))
	}
	e.mu.Lock()
	res.order = e.calls
	e.mu.Unlock()
	return res
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// wrap routes step s through the Env: its stub (if any), its faults, and
// the call log.
func (e *Env) wrap(s *backends.Step) {
	e.mu.Lock()
	inner := s.Invoke
	if stub, ok := e.stubs[s.Task.Name]; ok {
		inner = stub
	} else if w, ok := inner.(task.Wrapper); ok {
		if stub, ok := e.stubs[w.Wrapped()]; ok {
			inner = w.Rewrap(stub) // e.g. an hpo trial: the stub runs inside the wrapper
		}
	}
	e.mu.Unlock()
	s.Invoke = &invoker{e: e, step: s.DisplayName, timeout: s.Task.Timeout, inner: inner}
}

type invoker struct {
	e       *Env
	step    string
	timeout time.Duration
	inner   task.Invoker
}

func (inv *invoker) Invoke(ctx context.Context, input []byte) ([]byte, error) {
	a, _ := task.AttemptFrom(ctx)
	name := inv.step
	if a.Instance >= 0 {
		name = fmt.Sprintf("%s[%d]", inv.step, a.Instance)
	}
	inv.e.mu.Lock()
	inv.e.calls = append(inv.e.calls, name)
	fault, ok := inv.e.faults[target{inv.step, a.Instance}][a.Number]
	if !ok {
		fault = inv.e.faults[target{inv.step, -1}][a.Number]
	}
	inv.e.mu.Unlock()

	switch fault {
	case AppError:
		return nil, fmt.Errorf("pipelinetest: injected failure of %s, attempt %d", name, a.Number)
	case Preemption:
		return nil, fmt.Errorf("pipelinetest: injected preemption of %s, attempt %d: %w", name, a.Number, task.ErrInfrastructure)
	case Timeout:
		if inv.timeout > 0 {
			_ = inv.e.clock.Sleep(ctx, inv.timeout+time.Nanosecond)
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("pipelinetest: injected timeout of %s, attempt %d: %w", name, a.Number, context.DeadlineExceeded)
	}
	if inv.inner == nil {
		return nil, fmt.Errorf("pipelinetest: container task of step %q has no stub; add one with pipelinetest.Stub", inv.step)
	}
	return inv.inner.Invoke(ctx, input)
}

// noRunner refuses to start containers: in tests, container tasks run
// their stubs (every step has an Invoker once wrapped, so it is never
// called).
type noRunner struct{}

func (noRunner) Run(_ context.Context, c local.Container) (map[string][]byte, error) {
	return nil, fmt.Errorf("pipelinetest: step %q would start a container; stub its task", c.Step)
}

// testLog sends executor log lines to t.Log.
type testLog struct{ t testing.TB }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Result is the outcome of one run in an [Env].
type Result struct {
	// Status is the run's final status; nil when the pipeline was invalid.
	Status *backends.RunStatus

	t     testing.TB
	err   error
	plan  *backends.Plan
	order []string
	store *artifact.Store
}

// Err is nil for a run that succeeded. It holds every validation problem
// of an invalid pipeline (see pipeline.FieldErrors), or wraps
// pipeline.ErrRunFailed for a run that failed.
func (r *Result) Err() error { r.usable("Err"); return r.err }

// Order lists the task invocations of the run in the order they happened,
// by step name ("train", and "train[2]" for an instance of a fan-out),
// attempts included. It is the same on every run.
func (r *Result) Order() []string { r.usable("Order"); return r.order }

// Step returns the status of step s, or of one fan-out instance
// ([Instance]); it fails the test, listing the run's steps, if the run
// has no such step or instance.
func (r *Result) Step(s Named) *backends.StepStatus {
	r.usable("Step")
	r.t.Helper()
	if msg := handleProblem(s); msg != "" {
		r.t.Fatalf("pipelinetest: %s; the run's steps: %s", msg, stepList(r.plan))
	}
	if r.Status == nil {
		r.t.Fatalf("pipelinetest: the pipeline did not run: %v", r.err)
	}
	if badInstance(s) {
		r.t.Fatalf("pipelinetest: %q: instances are numbered from 0", s.Name())
	}
	tg := targetOf(s)
	ps := planStep(r.plan, tg.step)
	var st *backends.StepStatus
	if ps != nil {
		st = r.Status.Step(ps.Name)
	}
	if st == nil {
		r.t.Fatalf("pipelinetest: the run of %q has no step %q; its steps: %s", r.plan.DisplayName, tg, strings.Join(stepNames(r.plan), ", "))
		return nil
	}
	if tg.inst < 0 {
		return st
	}
	if ps.ForEach == nil {
		r.t.Fatalf("pipelinetest: step %q is not a ForEach fan-out, so it has no instance %d; the run's fan-outs: %s", tg.step, tg.inst, strings.Join(fanNames(r.plan), ", "))
	}
	if tg.inst >= len(st.Instances) {
		r.t.Fatalf("pipelinetest: fan-out %q ran %d instances, so none is %q (phase %s)", tg.step, len(st.Instances), tg, st.Phase)
	}
	return &st.Instances[tg.inst]
}

// attemptsOf returns the attempts of a plain step or of one instance; it
// fails the test for a whole fan-out, whose attempts are per instance.
func (r *Result) attemptsOf(s Named, what string) []backends.Attempt {
	r.usable(what)
	r.t.Helper()
	st := r.Step(s)
	if tg := targetOf(s); tg.inst < 0 && planStep(r.plan, tg.step).ForEach != nil {
		r.t.Fatalf("pipelinetest: %s(%q): a fan-out's attempts are per instance; ask for one with pipelinetest.Instance(fan, i)", what, s.Name())
	}
	return st.Attempts
}

// Phase returns how step s ended.
func (r *Result) Phase(s Named) backends.Phase {
	r.usable("Phase")
	r.t.Helper()
	return r.Step(s).Phase
}

// Ran reports whether step s was attempted at least once (it may have
// failed). Cached and skipped steps did not run.
func (r *Result) Ran(s Named) bool {
	r.usable("Ran")
	r.t.Helper()
	st := r.Step(s)
	if len(st.Attempts) > 0 {
		return true
	}
	for _, in := range st.Instances {
		if len(in.Attempts) > 0 {
			return true
		}
	}
	return false
}

// Skipped reports whether step s was skipped: its condition was false, or
// a step it depends on was skipped or failed.
func (r *Result) Skipped(s Named) bool {
	r.usable("Skipped")
	r.t.Helper()
	return r.Step(s).Phase == backends.PhaseSkipped
}

// Cached reports whether step s's output came from the cache.
func (r *Result) Cached(s Named) bool {
	r.usable("Cached")
	r.t.Helper()
	return r.Step(s).Phase == backends.PhaseCached
}

// Attempts returns the attempts of step s: a plain step, or one instance
// of a fan-out ([Instance]). It fails the test for a step the run does
// not have, and for a whole fan-out, whose attempts are per instance.
func (r *Result) Attempts(s Named) []backends.Attempt {
	r.usable("Attempts")
	r.t.Helper()
	return r.attemptsOf(s, "Attempts")
}

// Reasons returns, for each attempt of step s (a plain step, or one
// instance of a fan-out: [Instance]), the budget its failure consumed
// ("app" or "infra"), or "" for the attempt that succeeded. Like
// [Result.Attempts], it fails the test for a step the run does not have
// and for a whole fan-out.
func (r *Result) Reasons(s Named) []backends.Reason {
	r.usable("Reasons")
	r.t.Helper()
	var out []backends.Reason
	for _, a := range r.attemptsOf(s, "Reasons") {
		out = append(out, a.Reason)
	}
	return out
}

// Output returns the output of step s; it fails the test when s has none
// (it did not succeed) or it does not decode as Out.
func Output[Out any](r *Result, s pipeline.Step[Out]) Out {
	r.usable("Output")
	r.t.Helper()
	return decode[Out](r, s)
}

// Outputs returns the outputs of the instances of fan-out f, in element
// order.
func Outputs[Out any](r *Result, f pipeline.Fan[Out]) []Out {
	r.usable("Outputs")
	r.t.Helper()
	return decode[[]Out](r, f)
}

func decode[T any](r *Result, s Named) T {
	r.t.Helper()
	var v T
	st := r.Step(s)
	if len(st.Output) == 0 {
		r.t.Fatalf("pipelinetest: step %q has no output (phase %s: %s)", s.Name(), st.Phase, st.Message)
	}
	if err := json.Unmarshal(st.Output, &v); err != nil {
		r.t.Fatalf("pipelinetest: output of step %q: %v", s.Name(), err)
	}
	return v
}
