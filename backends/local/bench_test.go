package local_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/local"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

// Identifiers in this file start with "bench" because package local_test
// is shared with other test files.

// benchGraph is a DAG over n tasks: deps[i] are the earlier tasks task i
// waits for (at most 3, distinct, each < i) and ms[i] how long it sleeps,
// in milliseconds (zero: a no-op).
type benchGraph struct {
	deps [][]int32
	ms   []int
}

// newWideGraph is width roots followed by layers of width tasks; each task
// of a layer waits for 1–3 random tasks, mostly of the layer just before
// it and sometimes of any earlier layer.
func newWideGraph(n, width int) benchGraph {
	r := rand.New(rand.NewPCG(7, uint64(n)))
	g := benchGraph{deps: make([][]int32, n), ms: make([]int, n)}
	for i := width; i < n; i++ {
		layer := i / width
		k := 1 + r.IntN(3)
		for len(g.deps[i]) < k {
			lo, hi := (layer-1)*width, layer*width // the previous layer
			if r.IntN(4) == 0 {
				lo = 0 // any earlier layer
			}
			if j := int32(lo + r.IntN(hi-lo)); !slices.Contains(g.deps[i], j) {
				g.deps[i] = append(g.deps[i], j)
			}
		}
	}
	return g
}

// newSleepGraph is n tasks sleeping 1–5 ms; after a few roots each waits
// for 1–3 of the 20 tasks before it, which makes a deep critical path with
// some parallelism beside it.
func newSleepGraph(n int) benchGraph {
	r := rand.New(rand.NewPCG(11, uint64(n)))
	g := benchGraph{deps: make([][]int32, n), ms: make([]int, n)}
	for i := range n {
		g.ms[i] = 1 + r.IntN(5)
		if i < 4 {
			continue
		}
		lo := max(0, i-20)
		k := min(i-lo, 1+r.IntN(3))
		for len(g.deps[i]) < k {
			if j := int32(lo + r.IntN(i-lo)); !slices.Contains(g.deps[i], j) {
				g.deps[i] = append(g.deps[i], j)
			}
		}
	}
	return g
}

// criticalPath is the length of the longest chain of planned sleeps.
func (g benchGraph) criticalPath() time.Duration {
	return g.longest(func(i int) time.Duration { return time.Duration(g.ms[i]) * time.Millisecond })
}

// longest is the length of the longest chain of tasks taking d(i) each.
func (g benchGraph) longest(d func(i int) time.Duration) time.Duration {
	finish := make([]time.Duration, len(g.deps))
	var longest time.Duration
	for i, deps := range g.deps {
		var start time.Duration
		for _, j := range deps {
			start = max(start, finish[j])
		}
		finish[i] = start + d(i)
		longest = max(longest, finish[i])
	}
	return longest
}

type benchIn struct {
	ID int `json:"id"`
	MS int `json:"ms,omitempty"`
}

type benchOut struct {
	OK bool `json:"ok"`
}

// benchSlept, while BenchmarkMakespan runs, holds how long each task of
// its graph really slept in the last run, in nanoseconds.
var benchSlept []atomic.Int64

// benchWork is every benchmark task: it sleeps in.MS milliseconds (none
// for the wide DAG) and returns a small output.
func benchWork(ctx context.Context, in benchIn) (benchOut, error) {
	if in.MS > 0 {
		start := time.Now()
		t := time.NewTimer(time.Duration(in.MS) * time.Millisecond)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return benchOut{}, ctx.Err()
		}
		if in.ID < len(benchSlept) {
			benchSlept[in.ID].Store(int64(time.Since(start)))
		}
	}
	return benchOut{OK: true}, nil
}

// plan builds the graph as a pipeline, dependencies as After (so every
// input is the same small constant JSON), and lowers it. It also returns,
// for each plan step, the plan indices of its dependencies.
func (g benchGraph) plan(b *testing.B) (*backends.Plan, [][]int) {
	b.Helper()
	p := pipeline.New("bench", nil)
	work := task.New("task", benchWork)
	steps := make([]pipeline.Step[benchOut], len(g.deps))
	for i, deps := range g.deps {
		steps[i] = pipeline.Add(p, work.WithName(fmt.Sprintf("t%06d", i)), benchIn{ID: i, MS: g.ms[i]})
		for _, d := range deps {
			steps[i].After(steps[d])
		}
	}
	plan, err := p.Plan(nil)
	if err != nil {
		b.Fatal(err)
	}
	if len(plan.Steps) != len(g.deps) {
		b.Fatalf("plan has %d steps, want %d", len(plan.Steps), len(g.deps))
	}
	index := make(map[string]int, len(plan.Steps))
	for i, s := range plan.Steps {
		index[s.Name] = i
	}
	deps := make([][]int, len(plan.Steps))
	for i, s := range plan.Steps {
		for _, d := range s.DependsOn {
			deps[i] = append(deps[i], index[d])
		}
	}
	return plan, deps
}

