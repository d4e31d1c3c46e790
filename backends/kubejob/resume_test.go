package kubejob_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/klog/v2"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/kubejob"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/internal/kubesim"
	"github.com/sluice-ml/sluice/internal/simtime"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

func TestMain(m *testing.M) {
	// Informers log every watch the fault injector drops; the tests
	// assert on outcomes, not on client-go's log.
	if os.Getenv("SLUICE_KLOG") == "" {
		klog.SetOutput(io.Discard)
		klog.LogToStderr(false)
	}
	os.Exit(m.Run())
}

// counter counts task invocations by step name.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) add(step string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[step]++
}

func (c *counter) counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for k, v := range c.n {
		out[k] = v
	}
	return out
}

type shardIn struct {
	Seed  pipeline.Ref[int]
	Shard pipeline.Ref[int]
}

type sumIn struct {
	Parts pipeline.Ref[[]int]
	Left  pipeline.Ref[int]
	Right pipeline.Ref[int]
}

// workload is a pipeline of every shape the orchestrator drives: a
// diamond, a dynamic fan-out with a parallelism cap, a fan-in and an exit
// handler. Each task counts its invocations, keyed by step (instances by
// element).
func workload(c *counter) *pipeline.Pipeline {
	p := pipeline.New("workload", nil)
	seed := pipeline.Add(p, task.New("seed", func(context.Context, struct{}) (int, error) {
		c.add("seed")
		return 3, nil
	}), struct{}{})
	left := pipeline.Add(p, task.New("left", func(_ context.Context, in pipeline.Ref[int]) (int, error) {
		c.add("left")
		return in.Get() + 1, nil
	}), seed.Output())
	right := pipeline.Add(p, task.New("right", func(_ context.Context, in pipeline.Ref[int]) (int, error) {
		c.add("right")
		return in.Get() * 2, nil
	}), seed.Output())
	shards := pipeline.Add(p, task.New("shards", func(context.Context, struct{}) ([]int, error) {
		c.add("shards")
		return []int{0, 1, 2, 3, 4, 5}, nil
	}), struct{}{})
	fan := pipeline.ForEach(p, task.New("shard", func(_ context.Context, in shardIn) (int, error) {
		c.add(fmt.Sprintf("shard[%d]", in.Shard.Get()))
		return in.Seed.Get() * in.Shard.Get(), nil
	}), shards.Output(), func(item pipeline.Ref[int]) shardIn {
		return shardIn{Seed: seed.Output(), Shard: item}
	})
	fan.Limit(2)
	pipeline.Add(p, task.New("sum", func(_ context.Context, in sumIn) (int, error) {
		c.add("sum")
		t := in.Left.Get() + in.Right.Get()
		for _, x := range in.Parts.Get() {
			t += x
		}
		return t, nil
	}), sumIn{Parts: fan.Collect(), Left: left.Output(), Right: right.Output()})
	pipeline.OnExit(p, task.New("report", func(_ context.Context, _ pipeline.Ref[pipeline.RunInfo]) (struct{}, error) {
		c.add("report")
		return struct{}{}, nil
	}), p.Status())
	return p
}

// workloadSteps is every task invocation one clean run of workload makes.
var workloadSteps = map[string]int{
	"seed": 1, "left": 1, "right": 1, "shards": 1, "sum": 1, "report": 1,
	"shard[0]": 1, "shard[1]": 1, "shard[2]": 1, "shard[3]": 1, "shard[4]": 1, "shard[5]": 1,
}

// jobCreates counts, per Job name, the Jobs that came into being, as the
// API server's store sees them (a create that met AlreadyExists makes
// none).
func jobCreates(t *testing.T, h *harness) func() map[string]int {
	w, err := h.cs.Tracker().Watch(batchv1.SchemeGroupVersion.WithResource("jobs"), "default")
	require.NoError(t, err)
	var mu sync.Mutex
	made := map[string]int{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			if j, ok := ev.Object.(*batchv1.Job); ok && ev.Type == watch.Added {
				mu.Lock()
				made[j.Name]++
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { w.Stop(); <-done })
	return func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		out := map[string]int{}
		for k, v := range made {
			out[k] = v
		}
		return out
	}
}

