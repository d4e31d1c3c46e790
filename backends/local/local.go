package local

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"github.com/sluice-ml/sluice/artifact"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/resources"
)

// Options configures a [Backend]. The zero value (or nil) runs at most
// GOMAXPROCS tasks at once, with unlimited resources, host processes for
// container tasks, no cache and the real clock.
type Options struct {
	// Parallelism caps how many tasks (steps and fan-out instances) run at
	// once, across all runs of the Backend; zero or less means
	// runtime.GOMAXPROCS(0).
	Parallelism int
	// Pools, if set, is the capacity of node pools by name: a step whose
	// profile names a listed pool (resources.Profile.NodePool) draws its
	// CPU, memory, GPUs and MIG slices from that pool instead of from
	// Capacity, so a local run can mirror a cluster's pools. Slots
	// (Parallelism) are shared by all. Every name must be a pool the
	// pipeline declares (pipeline.Options.NodePools); Compile rejects
	// one it does not, which would otherwise never apply.
	Pools map[string]Capacity
	// Sequential runs one task at a time in plan order, fan-out instances
	// in element order, so that the order of a run's side effects is the
	// same every time. Package pipelinetest uses it.
	Sequential bool
	// Capacity, if set, is what the machine offers; a task waits until its
	// resource requests fit next to the running ones (see "Resources" in
	// the package doc). Nil means unlimited.
	Capacity *Capacity
	// Runner runs container tasks; nil means [HostRunner].
	Runner Runner
	// CacheDir, if set, is the directory of the on-disk cache used by
	// steps whose cache policy is enabled (see "Caching" in the package
	// doc); empty disables caching.
	CacheDir string
	// Artifacts is the root URL of the artifact store of runs whose plan
	// names none (pipeline.Options.Artifacts, the -artifacts flag); empty
	// means artifact.DefaultRoot(), a directory under the user's cache
	// directory. The store is reached only when a task first reads or
	// writes an artifact. Package pipelinetest uses Store instead.
	Artifacts string
	// Store, if set, is the artifact store of every run, whatever its
	// plan or Artifacts name: the caller opened it, shares it with its
	// runs, and closes it after they end; runs never close it. Package
	// pipelinetest uses it so that a test reads and seeds, in memory, the
	// very store its runs write to.
	Store *artifact.Store
	// DryRun makes Submit record what would run without running anything
	// (see "Dry run" in the package doc).
	DryRun bool
	// Clock times backoff delays, timeouts and status timestamps; nil
	// means the real clock. Tests pass a fake so nothing really sleeps.
	Clock Clock
	// TracerProvider provides the tracer for run and attempt spans; nil
	// means otel.GetTracerProvider().
	TracerProvider trace.TracerProvider
	// Log receives container output and progress lines, each prefixed
	// with "[step] "; nil discards them. Writes are serialized, one line
	// per Write.
	Log io.Writer
}

// Capacity is what the machine running a local Backend offers to tasks.
// A task that asks for more than the whole Capacity can never run, which
// Compile reports as an error wrapping errors.ErrUnsupported.
type Capacity struct {
	// CPU and Memory are quantities in Kubernetes notation ("8",
	// "500m", "32Gi"); empty means not limited.
	CPU, Memory string
	// GPUs is the number of whole GPUs (nvidia.com/gpu); zero means
	// none.
	GPUs int
	// MIG is the number of slices of each MIG profile, for example
	// {"3g.40gb": 2}; a profile not listed has none.
	MIG map[string]int
}