// runExecutor compiles, submits and watches plan on a new local Backend,
// with progress as the Progress callback if not nil.
func runExecutor(b *testing.B, plan *backends.Plan, parallelism int, progress func(*backends.RunStatus)) {
	ctx := context.Background()
	be := local.New(&local.Options{Parallelism: parallelism})
	a, err := be.Compile(ctx, plan, nil)
	if err != nil {
		b.Fatal(err)
	}
	id, err := be.Submit(ctx, a, nil)
	if err != nil {
		b.Fatal(err)
	}
	st, err := be.Watch(ctx, id, &backends.WatchOptions{Progress: progress})
	if err != nil {
		b.Fatal(err)
	}
	if st.Phase != backends.PhaseSucceeded || len(st.Steps) != len(plan.Steps) {
		b.Fatalf("run ended %s with %d steps: %s", st.Phase, len(st.Steps), st.Message)
	}
}

// runBaseline is the floor: a goroutine per task that waits for its
// dependencies' channels, calls the step's Invoker with its input (the
// template, which has no refs) and closes its own channel.
func runBaseline(b *testing.B, plan *backends.Plan, deps [][]int) {
	ctx := context.Background()
	done := make([]chan struct{}, len(plan.Steps))
	for i := range done {
		done[i] = make(chan struct{})
	}
	var wg sync.WaitGroup
	var failed sync.Once
	for i := range plan.Steps {
		wg.Go(func() {
			defer close(done[i])
			for _, d := range deps[i] {
				<-done[d]
			}
			s := &plan.Steps[i]
			if _, err := s.Invoke.Invoke(ctx, s.Input.Template); err != nil {
				failed.Do(func() { b.Error(err) })
			}
		})
	}
	wg.Wait()
}

const (
	benchWideTasks = 100_000
	benchWideWidth = 1_000
)

// BenchmarkWideDAG runs 100 000 no-op Go tasks in 100 layers of 1 000 on
// the executor (Compile, Submit and Watch on a new Backend with
// Parallelism GOMAXPROCS) and on the bare goroutine-per-task baseline, the
// floor; ratio runs both once per iteration and reports executor time over
// baseline time; executor-progress is executor with a Progress callback
// (reporting the calls per run), and progress-ratio reports its time over
// the floor's as ratio does, as x-floor. The plan is built outside the
// timed region.
func BenchmarkWideDAG(b *testing.B) {
	plan, deps := newWideGraph(benchWideTasks, benchWideWidth).plan(b)
	for _, s := range plan.Steps {
		if len(s.Input.Refs) > 0 {
			b.Fatalf("step %s has refs in its input", s.Name)
		}
	}
	n := float64(len(plan.Steps))
	par := runtime.GOMAXPROCS(0)
	perTask := func(b *testing.B, d time.Duration, iters int) {
		b.ReportMetric(float64(d.Nanoseconds())/n/float64(iters), "ns/task")
	}

	b.Run("executor", func(b *testing.B) {
		b.ReportAllocs()
		iters := 0
		for b.Loop() {
			runExecutor(b, plan, par, nil)
			iters++
		}
		perTask(b, b.Elapsed(), iters)
	})
	b.Run("baseline", func(b *testing.B) {
		b.ReportAllocs()
		iters := 0
		for b.Loop() {
			runBaseline(b, plan, deps)
			iters++
		}
		perTask(b, b.Elapsed(), iters)
	})
	// timed runs f from a collected heap, so that neither side of a ratio
	// pays for the other's garbage, and returns how long it took.
	timed := func(b *testing.B, f func()) time.Duration {
		b.StopTimer()
		runtime.GC()
		b.StartTimer()
		start := time.Now()
		f()
		return time.Since(start)
	}
	b.Run("ratio", func(b *testing.B) {
		var exec, base time.Duration
		for b.Loop() {
			exec += timed(b, func() { runExecutor(b, plan, par, nil) })
			base += timed(b, func() { runBaseline(b, plan, deps) })
		}
		b.ReportMetric(float64(exec)/float64(base), "executor/baseline")
	})
	b.Run("executor-progress", func(b *testing.B) {
		b.ReportAllocs()
		iters, calls := 0, 0
		for b.Loop() {
			runExecutor(b, plan, par, func(*backends.RunStatus) { calls++ })
			iters++
		}
		perTask(b, b.Elapsed(), iters)
		b.ReportMetric(float64(calls)/float64(iters), "calls/op")
	})
	b.Run("progress-ratio", func(b *testing.B) {
		var exec, base time.Duration
		iters, calls := 0, 0
		for b.Loop() {
			exec += timed(b, func() { runExecutor(b, plan, par, func(*backends.RunStatus) { calls++ }) })
			base += timed(b, func() { runBaseline(b, plan, deps) })
			iters++
		}
		b.ReportMetric(float64(exec)/float64(base), "x-floor")
		b.ReportMetric(float64(calls)/float64(iters), "calls/op")
	})
}