// Under a busy API server (>= 10% of calls fail with 500, 429, 409 or
// lose their response, and watches drop), every run completes and every
// step runs exactly once.
func TestFaultInjection(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	var mu sync.Mutex // guards the totals
	var eligible, failed int
	injected := map[string]int{}
	// The seeds run at once: each spends most of its time waiting out
	// client-go's backoffs.
	var seeds sync.WaitGroup
	for seed := range int64(6) {
		seeds.Go(func() {
			t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
				h := newHarness(t)
				defer h.Close()
				created := jobCreates(t, h)
				// The lives of watches are timed on a clock of their own,
				// which the test steps.
				wclk := simtime.New(time.Now())
				f := kubesim.InjectFaults(h.cs, 0.2, seed, wclk)
				defer f.Close()
				f.DropWatches(200 * time.Millisecond)
				c := &counter{}
				b := h.backend(&kubejob.Options{Pod: kubepod.Options{Image: testImage}, RunID: fmt.Sprintf("faults-%d", seed)})
				// A ceiling for a hung run, not a measure: client-go's
				// informers back off in real time (up to 30 s) after
				// failed watches, and six seeds run at once, on a machine
				// other tests may load.
				ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
				defer cancel()
				r := startRun(ctx, workload(c), b)
				// Two rounds of drops of the watches the informers (jobs,
				// pods, configmaps) have open. The first ends each with 410
				// Gone, so they re-list. The second, half a second later on
				// the injector's clock, just closes those that have had
				// events (a watch without events lasts 1.1 s), so their
				// informers watch again where they were. Informers back off
				// exponentially (0.8 s, doubling, up to 30 s) after a 410 or
				// a watch that ends early and empty, so dropping watches all
				// run long would test client-go's patience, not the
				// orchestrator.
				for _, d := range []time.Duration{1500 * time.Millisecond, 500 * time.Millisecond} {
					waitFor(t, func() bool { return wclk.Waiters() >= 3 || r.ended() }, "the informers watch")
					wclk.Step(d)
				}
				f.DropWatches(0)
				st, err := r.wait(t)
				f.Stop()
				require.NoError(t, err)
				assert.Equal(t, backends.PhaseSucceeded, st.Phase)
				assert.Equal(t, workloadSteps, c.counts(), "every step ran exactly once")
				// The store's watch delivers the last Job's Added event
				// on a goroutine of its own, maybe after the run ended.
				waitFor(t, func() bool { return len(created()) >= len(workloadSteps) }, "every Job's creation seen")
				for name, n := range created() {
					assert.Equal(t, 1, n, "Job %s created once", name)
				}
				assert.Len(t, created(), len(workloadSteps), "one Job per step and instance (the fan-out step itself has none)")
				assert.Equal(t, `55`, string(step(t, st, "sum").Output), "(3+1) + 3*2 + 3*(0+1+2+3+4+5)")

				_, n, in := f.Counts()
				t.Logf("%d eligible calls, faults: %v", n, in)
				mu.Lock()
				defer mu.Unlock()
				eligible += n
				failed += f.Total()
				for k, v := range in {
					injected[k] += v
				}
			})
		})
	}
	seeds.Wait()
	t.Logf("all seeds: %d eligible calls, %d faults: %v", eligible, failed, injected)
	assert.GreaterOrEqual(t, float64(failed), 0.10*float64(eligible), "at least 10%% of the calls failed")
	for _, k := range []string{kubesim.FaultInternal, kubesim.FaultThrottled, kubesim.FaultLost, kubesim.FaultWatchDropped} {
		assert.Positive(t, injected[k], "faults of kind %s", k)
	}
}

