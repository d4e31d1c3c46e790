package local_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/local"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

// Tests of the scheduling of plan steps: a step waits in the pool's line
// without a goroutine, and goroutines that end a task run the next one.

type SchedIn struct {
	ID   int
	Deps []pipeline.Ref[int]
	Fail bool
}

type SchedList struct{ Xs pipeline.Ref[[]int] }

// schedPipeline is a random DAG of n steps reading 0–3 earlier ones, with
// some failing, some skipped by a condition and a few fan-outs; g counts
// the tasks running at once.
func schedPipeline(n int, seed uint64, g *gauge) *pipeline.Pipeline {
	r := rand.New(rand.NewPCG(seed, 1))
	p := pipeline.New("sched", nil)
	work := task.New("work", func(_ context.Context, in SchedIn) (int, error) {
		g.enter()
		defer g.leave()
		if in.Fail {
			return 0, fmt.Errorf("step %d fails", in.ID)
		}
		v := in.ID
		for _, d := range in.Deps {
			v += d.Get()
		}
		return v % 1000, nil
	})
	list := task.New("list", func(_ context.Context, in SchedIn) ([]int, error) { return []int{in.ID, 1, 2}, nil })
	each := task.New("each", func(_ context.Context, x pipeline.Ref[int]) (int, error) {
		g.enter()
		defer g.leave()
		return x.Get() + 1, nil
	})
	total := task.New("total", func(_ context.Context, in SchedList) (int, error) {
		s := 0
		for _, x := range in.Xs.Get() {
			s += x
		}
		return s, nil
	})
	var outs []pipeline.Ref[int]
	for i := range n {
		in := SchedIn{ID: i, Fail: r.IntN(40) == 0}
		for range min(len(outs), r.IntN(4)) {
			in.Deps = append(in.Deps, outs[r.IntN(len(outs))])
		}
		switch k := r.IntN(30); {
		case k == 0 && i > 0: // a fan-out over a list built from an earlier step
			l := pipeline.Add(p, list.WithName(fmt.Sprintf("list-%d", i)), in)
			fan := pipeline.ForEach(p, each.WithName(fmt.Sprintf("each-%d", i)), l.Output(),
				func(x pipeline.Ref[int]) pipeline.Ref[int] { return x })
			outs = append(outs, pipeline.Add(p, total.WithName(fmt.Sprintf("total-%d", i)), SchedList{Xs: fan.Collect()}).Output())
		case k == 1 && len(outs) > 0: // a condition that may be false
			s := pipeline.Add(p, work.WithName(fmt.Sprintf("when-%d", i)), in).When(pipeline.Gt(outs[r.IntN(len(outs))], 500))
			outs = append(outs, s.Output())
		default:
			outs = append(outs, pipeline.Add(p, work.WithName(fmt.Sprintf("w-%d", i)), in).Output())
		}
	}
	return p
}

// TestScheduleMatchesSequential runs random DAGs in parallel and in
// sequence: every step must end the same way, and no more tasks than
// Parallelism may run at once.
func TestScheduleMatchesSequential(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			var g gauge
			want, _ := run(t, schedPipeline(300, seed, &g), &local.Options{Sequential: true}, nil)
			g = gauge{}
			got, _ := run(t, schedPipeline(300, seed, &g), &local.Options{Parallelism: 3}, nil)
			require.Equal(t, want.Phase, got.Phase)
			if seed == 0 { // the DAG exercises every outcome
				ph := map[backends.Phase]int{}
				for _, s := range want.Steps {
					ph[s.Phase]++
				}
				for _, want := range []backends.Phase{backends.PhaseFailed, backends.PhaseSkipped, backends.PhaseSucceeded} {
					assert.Positive(t, ph[want], want)
				}
			}
			require.Len(t, got.Steps, len(want.Steps))
			for i, w := range want.Steps {
				s := got.Steps[i]
				assert.Equal(t, w.Name, s.Name)
				assert.Equal(t, w.Phase, s.Phase, s.Name)
				assert.Equal(t, w.Message, s.Message, s.Name)
				assert.Equal(t, string(w.Output), string(s.Output), s.Name)
				assert.Len(t, s.Attempts, len(w.Attempts), s.Name)
				assert.Len(t, s.Instances, len(w.Instances), s.Name)
			}
			assert.LessOrEqual(t, g.max.Load(), int64(3), "Parallelism exceeded")
		})
	}
}

