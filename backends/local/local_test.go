package local_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/local"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/resources"
	"github.com/sluice-ml/sluice/task"
)

type Num struct{ V int }

type SeedIn struct{ N int }

type FromIn struct{ In pipeline.Ref[Num] }

type JoinIn struct{ L, R pipeline.Ref[Num] }

type SumIn struct{ Xs pipeline.Ref[[]Num] }

type WorkIn struct{ I pipeline.Ref[int] }

type NotifyIn struct {
	Run pipeline.Ref[pipeline.RunInfo]
}

var (
	seed = task.New("seed", func(_ context.Context, in SeedIn) (Num, error) { return Num{in.N}, nil })
	inc  = task.New("inc", func(_ context.Context, in FromIn) (Num, error) { return Num{in.In.Get().V + 1}, nil })
	sum  = task.New("sum", func(_ context.Context, in SumIn) (Num, error) {
		total := 0
		for _, x := range in.Xs.Get() {
			total += x.V
		}
		return Num{total}, nil
	})
	boom = task.New("boom", func(context.Context, SeedIn) (Num, error) { return Num{}, errors.New("kaput") })
)

// notify returns an exit handler task that sends the RunInfo it sees.
func notify(got chan<- pipeline.RunInfo) task.Task[NotifyIn, Num] {
	return task.New("notify", func(_ context.Context, in NotifyIn) (Num, error) {
		got <- in.Run.Get()
		return Num{}, nil
	})
}

func TestDiamond(t *testing.T) {
	var mu sync.Mutex
	var order []string
	note := func(name string) {
		mu.Lock()
		defer mu.Unlock()
		order = append(order, name)
	}
	p := pipeline.New("diamond", nil)
	a := pipeline.Add(p, task.New("a", func(_ context.Context, in SeedIn) (Num, error) { note("a"); return Num{in.N}, nil }), SeedIn{N: 3})
	b := pipeline.Add(p, task.New("b", func(_ context.Context, in FromIn) (Num, error) { note("b"); return Num{in.In.Get().V + 1}, nil }), FromIn{In: a.Output()})
	c := pipeline.Add(p, task.New("c", func(_ context.Context, in FromIn) (Num, error) { note("c"); return Num{in.In.Get().V * 2}, nil }), FromIn{In: a.Output()})
	pipeline.Add(p, task.New("d", func(_ context.Context, in JoinIn) (Num, error) {
		note("d")
		return Num{in.L.Get().V + in.R.Get().V}, nil
	}), JoinIn{L: b.Output(), R: c.Output()})

	st, err := run(t, p, &local.Options{Parallelism: 2}, nil)
	require.NoError(t, err)

	assert.Equal(t, "diamond-1", st.RunID)
	assert.Equal(t, backends.PhaseSucceeded, st.Phase)
	assert.Equal(t, map[string]backends.Phase{"a": "Succeeded", "b": "Succeeded", "c": "Succeeded", "d": "Succeeded"}, phases(st))
	assert.JSONEq(t, `{"V":10}`, string(stepOf(t, st, "d").Output)) // (3+1) + 3*2
	require.Len(t, order, 4)
	assert.Equal(t, "a", order[0])
	assert.Equal(t, "d", order[3])
	for _, s := range st.Steps {
		require.Len(t, s.Attempts, 1, s.Name)
		assert.Equal(t, backends.PhaseSucceeded, s.Attempts[0].Phase)
		assert.False(t, s.Started.IsZero())
		assert.False(t, s.Finished.Before(s.Started))
	}
}

type ScaleIn struct {
	X   pipeline.Ref[int]
	LR  pipeline.Ref[float64]
	Tag string
}

type Scaled struct {
	Y   float64
	Tag string
}