// Clock tells the time, waits and sets deadlines. The real clock is used
// unless [Options.Clock] is set; a virtual clock (pipelinetest has one)
// makes backoff and timeouts instant and deterministic.
type Clock interface {
	Now() time.Time
	// Sleep waits d, or until ctx is done and then returns ctx.Err(). The
	// executor sleeps between attempts (backoff).
	Sleep(ctx context.Context, d time.Duration) error
	// AfterFunc calls f once d has passed and returns a function that
	// stops the timer, reporting whether it did so before f was called,
	// as time.AfterFunc does. The executor sets attempt deadlines with it.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (realClock) AfterFunc(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }

// Backend runs plans in process. Create it with [New]; the zero value is
// not usable. A Backend is safe for concurrent use. It keeps the status of
// every run it started, so that Watch works after a run ended.
type Backend struct {
	opts   Options // with defaults filled in
	log    io.Writer
	tel    telemetry
	pool   *pool
	capErr error // a malformed Options.Capacity, reported by Compile and Submit

	mu   sync.Mutex
	runs map[string]*run
	seq  int // numbers runs, for ids and scheduling order
}

var (
	_ backends.Backend   = (*Backend)(nil)
	_ backends.Submitter = (*Backend)(nil)
	_ backends.Watcher   = (*Backend)(nil)
	_ backends.Canceler  = (*Backend)(nil)
	_ backends.Namer     = (*Backend)(nil)

	_ backends.MachineConfigurer = (*Backend)(nil)
)

// New returns a local Backend; opts may be nil.
func New(opts *Options) *Backend {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Parallelism <= 0 {
		o.Parallelism = runtime.GOMAXPROCS(0)
	}
	if o.Runner == nil {
		o.Runner = HostRunner{}
	}
	if o.Clock == nil {
		o.Clock = realClock{}
	}
	b := &Backend{
		opts: o,
		log:  newSyncWriter(o.Log),
		tel:  newTelemetry(o.TracerProvider),
		runs: map[string]*run{},
	}
	limits, err := o.Capacity.limits()
	if err == nil && len(o.Pools) > 0 {
		var pl amounts
		if pl, err = poolLimits(o.Pools); err == nil {
			if limits == nil {
				limits = amounts{}
			}
			maps.Copy(limits, pl)
		}
	}
	b.capErr = err
	b.pool = newPool(o.Parallelism, limits, o.Capacity != nil)
	return b
}

// WithMachineConfig returns a new Backend with b's Options changed by
// what the program entrypoint's run flags ask (see
// [backends.MachineConfigurer]): c.CacheDir replaces Options.CacheDir;
// c.DefaultCacheDir fills it in when it is empty; c.NoCache empties it;
// c.Log fills in Options.Log when that is nil. The new Backend shares no
// runs with b. b is unchanged.
func (b *Backend) WithMachineConfig(c backends.MachineConfig) backends.Backend {
	o := b.opts
	switch {
	case c.NoCache:
		o.CacheDir = ""
	case c.CacheDir != "":
		o.CacheDir = c.CacheDir
	case o.CacheDir == "":
		o.CacheDir = c.DefaultCacheDir
	}
	if o.Log == nil {
		o.Log = c.Log
	}
	return New(&o)
}

// Name returns "local", the name the program entrypoint selects it by.
func (b *Backend) Name() string { return "local" }

// Compile checks that every step of plan fits Options.Capacity and returns
// the run record: one YAML document describing what a run would do (see
// [Record]). It runs nothing.
func (b *Backend) Compile(ctx context.Context, plan *backends.Plan, opts *backends.CompileOptions) (backends.Artifact, error) {
	if err := b.check(plan); err != nil {
		return nil, err
	}
	a := &compiled{plan: plan, checked: b}
	emit := opts != nil && opts.BeforeEmit != nil
	if emit {
		a.rec() // as the plan is before BeforeEmit
		if err := opts.BeforeEmit(a.As); err != nil {
			return nil, err
		}
	}
	// Render now only if it may fail or BeforeEmit may have kept the
	// record; otherwise on first use (see compiled).
	if emit || !planRenders(plan) {
		if err := a.render(); err != nil {
			return nil, err
		}
	}
	a.compiled.Store(true)
	return a, nil
}

// check reports a malformed Capacity and steps that can never fit it.
func (b *Backend) check(plan *backends.Plan) error {
	if b.capErr != nil {
		return b.capErr
	}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(b.opts.Pools)) {
		if !slices.ContainsFunc(plan.NodePools, func(np resources.NodePool) bool { return np.Name == name }) {
			var declared []string
			for _, np := range plan.NodePools {
				declared = append(declared, np.Name)
			}
			errs = append(errs, fmt.Errorf("local: Options.Pools gives the capacity of pool %q, which pipeline %q does not declare (it declares %v): fix the name, or declare the pool in pipeline.Options.NodePools", name, plan.DisplayName, declared))
		}
	}
	steps := plan.AllSteps()
	chunks := numChunks(len(steps))
	found := make([][]error, chunks)
	forChunks(len(steps), chunks, func(k, lo, hi int) {
		for _, s := range steps[lo:hi] {
			if err := b.pool.fitsAtAll(s.Name, demandOf(s, b.opts.Pools)); err != nil {
				found[k] = append(found[k], err)
			}
		}
	})
	for _, e := range found {
		errs = append(errs, e...)
	}
	return errors.Join(errs...)
}