// An orchestrator stopped at any point (here: after a random number of API
// calls, up to a whole run's worth) leaves a run that a new orchestrator
// with the same run id completes, with each Job created once and each
// step run once.
func TestCrashResume(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const seeds = 32
	midRun := 0
	for seed := range seeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			h := newHarness(t)
			defer h.Close()
			created := jobCreates(t, h)
			rng := rand.New(rand.NewPCG(uint64(seed), 7))
			crashAt := int64(1 + rng.IntN(22)) // a clean run makes about 22 calls
			id := fmt.Sprintf("resume-%d", seed)
			opts := &kubejob.Options{Pod: kubepod.Options{Image: testImage}, RunID: id}
			c := &counter{}

			first := h.backend(opts)
			// The crashAt-th API call is the first orchestrator's last:
			// every later one fails, as if the process had died, until
			// its goroutines are gone.
			var calls atomic.Int64
			var dead, armed atomic.Bool
			armed.Store(true)
			crash := make(chan struct{})
			h.cs.Fake.PrependReactor("*", "*", func(clienttesting.Action) (bool, runtime.Object, error) {
				if dead.Load() {
					return true, nil, errGone
				}
				if armed.Load() && calls.Add(1) == crashAt {
					dead.Store(true)
					go func() {
						first.Close()
						close(crash)
					}()
				}
				return false, nil, nil
			})
			h.cs.Fake.PrependWatchReactor("*", func(clienttesting.Action) (bool, watch.Interface, error) {
				if dead.Load() {
					return true, nil, errGone
				}
				return false, nil, nil
			})
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			st, err := pipeline.Run(ctx, workload(c), first, nil)
			armed.Store(false)
			if !dead.Load() {
				// The run ended before the crash point: resuming must
				// still find it over and change nothing.
				require.NoError(t, err)
				require.Equal(t, backends.PhaseSucceeded, st.Phase)
			} else {
				<-crash
				dead.Store(false)
				midRun++
				jobs, err := h.cs.Tracker().List(batchv1.SchemeGroupVersion.WithResource("jobs"), batchv1.SchemeGroupVersion.WithKind("Job"), "default")
				require.NoError(t, err)
				t.Logf("stopped after %d API calls, %d of %d Jobs created", crashAt, len(jobs.(*batchv1.JobList).Items), len(workloadSteps))
			}
			second := h.backend(opts)
			art, err := pipeline.Compile(ctx, workload(c), second, nil)
			require.NoError(t, err)
			_, err = second.Submit(ctx, art, &backends.SubmitOptions{})
			require.NoError(t, err)
			st, err = second.Watch(ctx, id, &backends.WatchOptions{})
			if err != nil {
				dump(t, h, st)
			}
			require.NoError(t, err)
			assert.Equal(t, id, st.RunID)
			assert.Equal(t, backends.PhaseSucceeded, st.Phase)
			assert.Equal(t, `55`, string(step(t, st, "sum").Output))
			assert.Equal(t, workloadSteps, c.counts(), "crashed after %d calls: every step ran exactly once", crashAt)
			for name, n := range created() {
				assert.Equal(t, 1, n, "Job %s created once", name)
			}
		})
	}
	assert.GreaterOrEqual(t, midRun, 20, "the orchestrator was stopped in the middle of most runs")
}

// errGone fails the API calls of an orchestrator whose process died; like
// a canceled context, it is not retried.
var errGone = fmt.Errorf("the orchestrator's process is gone: %w", context.Canceled)

