package pipelinetest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/local"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

// Named is a step handle: a [pipeline.Step] or a [pipeline.Fan].
type Named interface{ Name() string }

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
// and with [Env.EnableCache] so does the cache. Artifacts of pipelines
// that name no store go to a directory of the test's, shared by the
// Env's runs (so that a cached step's artifacts stay readable), never to
// the user's cache directory.
type Env struct {
	t         testing.TB
	clock     *Clock
	cacheDir  string
	artifacts string

	mu     sync.Mutex
	stubs  map[string]task.Invoker // by task name
	faults map[string]map[int]Fault
	calls  []string // invocations in order, "step" or "step[i]"
}

// NewEnv returns an environment for t.
func NewEnv(t testing.TB) *Env {
	return &Env{t: t, clock: NewClock(Epoch), stubs: map[string]task.Invoker{}, faults: map[string]map[int]Fault{}}
}

// Clock returns the environment's virtual clock. A stub that stands for
// slow work calls Clock().Sleep(ctx, d); it returns early with an error
// if d runs past the step's timeout.
func (e *Env) Clock() *Clock { return e.clock }

// EnableCache turns on the executor's cache for the rest of the Env's
// runs, in a directory removed when the test ends. Steps whose cache
// policy is enabled then report Cached on a repeated run.
func (e *Env) EnableCache() {
	if e.cacheDir == "" {
		e.cacheDir = e.t.TempDir()
	}
}

// Stub replaces t's implementation for runs in e: every step made from a
// task named t.Name() (also each step of a FanOut and each instance of a
// ForEach) calls fn instead. fn's signature is checked by the compiler
// against t: no reflection and no run-time signature errors. Stubbing a
// container task runs fn instead of the container. A later Stub of the
// same name replaces an earlier one.
func Stub[In, Out any](e *Env, t task.Task[In, Out], fn task.Func[In, Out]) {
	if fn == nil {
		e.t.Fatalf("pipelinetest: Stub(%q) with a nil func", t.Name())
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stubs[t.Name()] = task.FuncInvoker(fn)
}

// Inject makes attempt number attempt (from 1) of step fail with f. For a
// ForEach, it applies to that attempt of every instance.
func (e *Env) Inject(step Named, attempt int, f Fault) {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := e.faults[step.Name()]
	if m == nil {
		m = map[int]Fault{}
		e.faults[step.Name()] = m
	}
	m[attempt] = f
}

// Run runs p with its parameters' defaults and returns the result. An
// invalid pipeline gives a Result whose Err holds every problem and whose
// Status is nil.
func (e *Env) Run(p *pipeline.Pipeline) *Result { return e.RunWithParams(p, nil) }

// RunWithParams runs p with parameter overrides, as -p name=value does.
func (e *Env) RunWithParams(p *pipeline.Pipeline, params map[string]string) *Result {
	e.t.Helper()
	e.mu.Lock()
	e.calls = nil
	e.mu.Unlock()
	res := &Result{t: e.t}
	plan, err := p.Plan(params)
	if err != nil {
		res.err = err
		return res
	}
	res.plan = plan
	if e.artifacts == "" {
		e.artifacts = e.t.TempDir()
	}
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
		Log:         testLog{e.t},
		Artifacts:   e.artifacts,
	})
	ctx := context.Background()
	art, err := b.Compile(ctx, plan, &backends.CompileOptions{})
	if err != nil {
		e.t.Fatalf("pipelinetest: compile %q: %v", p.Name(), err)
	}
	id, err := b.Submit(ctx, art, &backends.SubmitOptions{})
	if err != nil {
		e.t.Fatalf("pipelinetest: submit %q: %v", p.Name(), err)
	}
	st, err := b.Watch(ctx, id, &backends.WatchOptions{})
	if err != nil {
		e.t.Fatalf("pipelinetest: watch %q: %v", p.Name(), err)
	}
	res.Status = st
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
	fault := inv.e.faults[inv.step][a.Number]
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
}

// Err is nil for a run that succeeded. It holds every validation problem
// of an invalid pipeline (see pipeline.FieldErrors), or wraps
// pipeline.ErrRunFailed for a run that failed.
func (r *Result) Err() error { return r.err }

// Order lists the task invocations of the run in the order they happened,
// by step name ("train", and "train[2]" for an instance of a fan-out),
// attempts included. It is the same on every run.
func (r *Result) Order() []string { return r.order }

// Step returns the status of step s; it fails the test if the run has no
// such step.
func (r *Result) Step(s Named) *backends.StepStatus {
	r.t.Helper()
	if r.Status == nil {
		r.t.Fatalf("pipelinetest: the pipeline did not run: %v", r.err)
	}
	for _, ps := range append(append([]backends.Step(nil), r.plan.Steps...), exitOf(r.plan)...) {
		if ps.DisplayName == s.Name() {
			if st := r.Status.Step(ps.Name); st != nil {
				return st
			}
		}
	}
	r.t.Fatalf("pipelinetest: the run has no step %q", s.Name())
	return nil
}

func exitOf(p *backends.Plan) []backends.Step {
	if p.Exit == nil {
		return nil
	}
	return []backends.Step{*p.Exit}
}

// Phase returns how step s ended.
func (r *Result) Phase(s Named) backends.Phase { r.t.Helper(); return r.Step(s).Phase }

// Ran reports whether step s was attempted at least once (it may have
// failed). Cached and skipped steps did not run.
func (r *Result) Ran(s Named) bool {
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
func (r *Result) Skipped(s Named) bool { r.t.Helper(); return r.Step(s).Phase == backends.PhaseSkipped }

// Cached reports whether step s's output came from the cache.
func (r *Result) Cached(s Named) bool { r.t.Helper(); return r.Step(s).Phase == backends.PhaseCached }

// Attempts returns the attempts of step s (of a plain step; a fan-out's
// are per instance in Step(s).Instances).
func (r *Result) Attempts(s Named) []backends.Attempt { r.t.Helper(); return r.Step(s).Attempts }

// Reasons returns, for each attempt of step s, the budget its failure
// consumed ("app" or "infra"), or "" for the attempt that succeeded.
func (r *Result) Reasons(s Named) []backends.Reason {
	r.t.Helper()
	var out []backends.Reason
	for _, a := range r.Step(s).Attempts {
		out = append(out, a.Reason)
	}
	return out
}

// Output returns the output of step s; it fails the test when s has none
// (it did not succeed) or it does not decode as Out.
func Output[Out any](r *Result, s pipeline.Step[Out]) Out {
	r.t.Helper()
	return decode[Out](r, s)
}

// Outputs returns the outputs of the instances of fan-out f, in element
// order.
func Outputs[Out any](r *Result, f pipeline.Fan[Out]) []Out {
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