// BenchmarkMakespan runs ~200 tasks sleeping 1–5 ms (real clock) with
// Parallelism that never binds, and reports the makespan (Submit to the
// end of Watch) over the DAG's critical path, the floor:
//
//   - makespan/critical-path uses the planned sleeps, so it includes how
//     late the timers fire (the OS and the Go runtime, not the scheduler);
//   - makespan/slept-path uses the critical path of the sleeps as measured
//     in that run, so what is left is scheduling overhead along the path.
//
// baseline is the same for the bare goroutine-per-task scheduler, and
// ratio runs both in turn and reports executor makespan over baseline's.
func BenchmarkMakespan(b *testing.B) {
	g := newSleepGraph(200)
	plan, deps := g.plan(b)
	cp := g.criticalPath()
	benchSlept = make([]atomic.Int64, len(g.ms))
	defer func() { benchSlept = nil }()
	// measure runs f once and returns its makespan and the slept path.
	measure := func(f func()) (makespan, slept time.Duration) {
		for i := range benchSlept {
			benchSlept[i].Store(0)
		}
		start := time.Now()
		f()
		makespan = time.Since(start)
		return makespan, g.longest(func(i int) time.Duration { return time.Duration(benchSlept[i].Load()) })
	}
	report := func(b *testing.B, makespan, slept time.Duration, iters int) {
		mean := makespan / time.Duration(iters)
		b.ReportMetric(float64(mean)/float64(cp), "makespan/critical-path")
		b.ReportMetric(float64(makespan)/float64(slept), "makespan/slept-path")
		b.ReportMetric(float64(mean.Microseconds())/1000, "makespan-ms")
		b.ReportMetric(float64(cp.Microseconds())/1000, "critical-path-ms")
	}
	ctx := context.Background()
	// executor returns a run of the plan, compiled on a new Backend; the
	// makespan is that of Submit and Watch.
	executor := func(b *testing.B) func() {
		be := local.New(&local.Options{Parallelism: 256})
		a, err := be.Compile(ctx, plan, nil)
		if err != nil {
			b.Fatal(err)
		}
		return func() {
			id, err := be.Submit(ctx, a, nil)
			if err != nil {
				b.Fatal(err)
			}
			if st, err := be.Watch(ctx, id, nil); err != nil || st.Phase != backends.PhaseSucceeded {
				b.Fatalf("run ended %s: %v %s", st.Phase, err, st.Message)
			}
		}
	}
	baseline := func(b *testing.B) func() { return func() { runBaseline(b, plan, deps) } }

	for _, sub := range []struct {
		name string
		run  func(*testing.B) func()
	}{{"executor", executor}, {"baseline", baseline}} {
		b.Run(sub.name, func(b *testing.B) {
			var makespan, slept time.Duration
			iters := 0
			for b.Loop() {
				m, s := measure(sub.run(b))
				makespan, slept, iters = makespan+m, slept+s, iters+1
			}
			report(b, makespan, slept, iters)
		})
	}
	b.Run("ratio", func(b *testing.B) {
		var exec, base time.Duration
		for b.Loop() {
			m, _ := measure(executor(b))
			exec += m
			m, _ = measure(baseline(b))
			base += m
		}
		b.ReportMetric(float64(exec)/float64(base), "executor/baseline")
	})
}

// TestBenchGraphs checks the benchmark DAGs' shapes, so a change to them
// shows up in a plain test run.
func TestBenchGraphs(t *testing.T) {
	wide := newWideGraph(10_000, 1_000)
	for i, deps := range wide.deps {
		if (i < 1_000) != (len(deps) == 0) || len(deps) > 3 {
			t.Fatalf("wide task %d has %d deps", i, len(deps))
		}
		for _, d := range deps {
			if int(d) >= i/1_000*1_000 {
				t.Fatalf("wide task %d waits for %d, not of an earlier layer", i, d)
			}
		}
	}
	g := newSleepGraph(200)
	if cp := g.criticalPath(); cp < 50*time.Millisecond || cp > 600*time.Millisecond {
		t.Fatalf("critical path %s", cp)
	}
	// The longest chain of a diamond: 1 + 5 + 1 ms.
	h := benchGraph{deps: [][]int32{nil, {0}, {0}, {1, 2}}, ms: []int{1, 5, 2, 1}}
	if got := h.criticalPath(); got != 7*time.Millisecond {
		t.Fatalf("critical path of the diamond = %s, want 7ms", got)
	}
}