// Cancel stops the running steps (their Jobs are deleted), starts no
// other, runs the exit handler with the phase Canceled, and a resumed
// orchestrator does not start the run again.
func TestCancel(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	h := newHarness(t)
	defer h.Close()
	release := make(chan struct{})
	started := make(chan struct{})
	var info atomic.Pointer[pipeline.RunInfo]
	p := pipeline.New("cancel", nil)
	slow := pipeline.Add(p, task.New("slow", func(ctx context.Context, _ struct{}) (int, error) {
		close(started)
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-release:
			return 1, nil
		}
	}), struct{}{})
	pipeline.Add(p, task.New("after", func(_ context.Context, in pipeline.Ref[int]) (int, error) {
		t.Error("a step after the cancel ran")
		return in.Get(), nil
	}), slow.Output())
	pipeline.OnExit(p, task.New("report", func(_ context.Context, in pipeline.Ref[pipeline.RunInfo]) (struct{}, error) {
		ri := in.Get()
		info.Store(&ri)
		return struct{}{}, nil
	}), p.Status())

	opts := &kubejob.Options{Pod: kubepod.Options{Image: testImage}, RunID: "cancel-1"}
	b := h.backend(opts)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	var st *backends.RunStatus
	var err error
	go func() {
		defer close(done)
		st, err = pipeline.Run(ctx, p, b, nil)
	}()
	<-started
	cancel()
	<-done
	close(release)
	require.ErrorIs(t, err, pipeline.ErrRunFailed)
	assert.Equal(t, backends.PhaseCanceled, st.Phase)
	assert.Equal(t, backends.PhaseCanceled, step(t, st, "slow").Phase)
	assert.Equal(t, backends.PhaseCanceled, step(t, st, "after").Phase)
	assert.Equal(t, backends.PhaseSucceeded, step(t, st, "report").Phase)
	require.NotNil(t, info.Load())
	assert.Equal(t, backends.PhaseCanceled, info.Load().Phase)

	jobs, err := h.cs.BatchV1().Jobs("default").List(t.Context(), metav1.ListOptions{})
	require.NoError(t, err)
	var names []string
	for _, j := range jobs.Items {
		names = append(names, j.Name)
	}
	sort.Strings(names)
	assert.Equal(t, []string{"cancel-1-report"}, names, "the canceled step's Job is gone; only the finished exit handler's stays (until its TTL)")

	again := h.backend(opts)
	st, err = pipeline.Run(t.Context(), p, again, nil)
	require.ErrorIs(t, err, pipeline.ErrRunFailed)
	assert.Equal(t, backends.PhaseCanceled, st.Phase, "a resumed canceled run stays canceled")
}

// A run id belongs to one pipeline and one set of parameters.
func TestRunIDTakenByAnotherPipeline(t *testing.T) {
	h := newHarness(t)
	defer h.Close()
	opts := &kubejob.Options{Pod: kubepod.Options{Image: testImage}, RunID: "taken"}
	_, err := pipeline.Run(t.Context(), workload(&counter{}), h.backend(opts), nil)
	require.NoError(t, err)
	_, err = pipeline.Run(t.Context(), workload(&counter{}), h.backend(opts), &pipeline.RunOptions{Params: map[string]string{}})
	require.NoError(t, err, "the same pipeline and parameters resume (a finished run stays finished)")

	other := pipeline.New("other", nil)
	pipeline.Add(other, task.New("x", func(context.Context, struct{}) (int, error) { return 1, nil }), struct{}{})
	_, err = pipeline.Run(t.Context(), other, h.backend(opts), nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `run id "taken" is taken`)
}

// dump logs a run's status and the Jobs in the cluster, for a failure.
func dump(t *testing.T, h *harness, st *backends.RunStatus) {
	t.Helper()
	if st != nil {
		for _, s := range st.Steps {
			t.Logf("step %s: %s %s (%d attempts, %d instances)", s.Name, s.Phase, s.Message, len(s.Attempts), len(s.Instances))
			for _, in := range s.Instances {
				t.Logf("  %s: %s %s", in.Name, in.Phase, in.Message)
			}
		}
	}
	jobs, _ := h.cs.Tracker().List(batchv1.SchemeGroupVersion.WithResource("jobs"), batchv1.SchemeGroupVersion.WithKind("Job"), "default")
	for _, j := range jobs.(*batchv1.JobList).Items {
		t.Logf("job %s: active=%d succeeded=%d failed=%d conditions=%v pods=%d", j.Name, j.Status.Active, j.Status.Succeeded, j.Status.Failed, j.Status.Conditions, len(h.cl.PodsOf(j.Name)))
	}
}

func step(t *testing.T, st *backends.RunStatus, name string) *backends.StepStatus {
	t.Helper()
	s := st.Step(name)
	require.NotNil(t, s, "step %q in %v", name, st)
	return s
}