func TestRefsFieldsAndParams(t *testing.T) {
	for _, tc := range []struct {
		name   string
		params map[string]string
		want   string
	}{
		{"Default", nil, `{"Y":1.5,"Tag":"t"}`},
		{"Override", map[string]string{"lr": "2"}, `{"Y":6,"Tag":"t"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := pipeline.New("refs", nil)
			lr := pipeline.NewParam(p, "lr", 0.5)
			s := pipeline.Add(p, seed, SeedIn{N: 3})
			scale := task.New("scale", func(_ context.Context, in ScaleIn) (Scaled, error) {
				return Scaled{Y: float64(in.X.Get()) * in.LR.Get(), Tag: in.Tag}, nil
			})
			pipeline.Add(p, scale, ScaleIn{X: pipeline.Field[int](s.Output(), "V"), LR: lr.Ref(), Tag: "t"})

			st, err := run(t, p, nil, &pipeline.RunOptions{Params: tc.params})
			require.NoError(t, err)
			assert.JSONEq(t, tc.want, string(stepOf(t, st, "scale").Output))
		})
	}
}

func TestWhenSkipsAndPropagates(t *testing.T) {
	p := pipeline.New("when", nil)
	s := pipeline.Add(p, seed, SeedIn{N: 1})
	v := pipeline.Field[int](s.Output(), "V")
	gated := pipeline.Add(p, inc.WithName("gated"), FromIn{In: s.Output()}).When(pipeline.Gt(v, 5))
	pipeline.Add(p, inc.WithName("after"), FromIn{In: gated.Output()})
	pipeline.Add(p, inc.WithName("other"), FromIn{In: s.Output()}).When(pipeline.Le(v, 5))

	st, err := run(t, p, nil, nil)
	require.NoError(t, err)

	assert.Equal(t, map[string]backends.Phase{
		"seed": "Succeeded", "gated": "Skipped", "after": "Skipped", "other": "Succeeded",
	}, phases(st))
	assert.Equal(t, "condition seed.V > 5 is false: seed.V = 1 < 5", stepOf(t, st, "gated").Message)
	assert.Equal(t, `upstream step "gated" was skipped`, stepOf(t, st, "after").Message)
	assert.Empty(t, stepOf(t, st, "after").Attempts)
}

func TestFailureSkipsDependentsAndFailsRun(t *testing.T) {
	p := pipeline.New("failing", nil)
	b := pipeline.Add(p, boom, SeedIn{})
	pipeline.Add(p, inc.WithName("dependent"), FromIn{In: b.Output()})
	pipeline.Add(p, seed.WithName("independent"), SeedIn{N: 1})

	st, err := run(t, p, nil, nil)
	require.ErrorIs(t, err, pipeline.ErrRunFailed)

	assert.Equal(t, backends.PhaseFailed, st.Phase)
	assert.Equal(t, `step "boom" failed: kaput`, st.Message)
	assert.Equal(t, map[string]backends.Phase{"boom": "Failed", "dependent": "Skipped", "independent": "Succeeded"}, phases(st))
	assert.Equal(t, "kaput", stepOf(t, st, "boom").Message)
	assert.Equal(t, backends.ReasonApp, stepOf(t, st, "boom").Attempts[0].Reason)
	assert.Equal(t, `upstream step "boom" failed`, stepOf(t, st, "dependent").Message)
}

func TestForEach(t *testing.T) {
	for _, tc := range []struct {
		name        string
		items       []int
		limit       int
		parallelism int
		wantMax     int64
		wantSum     int
	}{
		{"Limit", []int{0, 1, 2, 3, 4, 5, 6, 7}, 2, 8, 2, 140},
		{"BoundedByParallelism", []int{0, 1, 2, 3, 4, 5, 6, 7}, 0, 3, 3, 140},
		{"Empty", []int{}, 2, 8, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var g gauge
			p := pipeline.New("fan", nil)
			list := pipeline.Add(p, task.New("list", func(context.Context, SeedIn) ([]int, error) { return tc.items, nil }), SeedIn{})
			work := task.New("work", func(_ context.Context, in WorkIn) (Num, error) {
				g.enter()
				defer g.leave()
				time.Sleep(5 * time.Millisecond) // let instances overlap
				return Num{in.I.Get() * in.I.Get()}, nil
			})
			fan := pipeline.ForEach(p, work, list.Output(), func(i pipeline.Ref[int]) WorkIn { return WorkIn{I: i} }).Limit(tc.limit)
			pipeline.Add(p, sum, SumIn{Xs: fan.Collect()})

			st, err := run(t, p, &local.Options{Parallelism: tc.parallelism}, nil)
			require.NoError(t, err)

			assert.LessOrEqual(t, g.max.Load(), tc.wantMax)
			w := stepOf(t, st, "work")
			assert.Equal(t, backends.PhaseSucceeded, w.Phase)
			require.Len(t, w.Instances, len(tc.items))
			var want []Num
			for i, x := range tc.items {
				assert.Equal(t, fmt.Sprintf("work[%d]", i), w.Instances[i].Name)
				assert.Equal(t, backends.PhaseSucceeded, w.Instances[i].Phase)
				want = append(want, Num{x * x})
			}
			wantJSON, _ := json.Marshal(append([]Num{}, want...))
			assert.JSONEq(t, string(wantJSON), string(w.Output))
			assert.JSONEq(t, fmt.Sprintf(`{"V":%d}`, tc.wantSum), string(stepOf(t, st, "sum").Output))
		})
	}
}

func TestForEachInstanceFailureFailsStep(t *testing.T) {
	p := pipeline.New("fan-fail", nil)
	work := task.New("work", func(_ context.Context, in WorkIn) (Num, error) {
		if in.I.Get() == 2 {
			return Num{}, errors.New("bad element")
		}
		return Num{in.I.Get()}, nil
	})
	fan := pipeline.ForEach(p, work, pipeline.Const([]int{1, 2, 3}), func(i pipeline.Ref[int]) WorkIn { return WorkIn{I: i} })
	pipeline.Add(p, sum, SumIn{Xs: fan.Collect()})

	st, err := run(t, p, nil, nil)
	require.ErrorIs(t, err, pipeline.ErrRunFailed)

	w := stepOf(t, st, "work")
	assert.Equal(t, backends.PhaseFailed, w.Phase)
	assert.Equal(t, "instance 1 failed: bad element", w.Message)
	assert.Equal(t, []backends.Phase{"Succeeded", "Failed", "Succeeded"}, []backends.Phase{w.Instances[0].Phase, w.Instances[1].Phase, w.Instances[2].Phase})
	assert.Equal(t, backends.PhaseSkipped, stepOf(t, st, "sum").Phase)
}

func TestStaticFanOutAndCollect(t *testing.T) {
	p := pipeline.New("static", nil)
	steps := pipeline.FanOut(p, seed, []SeedIn{{2}, {3}, {4}})
	pipeline.Add(p, sum, SumIn{Xs: pipeline.Collect(steps...)})

	st, err := run(t, p, nil, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"seed-0", "seed-1", "seed-2", "sum"}, stepNames(st))
	assert.JSONEq(t, `{"V":9}`, string(stepOf(t, st, "sum").Output))
}

func stepNames(st *backends.RunStatus) []string {
	var out []string
	for _, s := range st.Steps {
		out = append(out, s.Name)
	}
	return out
}

func TestRetries(t *testing.T) {
	preempted := fmt.Errorf("preempted: %w", task.ErrInfrastructure)
	bug := errors.New("bug")
	for _, tc := range []struct {
		name        string
		retry       task.Retry
		errs        []error // what attempts return, in order; then success
		wantPhase   backends.Phase
		wantReasons []backends.Reason
		wantWaits   []time.Duration
	}{
		{
			name:  "AppRetryThenSucceed",
			retry: task.Retry{App: 2, Backoff: task.Backoff{Initial: time.Second}},
			errs:  []error{bug, bug}, wantPhase: backends.PhaseSucceeded,
			wantReasons: []backends.Reason{"app", "app", ""},
			wantWaits:   []time.Duration{time.Second, 2 * time.Second},
		},
		{
			name:  "InfraDoesNotUseAppBudget",
			retry: task.Retry{App: 1, Infra: 2},
			errs:  []error{preempted, preempted, bug}, wantPhase: backends.PhaseSucceeded,
			wantReasons: []backends.Reason{"infra", "infra", "app", ""},
		},
		{
			name:  "AppBudgetUsedUp",
			retry: task.Retry{App: 1, Infra: 5},
			errs:  []error{bug, bug, bug}, wantPhase: backends.PhaseFailed,
			wantReasons: []backends.Reason{"app", "app"},
		},
		{
			name:  "InfraBudgetUsedUp",
			retry: task.Retry{App: 5, Infra: 1, Backoff: task.Backoff{Initial: time.Minute, Factor: 3}},
			errs:  []error{preempted, preempted}, wantPhase: backends.PhaseFailed,
			wantReasons: []backends.Reason{"infra", "infra"},
			wantWaits:   []time.Duration{time.Minute},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			flaky := task.New("flaky", func(context.Context, SeedIn) (Num, error) {
				if n := int(calls.Add(1)) - 1; n < len(tc.errs) {
					return Num{}, tc.errs[n]
				}
				return Num{1}, nil
			}).WithRetry(tc.retry)
			p := pipeline.New("retries", nil)
			pipeline.Add(p, flaky, SeedIn{})
			clock := newFakeClock(true)

			st, _ := run(t, p, &local.Options{Clock: clock}, nil)

			s := stepOf(t, st, "flaky")
			assert.Equal(t, tc.wantPhase, s.Phase)
			var reasons []backends.Reason
			for i, a := range s.Attempts {
				assert.Equal(t, i+1, a.Number)
				reasons = append(reasons, a.Reason)
			}
			assert.Equal(t, tc.wantReasons, reasons)
			assert.Equal(t, tc.wantWaits, clock.Waits())
		})
	}
}

func TestOnDemandFallback(t *testing.T) {
	var calls atomic.Int32
	flaky := task.New("flaky", func(context.Context, SeedIn) (Num, error) {
		if calls.Add(1) <= 2 {
			return Num{}, fmt.Errorf("node reclaimed: %w", task.ErrInfrastructure)
		}
		return Num{1}, nil
	}).
		WithResources(resources.Profile{NodePool: "spot", Preemptible: true}).
		WithRetry(task.Retry{Infra: 2, OnDemandFallback: true})
	p := pipeline.New("spot", &pipeline.Options{NodePools: []resources.NodePool{
		{Name: "spot", Provider: resources.ProviderGKE, Spot: true},
	}})
	pipeline.Add(p, flaky, SeedIn{})

	st, err := run(t, p, nil, nil)
	require.NoError(t, err)
	var onDemand []bool
	for _, a := range stepOf(t, st, "flaky").Attempts {
		onDemand = append(onDemand, a.OnDemand)
	}
	assert.Equal(t, []bool{false, false, true}, onDemand)
}

func TestTimeouts(t *testing.T) {
	for _, tc := range []struct {
		name      string
		instant   bool // the fake clock fires timers at once, or never
		wantPhase backends.Phase
		wantMsgs  []string
	}{
		{"TimesOut", true, backends.PhaseFailed, []string{"timed out after 1m0s", "timed out after 1m0s"}},
		{"FinishesInTime", false, backends.PhaseSucceeded, []string{""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			slow := task.New("slow", func(ctx context.Context, _ SeedIn) (Num, error) {
				if tc.instant {
					<-ctx.Done() // only the timeout ends it
					return Num{}, ctx.Err()
				}
				return Num{1}, nil
			}).WithTimeout(time.Minute).WithRetry(task.Retry{App: 1})
			p := pipeline.New("timeouts", nil)
			pipeline.Add(p, slow, SeedIn{})
			clock := newFakeClock(tc.instant)

			st, _ := run(t, p, &local.Options{Clock: clock}, nil)

			s := stepOf(t, st, "slow")
			assert.Equal(t, tc.wantPhase, s.Phase)
			var msgs []string
			for _, a := range s.Attempts {
				msgs = append(msgs, a.Message)
				if a.Phase == backends.PhaseFailed {
					assert.Equal(t, backends.ReasonApp, a.Reason)
				}
			}
			assert.Equal(t, tc.wantMsgs, msgs)
			assert.Equal(t, time.Minute, clock.Waits()[0])
		})
	}
}

func TestExitHandler(t *testing.T) {
	for _, tc := range []struct {
		name      string
		fail      bool
		exitFails bool
		wantInfo  pipeline.RunInfo
		wantPhase backends.Phase
	}{
		{"AfterSuccess", false, false, pipeline.RunInfo{Phase: "Succeeded"}, backends.PhaseSucceeded},
		{"AfterFailure", true, false, pipeline.RunInfo{Phase: "Failed", Failed: []string{"boom"}}, backends.PhaseFailed},
		{"ItsFailureFailsRun", false, true, pipeline.RunInfo{Phase: "Succeeded"}, backends.PhaseFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan pipeline.RunInfo, 1)
			p := pipeline.New("exit", nil)
			first := pipeline.Add(p, seed, SeedIn{N: 1})
			if tc.fail {
				first = pipeline.Add(p, boom, SeedIn{})
			}
			pipeline.Add(p, inc, FromIn{In: first.Output()})
			exit := task.New("notify", func(_ context.Context, in NotifyIn) (Num, error) {
				got <- in.Run.Get()
				if tc.exitFails {
					return Num{}, errors.New("pager down")
				}
				return Num{}, nil
			})
			pipeline.OnExit(p, exit, NotifyIn{Run: p.Status()})

			st, _ := run(t, p, nil, nil)

			assert.Equal(t, tc.wantInfo, <-got)
			assert.Equal(t, tc.wantPhase, st.Phase)
			assert.Equal(t, "notify", st.Steps[len(st.Steps)-1].Name, "the exit handler is last")
		})
	}
}

func TestCancelMidRun(t *testing.T) {
	started := make(chan struct{})
	block := task.New("block", func(ctx context.Context, _ SeedIn) (Num, error) {
		close(started)
		<-ctx.Done()
		return Num{}, ctx.Err()
	})
	got := make(chan pipeline.RunInfo, 1)
	p := pipeline.New("cancel", nil)
	b := pipeline.Add(p, block, SeedIn{})
	pipeline.Add(p, inc.WithName("after"), FromIn{In: b.Output()})
	pipeline.OnExit(p, notify(got), NotifyIn{Run: p.Status()})

	ctx, cancel := context.WithCancel(t.Context())
	wait := runAsync(ctx, p, local.New(nil), nil)
	<-started
	cancel()
	st, err := wait()

	require.ErrorIs(t, err, pipeline.ErrRunFailed)
	assert.Equal(t, backends.PhaseCanceled, st.Phase)
	assert.Equal(t, map[string]backends.Phase{"block": "Canceled", "after": "Canceled", "notify": "Succeeded"}, phases(st))
	assert.Equal(t, backends.PhaseCanceled, stepOf(t, st, "block").Attempts[0].Phase)
	assert.Equal(t, pipeline.RunInfo{Phase: "Canceled"}, <-got)
}

func TestCapacity(t *testing.T) {
	var g gauge
	gpu := func(name string) task.Task[SeedIn, Num] {
		return task.New(name, func(context.Context, SeedIn) (Num, error) {
			g.enter()
			defer g.leave()
			time.Sleep(10 * time.Millisecond)
			return Num{}, nil
		}).WithResources(resources.Profile{GPUs: 1})
	}
	p := pipeline.New("gpus", nil)
	pipeline.Add(p, gpu("g1"), SeedIn{})
	pipeline.Add(p, gpu("g2"), SeedIn{})
	pipeline.Add(p, gpu("g3"), SeedIn{})

	st, err := run(t, p, &local.Options{Parallelism: 4, Capacity: &local.Capacity{GPUs: 1}}, nil)
	require.NoError(t, err)
	assert.Equal(t, backends.PhaseSucceeded, st.Phase)
	assert.EqualValues(t, 1, g.max.Load(), "GPU steps overlapped")
}

func TestCapacityUnsupportedAtCompile(t *testing.T) {
	a100 := func(p resources.Profile) resources.Profile { p.GPUModel = "A100-80GB"; return p }
	for _, tc := range []struct {
		name     string
		capacity local.Capacity
		profile  resources.Profile
		wantErr  string // "" when it fits
	}{
		{"TooManyGPUs", local.Capacity{GPUs: 1}, resources.Profile{GPUs: 2}, "nvidia.com/gpu"},
		{"NoGPU", local.Capacity{CPU: "8"}, resources.Profile{GPUs: 1}, "nvidia.com/gpu"},
		{"TooMuchCPU", local.Capacity{CPU: "2"}, resources.Profile{CPU: "4"}, "cpu"},
		{"TooMuchMemory", local.Capacity{Memory: "1Gi"}, resources.Profile{Memory: "2Gi"}, "memory"},
		{"NoMIGSlices", local.Capacity{GPUs: 1}, a100(resources.Profile{MIG: "3g.40gb"}), "nvidia.com/mig-3g.40gb"},
		{"MIGFits", local.Capacity{MIG: map[string]int{"3g.40gb": 2}}, a100(resources.Profile{MIG: "3g.40gb", MIGCount: 2}), ""},
		{"UnlimitedCPU", local.Capacity{GPUs: 1}, resources.Profile{CPU: "64", GPUs: 1}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := pipeline.New("capacity", nil)
			pipeline.Add(p, seed.WithName("big").WithResources(tc.profile), SeedIn{})

			_, err := pipeline.Compile(t.Context(), p, local.New(&local.Options{Capacity: &tc.capacity}), nil)

			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, errors.ErrUnsupported)
			assert.ErrorContains(t, err, `step "big"`)
			assert.ErrorContains(t, err, tc.wantErr)
		})
	}
}

func TestMalformedCapacity(t *testing.T) {
	p := pipeline.New("capacity", nil)
	pipeline.Add(p, seed, SeedIn{})
	_, err := pipeline.Compile(t.Context(), p, local.New(&local.Options{Capacity: &local.Capacity{CPU: "lots"}}), nil)
	assert.ErrorContains(t, err, "Options.Capacity")
}

// Progress snapshots are immutable: a snapshot held while the run goes on
// (read meanwhile from another goroutine, so that the race detector sees
// any write to what it shares) never changes, whether its steps were
// pending, running (attempts that change in place, fan-out instances) or
// ended. The last snapshot is the run's end, and the status Watch returns
// is the caller's own.
func TestProgressSnapshotsAreImmutable(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	gate := task.New("gate", func(context.Context, SeedIn) (Num, error) { <-release; return Num{1}, nil })
	var calls atomic.Int32
	flaky := task.New("flaky", func(context.Context, FromIn) (Num, error) {
		if calls.Add(1) == 1 {
			return Num{}, errors.New("once")
		}
		return Num{2}, nil
	}).WithRetry(task.Retry{App: 1})
	work := task.New("work", func(_ context.Context, in WorkIn) (Num, error) { return Num{in.I.Get()}, nil })

	p := pipeline.New("immutable", nil)
	g := pipeline.Add(p, gate, SeedIn{})
	pipeline.Add(p, flaky, FromIn{In: g.Output()})
	pipeline.ForEach(p, work, pipeline.Const([]int{1, 2, 3, 4, 5}), func(i pipeline.Ref[int]) WorkIn { return WorkIn{I: i} }).After(g)
	for i := range 1500 { // enough steps for the watcher to pace its snapshots
		pipeline.Add(p, seed.WithName(fmt.Sprintf("s%04d", i)), SeedIn{N: i}).After(g)
	}

	type kept struct{ snap, was *backends.RunStatus }
	var (
		mu    sync.Mutex
		snaps []kept
	)
	ended := make(chan struct{})
	readerDone := make(chan struct{})
	go func() { // reads every snapshot held, over and over, while the run goes on
		defer close(readerDone)
		for {
			mu.Lock()
			held := slices.Clone(snaps)
			mu.Unlock()
			for _, k := range held {
				if _, err := json.Marshal(k.snap); err != nil {
					t.Error(err)
				}
			}
			select {
			case <-ended:
				return
			default:
			}
		}
	}()
	progress := func(st *backends.RunStatus) {
		mu.Lock()
		snaps = append(snaps, kept{st, st.Clone()})
		mu.Unlock()
		if st.Step("gate").Phase == backends.PhaseRunning {
			once.Do(func() { close(release) })
		}
	}
	st, err := run(t, p, nil, &pipeline.RunOptions{Progress: progress})
	close(ended)
	<-readerDone
	require.NoError(t, err)

	require.GreaterOrEqual(t, len(snaps), 2)
	assert.NotEqual(t, backends.PhaseSucceeded, snaps[0].was.Step("gate").Phase, "the first snapshot was taken before the run went on")
	for i, k := range snaps {
		if !assert.Equal(t, k.was, k.snap, "snapshot %d changed after it was reported", i) {
			break
		}
	}
	last := snaps[len(snaps)-1].snap
	assert.Equal(t, st, last, "the last snapshot is the run's end")
	assert.Len(t, stepOf(t, st, "flaky").Attempts, 2)
	assert.Len(t, stepOf(t, st, "work").Instances, 5)
	st.Steps[1].Attempts[0].Message = "scribbled"
	st.Steps[1].Output[0] = '!'
	assert.Equal(t, snaps[len(snaps)-1].was, last, "the status Watch returned shares nothing with the snapshots")
}

// A change the watcher holds back, pacing the snapshots of a large run,
// is reported once the run makes no other change: here the first
// snapshot is reported while the run makes thousands of changes, then
// the run waits for a task that waits for the snapshot showing it runs.
func TestProgressReportsHeldBackChangesWhenTheRunIsQuiet(t *testing.T) {
	hold, entered, release := make(chan struct{}), make(chan struct{}), make(chan struct{})
	p := pipeline.New("quiet", nil)
	h := pipeline.Add(p, task.New("hold", func(context.Context, SeedIn) (Num, error) { <-hold; return Num{}, nil }), SeedIn{})
	wide := make([]pipeline.Step[Num], 1500) // enough steps for the watcher to pace its snapshots
	for i := range wide {
		wide[i] = pipeline.Add(p, seed.WithName(fmt.Sprintf("s%04d", i)), SeedIn{N: i})
		wide[i].After(h)
	}
	last := pipeline.Add(p, task.New("last", func(ctx context.Context, _ SeedIn) (Num, error) {
		close(entered)
		select {
		case <-release:
			return Num{}, nil
		case <-ctx.Done():
			return Num{}, ctx.Err()
		}
	}), SeedIn{})
	for _, w := range wide {
		last.After(w)
	}

	var calls int
	var once sync.Once
	progress := func(st *backends.RunStatus) {
		calls++
		if calls == 1 {
			// The run makes its changes while the first snapshot is
			// reported, up to the last task's start.
			close(hold)
			<-entered
			return
		}
		if st.Step("last").Phase == backends.PhaseRunning {
			once.Do(func() { close(release) })
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute) // in case the change is never reported
	defer cancel()
	st, err := pipeline.Run(ctx, p, local.New(nil), &pipeline.RunOptions{Progress: progress})
	require.NoError(t, err, "the snapshot showing the last task running was not reported")
	assert.Equal(t, backends.PhaseSucceeded, st.Phase)
}

func TestTelemetry(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	var calls atomic.Int32
	flaky := task.New("flaky", func(context.Context, SeedIn) (Num, error) {
		if calls.Add(1) == 1 {
			return Num{}, errors.New("once")
		}
		return Num{}, nil
	}).WithRetry(task.Retry{App: 1})
	p := pipeline.New("traced", nil)
	pipeline.Add(p, flaky, SeedIn{})

	_, err := run(t, p, &local.Options{TracerProvider: tp}, nil)
	require.NoError(t, err)

	var runSpan sdktrace.ReadOnlySpan
	var attempts []sdktrace.ReadOnlySpan
	for _, s := range sr.Ended() {
		switch s.Name() {
		case "sluice.local.run":
			runSpan = s
		case "sluice.local.attempt":
			attempts = append(attempts, s)
		}
	}
	require.NotNil(t, runSpan)
	require.Len(t, attempts, 2)
	slices.SortFunc(attempts, func(a, b sdktrace.ReadOnlySpan) int { return a.StartTime().Compare(b.StartTime()) })
	attrs := func(s sdktrace.ReadOnlySpan) map[attribute.Key]string {
		m := map[attribute.Key]string{}
		for _, kv := range s.Attributes() {
			m[kv.Key] = kv.Value.Emit()
		}
		return m
	}
	first, second := attrs(attempts[0]), attrs(attempts[1])
	assert.Equal(t, "flaky", first["sluice.step"])
	assert.Equal(t, "1", first["sluice.attempt"])
	assert.Equal(t, "app", first["sluice.reason"])
	assert.Equal(t, "2", second["sluice.attempt"])
	assert.NotContains(t, second, attribute.Key("sluice.reason"))
	for _, a := range attempts {
		assert.Equal(t, runSpan.SpanContext().SpanID(), a.Parent().SpanID(), "attempt spans are children of the run span")
	}
}

func TestRunIDs(t *testing.T) {
	release := make(chan struct{})
	gate := task.New("gate", func(context.Context, SeedIn) (Num, error) { <-release; return Num{}, nil })
	p := pipeline.New("ids", nil)
	pipeline.Add(p, gate, SeedIn{})
	b := local.New(nil)
	ctx := t.Context()
	art, err := pipeline.Compile(ctx, p, b, nil)
	require.NoError(t, err)

	first, err := b.Submit(ctx, art, &backends.SubmitOptions{})
	require.NoError(t, err)
	mine, err := b.Submit(ctx, art, &backends.SubmitOptions{RunID: "mine"})
	require.NoError(t, err)
	_, err = b.Submit(ctx, art, &backends.SubmitOptions{RunID: "mine"})
	assert.ErrorContains(t, err, "already running")
	_, err = b.Watch(ctx, "nope", &backends.WatchOptions{})
	assert.ErrorContains(t, err, "unknown run")
	assert.ErrorContains(t, b.Cancel(ctx, "nope"), "unknown run")

	close(release)
	for _, id := range []string{first, mine} {
		st, err := b.Watch(ctx, id, &backends.WatchOptions{})
		require.NoError(t, err)
		assert.Equal(t, backends.PhaseSucceeded, st.Phase)
	}
	assert.Equal(t, []string{"ids-1", "mine"}, []string{first, mine})
	again, err := b.Submit(ctx, art, &backends.SubmitOptions{RunID: "mine"})
	require.NoError(t, err, "an ended run's id may be reused")
	_, err = b.Watch(ctx, again, &backends.WatchOptions{})
	require.NoError(t, err)
}

func TestWatchReturnsWhenContextEnds(t *testing.T) {
	release := make(chan struct{})
	gate := task.New("gate", func(context.Context, SeedIn) (Num, error) { <-release; return Num{}, nil })
	p := pipeline.New("watch", nil)
	pipeline.Add(p, gate, SeedIn{})
	b := local.New(nil)
	art, err := pipeline.Compile(t.Context(), p, b, nil)
	require.NoError(t, err)
	id, err := b.Submit(t.Context(), art, &backends.SubmitOptions{})
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	st, err := b.Watch(ctx, id, &backends.WatchOptions{})
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, backends.PhaseRunning, st.Phase)

	close(release)
	st, err = b.Watch(t.Context(), id, &backends.WatchOptions{})
	require.NoError(t, err)
	assert.Equal(t, backends.PhaseSucceeded, st.Phase)
}

func TestConcurrentRunsConcurrentSafe(t *testing.T) {
	p := pipeline.New("many", nil)
	s := pipeline.Add(p, seed, SeedIn{N: 1})
	fan := pipeline.ForEach(p, task.New("work", func(_ context.Context, in WorkIn) (Num, error) { return Num{in.I.Get()}, nil }),
		pipeline.Const([]int{1, 2, 3, 4}), func(i pipeline.Ref[int]) WorkIn { return WorkIn{I: i} })
	pipeline.Add(p, sum, SumIn{Xs: fan.Collect()}).After(s)
	b := local.New(&local.Options{Parallelism: 3, Capacity: &local.Capacity{CPU: "4"}})

	var wg sync.WaitGroup
	ids := make([]string, 6)
	for i := range ids {
		wg.Go(func() {
			st, err := pipeline.Run(t.Context(), p, b, &pipeline.RunOptions{Progress: func(*backends.RunStatus) {}})
			if assert.NoError(t, err) {
				ids[i] = st.RunID
				assert.JSONEq(t, `{"V":10}`, string(st.Step("sum").Output))
			}
		})
	}
	wg.Wait()
	slices.Sort(ids)
	assert.Len(t, slices.Compact(ids), len(ids), "run ids are unique")
}

func TestCancelDuringBackoff(t *testing.T) {
	flaky := task.New("flaky", func(context.Context, SeedIn) (Num, error) { return Num{}, errors.New("once") }).
		WithRetry(task.Retry{App: 3, Backoff: task.Backoff{Initial: time.Hour}})
	p := pipeline.New("backoff", nil)
	pipeline.Add(p, flaky, SeedIn{})
	clock := newFakeClock(false) // the backoff never ends by itself

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	progress := func(st *backends.RunStatus) {
		if a := st.Steps[0].Attempts; len(a) == 1 && a[0].Phase == backends.PhaseFailed {
			cancel()
		}
	}
	st, err := runAsync(ctx, p, local.New(&local.Options{Clock: clock}), &pipeline.RunOptions{Progress: progress})()

	require.ErrorIs(t, err, pipeline.ErrRunFailed)
	s := stepOf(t, st, "flaky")
	assert.Equal(t, backends.PhaseCanceled, s.Phase)
	assert.Len(t, s.Attempts, 1)
	assert.Equal(t, []time.Duration{time.Hour}, clock.Waits())
}

func TestTasksSeeTheirAttempt(t *testing.T) {
	seen := task.New("seen", func(ctx context.Context, _ SeedIn) (task.Attempt, error) {
		a, ok := task.AttemptFrom(ctx)
		if !ok {
			return a, errors.New("no attempt in context")
		}
		if a.Number == 1 {
			return a, fmt.Errorf("first try: %w", task.ErrInfrastructure)
		}
		return a, nil
	}).WithRetry(task.Retry{Infra: 1})
	p := pipeline.New("attempts", nil)
	pipeline.Add(p, seen, SeedIn{})
	st, err := run(t, p, nil, nil)
	require.NoError(t, err)
	var got task.Attempt
	require.NoError(t, json.Unmarshal(stepOf(t, st, "seen").Output, &got))
	assert.Equal(t, task.Attempt{Step: "seen", Instance: -1, Number: 2, InProcess: true}, got)
}

func TestNodePoolCapacity(t *testing.T) {
	pools := []resources.NodePool{
		{Name: "gpu", Labels: map[string]string{"pool": "gpu"}, Node: resources.Capacity{GPUModel: "A100-80GB", GPUs: 1, MIG: map[string]int{"1g.10gb": 7}}},
		{Name: "cpu", Labels: map[string]string{"pool": "cpu"}},
	}
	var onGPU, all gauge
	step := func(name string, prof resources.Profile) task.Task[SeedIn, Num] {
		return task.New(name, func(context.Context, SeedIn) (Num, error) {
			if prof.NodePool == "gpu" {
				onGPU.enter()
				defer onGPU.leave()
			}
			all.enter()
			defer all.leave()
			time.Sleep(20 * time.Millisecond)
			return Num{}, nil
		}).WithResources(prof)
	}
	slice := resources.Profile{NodePool: "gpu", MIG: "1g.10gb"}
	p := pipeline.New("pools", &pipeline.Options{NodePools: pools})
	pipeline.Add(p, step("t1", slice), SeedIn{})
	pipeline.Add(p, step("t2", slice), SeedIn{})
	pipeline.Add(p, step("prep", resources.Profile{NodePool: "cpu", CPU: "2"}), SeedIn{})

	opts := &local.Options{
		Parallelism: 3,
		Pools: map[string]local.Capacity{
			"gpu": {MIG: map[string]int{"1g.10gb": 1}},
			"cpu": {CPU: "4"},
		},
	}
	st, err := run(t, p, opts, nil)
	require.NoError(t, err)
	assert.Equal(t, backends.PhaseSucceeded, st.Phase)
	assert.Equal(t, int64(1), onGPU.max.Load(), "one 1g.10gb slice in the gpu pool: trials take turns")
	assert.Equal(t, int64(2), all.max.Load(), "the cpu pool's step runs beside them")

	// A pool that cannot hold the step at all is an error at Compile,
	// naming the pool.
	opts.Pools["gpu"] = local.Capacity{GPUs: 1}
	_, err = pipeline.Compile(t.Context(), p, local.New(opts), nil)
	require.ErrorIs(t, err, errors.ErrUnsupported)
	assert.ErrorContains(t, err, "Options.Pools[gpu]")
	assert.ErrorContains(t, err, "nvidia.com/mig-1g.10gb")
}

// A pool in Options.Pools that the pipeline does not declare (a typo) is
// a Compile error naming it and the pools declared, not capacity that
// silently never applies.
func TestNodePoolCapacityOfAnUndeclaredPool(t *testing.T) {
	p := pipeline.New("pools", &pipeline.Options{NodePools: []resources.NodePool{{Name: "gpu", Labels: map[string]string{"pool": "gpu"}}}})
	pipeline.Add(p, task.New("t", func(context.Context, SeedIn) (Num, error) { return Num{}, nil }), SeedIn{})
	_, err := pipeline.Compile(t.Context(), p, local.New(&local.Options{Pools: map[string]local.Capacity{"gpus": {GPUs: 1}}}), nil)
	require.Error(t, err)
	assert.ErrorContains(t, err, `pool "gpus", which pipeline "pools" does not declare (it declares [gpu])`)
}

func TestCapacityWithAPathologicalQuantityFailsFast(t *testing.T) {
	p := pipeline.New("q", nil)
	pipeline.Add(p, seed, SeedIn{})
	_, err := pipeline.Compile(t.Context(), p, local.New(&local.Options{Capacity: &local.Capacity{CPU: "1e-999999999"}}), nil)
	require.Error(t, err)
	assert.ErrorContains(t, err, "Options.Capacity")
}

// Retry.PendingTimeout never fires locally: a task waiting for capacity
// that another task holds is queued, not unschedulable. It is recorded.
func TestPendingTimeoutNeverFires(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	hold := task.New("hold", func(context.Context, SeedIn) (Num, error) {
		close(started)
		<-release
		return Num{1}, nil
	}).WithResources(resources.Profile{CPU: "1"})
	wait := task.New("wait", func(context.Context, SeedIn) (Num, error) { return Num{2}, nil }).
		WithResources(resources.Profile{CPU: "1"}).WithRetry(task.Retry{Infra: 1, PendingTimeout: time.Nanosecond})
	p := pipeline.New("pending", nil)
	pipeline.Add(p, hold, SeedIn{})
	pipeline.Add(p, wait, SeedIn{})
	clock := newFakeClock(true) // a timer would fire at once
	b := local.New(&local.Options{Clock: clock, Capacity: &local.Capacity{CPU: "1"}})

	art, err := pipeline.Compile(t.Context(), p, b, nil)
	require.NoError(t, err)
	assert.Contains(t, string(art.Documents()[0]), "pendingTimeout: 1ns")

	done := runAsync(t.Context(), p, b, nil)
	<-started
	close(release)
	st, err := done()
	require.NoError(t, err)
	w := stepOf(t, st, "wait")
	assert.Equal(t, backends.PhaseSucceeded, w.Phase)
	assert.Len(t, w.Attempts, 1)
	assert.Empty(t, clock.Waits())
}