// Submit starts a run of a and returns its id at once. a must hold a
// *backends.Plan (see "As"); any local artifact does. The run outlives
// ctx: only its values (such as the trace context) are kept. With
// Options.DryRun the run is complete when Submit returns.
func (b *Backend) Submit(ctx context.Context, a backends.Artifact, opts *backends.SubmitOptions) (string, error) {
	var plan *backends.Plan
	checked := false
	if c, ok := a.(*compiled); ok && c != nil {
		plan = c.plan // without making its record (see compiled)
		checked = c.checked == b
	} else if a == nil || !a.As(&plan) || plan == nil {
		return "", errors.New("local: the artifact holds no plan; compile it with a local backend")
	}
	if !checked {
		if err := b.check(plan); err != nil {
			return "", err
		}
	}
	var want string
	if opts != nil {
		want = opts.RunID
	}
	store, own := b.opts.Store, false
	if store == nil {
		var err error
		store, err = artifact.OpenLazy(cmp.Or(plan.Artifacts, b.opts.Artifacts, artifact.DefaultRoot()))
		if err != nil {
			return "", fmt.Errorf("local: %w", err)
		}
		own = true
	}
	r, err := b.start(ctx, plan, want, store)
	if err != nil {
		if own {
			store.Close()
		}
		return "", err
	}
	r.ownStore = own
	if opts != nil {
		r.meta.Scheduled = opts.Scheduled
	}
	if b.opts.DryRun {
		r.dryRun()
	} else {
		go r.execute()
	}
	return r.id, nil
}

// start registers a new run under the wanted id, or "<plan>-<n>".
// A generated id is also new to the store (a file store or a bucket; an
// in-memory store is the process's own), so that a run never overwrites
// the artifacts of an earlier process's run. Two processes starting runs
// of one pipeline at the same moment can still pick the same id: give
// concurrent runs ids of their own (-run-id).
func (b *Backend) start(ctx context.Context, plan *backends.Plan, want string, store *artifact.Store) (*run, error) {
	// A bucket's runs are listed once, before the lock: it is a call over
	// the network. A store that cannot be listed fails the run's first
	// artifact with a clearer error than this would.
	var taken map[string]bool
	if _, file := store.LocalDir(); want == "" && !file && store.Shared() {
		if runs, err := store.Runs(ctx, plan.Name); err == nil {
			taken = make(map[string]bool, len(runs))
			for _, r := range runs {
				taken[r] = true
			}
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	id := want
	if id == "" {
		dir, _ := store.LocalDir()
		for n := b.seq; id == "" || b.runs[id] != nil || usedIn(dir, plan.Name, id) || taken[id]; n++ {
			id = fmt.Sprintf("%s-%d", plan.Name, n)
		}
	} else if old := b.runs[id]; old != nil && !old.isOver() {
		return nil, fmt.Errorf("local: run %q is already running", id)
	}
	r := newRun(ctx, b, id, b.seq, plan)
	r.store = store
	b.runs[id] = r
	return r, nil
}

func (b *Backend) lookup(runID string) (*run, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.runs[runID]
	if !ok {
		return nil, fmt.Errorf("local: unknown run %q", runID)
	}
	return r, nil
}

// Watch blocks until the run ends or ctx is done, and returns the last
// status, the caller's own copy; when ctx ends first the error is
// ctx.Err(). opts.Progress, if set, is called from the calling goroutine
// with immutable snapshots of the status (see backends.WatchOptions): the
// first at once, then one each time the status changed since the last,
// and the last status, that of the run's end, always. The changes of a
// run of 1024 steps or more are coalesced at the run's own pace, not the
// clock's: after a snapshot, the next waits until the run made 64 times as
// many changes as it made while that one was copied and reported (so that
// reporting takes about 1/65 of the run's time however fast it changes,
// and none waits when none came meanwhile), or until the run made no
// change for 100 ms (so that a change is reported when the run goes
// quiet).
func (b *Backend) Watch(ctx context.Context, runID string, opts *backends.WatchOptions) (*backends.RunStatus, error) {
	r, err := b.lookup(runID)
	if err != nil {
		return nil, err
	}
	var progress func(*backends.RunStatus)
	if opts != nil {
		progress = opts.Progress
	}
	if progress == nil {
		// Wait for the end only, not for every change.
		select {
		case <-r.overCh:
		case <-ctx.Done():
			select {
			case <-r.overCh:
			default:
				return r.current(), ctx.Err()
			}
		}
		return r.current(), nil
	}
	return r.watch(ctx, progress)
}

// Cancel stops the run: running steps have their context canceled (host
// processes are killed), steps not started yet end Canceled, then the exit
// handler runs and the run ends Canceled. Cancel returns at once; use Watch
// to wait for the end. Canceling a run whose steps are all done (its exit
// handler may still be running) changes nothing.
func (b *Backend) Cancel(ctx context.Context, runID string) error {
	r, err := b.lookup(runID)
	if err != nil {
		return err
	}
	r.cancel()
	return nil
}

// syncWriter serializes writes to w.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func newSyncWriter(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return &syncWriter{w: w}
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// usedIn reports whether the file store at dir holds artifacts of run id
// of pipeline; always false for other stores (dir "").
func usedIn(dir, pipeline, id string) bool {
	if dir == "" {
		return false
	}
	_, err := os.Stat(filepath.Join(dir, pipeline, id))
	return err == nil
}