// TestCancelQueued cancels a run whose steps wait in the pool's line
// behind a running one: they end Canceled without an attempt, the exit
// handler still runs, and another run of the same Backend is not touched.
func TestCancelQueued(t *testing.T) {
	started := make(chan struct{})
	block := task.New("block", func(ctx context.Context, _ SeedIn) (Num, error) {
		close(started)
		<-ctx.Done()
		return Num{}, ctx.Err()
	})
	got := make(chan pipeline.RunInfo, 1)
	p := pipeline.New("queued", nil)
	b := pipeline.Add(p, block, SeedIn{})
	for i := range 20 {
		pipeline.Add(p, seed.WithName(fmt.Sprintf("queued-%d", i)), SeedIn{N: i})
		pipeline.Add(p, inc.WithName(fmt.Sprintf("after-%d", i)), FromIn{In: b.Output()})
	}
	pipeline.OnExit(p, notify(got), NotifyIn{Run: p.Status()})

	be := local.New(&local.Options{Parallelism: 1})
	ctx, cancel := context.WithCancel(t.Context())
	wait := runAsync(ctx, p, be, nil)
	<-started
	other := runAsync(t.Context(), schedPipeline(30, 9, &gauge{}), be, nil) // waits behind the first run
	cancel()
	st, err := wait()

	require.ErrorIs(t, err, pipeline.ErrRunFailed)
	assert.Equal(t, backends.PhaseCanceled, st.Phase)
	assert.Equal(t, pipeline.RunInfo{Phase: "Canceled"}, <-got)
	for _, s := range st.Steps {
		switch {
		case s.Name == "block":
			assert.Equal(t, backends.PhaseCanceled, s.Phase)
		case s.Name == "notify":
			assert.Equal(t, backends.PhaseSucceeded, s.Phase)
		default:
			assert.Equal(t, backends.PhaseCanceled, s.Phase, s.Name)
			assert.Equal(t, "canceled before it started", s.Message, s.Name)
			assert.Empty(t, s.Attempts, s.Name)
		}
	}
	st, err = other()
	require.NotNil(t, st, "%v", err)
	assert.NotEqual(t, backends.PhaseCanceled, st.Phase, "%v", err)
	for _, s := range st.Steps {
		assert.NotEqual(t, backends.PhaseCanceled, s.Phase, s.Name)
	}
}

// TestRunsShareParallelism runs several wide runs at once on one Backend:
// together they never exceed its Parallelism, and all succeed.
func TestRunsShareParallelism(t *testing.T) {
	var g gauge
	slow := task.New("slow", func(_ context.Context, in SeedIn) (Num, error) {
		g.enter()
		defer g.leave()
		time.Sleep(50 * time.Microsecond)
		return Num{in.N}, nil
	})
	pipe := func(name string) *pipeline.Pipeline {
		p := pipeline.New(name, nil)
		var prev []pipeline.Step[Num]
		for i := range 100 {
			s := pipeline.Add(p, slow.WithName(fmt.Sprintf("s-%d", i)), SeedIn{N: i})
			if len(prev) > 0 {
				s.After(prev[i%len(prev)])
			}
			prev = append(prev, s)
		}
		return p
	}
	be := local.New(&local.Options{Parallelism: 4})
	var waits []func() (*backends.RunStatus, error)
	for i := range 4 {
		waits = append(waits, runAsync(t.Context(), pipe(fmt.Sprintf("run-%d", i)), be, nil))
	}
	for _, w := range waits {
		st, err := w()
		require.NoError(t, err)
		assert.Equal(t, backends.PhaseSucceeded, st.Phase)
	}
	assert.LessOrEqual(t, g.max.Load(), int64(4))
	assert.Equal(t, int64(4), g.max.Load(), "Parallelism was not used")
}

// TestFailureSkipsWideDownstream fails a root of a wide DAG: everything
// downstream of it is Skipped, everything else Succeeded.
func TestFailureSkipsWideDownstream(t *testing.T) {
	p := pipeline.New("fail-wide", nil)
	bad := pipeline.Add(p, boom, SeedIn{})
	good := pipeline.Add(p, seed.WithName("good"), SeedIn{N: 1})
	var down, up []string
	for i := range 200 {
		from := good
		if i%2 == 0 {
			from = bad
		}
		s := pipeline.Add(p, inc.WithName(fmt.Sprintf("d-%d", i)), FromIn{In: from.Output()})
		s2 := pipeline.Add(p, inc.WithName(fmt.Sprintf("e-%d", i)), FromIn{In: s.Output()})
		if i%2 == 0 {
			down = append(down, s.Name(), s2.Name())
		} else {
			up = append(up, s.Name(), s2.Name())
		}
	}
	st, err := run(t, p, &local.Options{Parallelism: 2}, nil)
	require.ErrorIs(t, err, pipeline.ErrRunFailed)
	ph := phases(st)
	for _, n := range down {
		assert.Equal(t, backends.PhaseSkipped, ph[n], n)
	}
	for _, n := range up {
		assert.Equal(t, backends.PhaseSucceeded, ph[n], n)
	}
	assert.Equal(t, backends.PhaseFailed, ph["boom"])
	assert.Equal(t, `upstream step "boom" failed`, stepOf(t, st, "d-0").Message)
	assert.Equal(t, `upstream step "d-0" was skipped`, stepOf(t, st, "e-0").Message)
}
