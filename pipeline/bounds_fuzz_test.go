package pipeline_test

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/resources"
	"github.com/sluice-ml/sluice/task"
)

// bdFuzzFlags choose where the fuzzed numbers go.
const (
	bdOnDefaults   = 1 << iota // the retry policy, timeout and profile are the pipeline's defaults
	bdFallback                 // OnDemandFallback
	bdFanOut                   // the task is a dynamic fan-out, with the parallelism
	bdPoolWithGPUs             // a node pool whose nodes have the GPU count
	bdMIG                      // MIG slices (migCount) instead of whole GPUs
	bdSharedMemory             // the memory quantity is also /dev/shm
	bdOtherTask                // a second task, downstream, inheriting the defaults
)

// FuzzNumericFields builds pipelines through the public API with random
// numeric fields (retry budgets, backoff, timeouts, GPUs, MIG slices,
// quantities, parallelism) and checks that Validate never panics, that
// whatever Validate accepts compiles on kubejob and argo without a panic
// (an error only for what a backend documents as unsupported), and that
// Backoff.Delay is never negative.
func FuzzNumericFields(f *testing.F) {
	day := int64(24 * time.Hour)
	f.Add(int64(1), int64(2), int64(time.Second), int64(time.Minute), 2.0, int64(time.Hour), int64(0), int64(1), int64(4), int64(0), "16Gi", "4", uint8(0))
	f.Add(int64(task.MaxRetries), int64(0), int64(task.MaxBackoffDelay), int64(0), float64(task.MaxBackoffFactor), int64(task.MaxTimeout), int64(0), int64(resources.MaxGPUs), int64(pipeline.MaxParallelism), int64(0), "8Ei", "8Pi", uint8(bdFanOut))
	f.Add(int64(0), int64(task.MaxRetries), int64(time.Millisecond), int64(0), 1.0, int64(0), int64(task.MaxTimeout), int64(8), int64(0), int64(0), "8Ei", "", uint8(bdFallback|bdPoolWithGPUs))
	f.Add(int64(5_000_000_000), int64(math.MaxInt64), int64(-1), int64(-1), 1e300, int64(math.MaxInt64), int64(math.MinInt64), int64(1<<40), int64(-1), int64(math.MaxInt64), "9Ei", "9Pi", uint8(0xff))
	f.Add(int64(999), int64(2), int64(day), int64(day+1), math.NaN(), int64(-1), int64(365*day+1), int64(17), int64(pipeline.MaxParallelism+1), int64(56), "9223372036854775809", "1e-999", uint8(bdOnDefaults|bdOtherTask))
	f.Add(int64(3), int64(3), int64(time.Second), int64(0), 1.5, int64(time.Millisecond), int64(0), int64(0), int64(1), int64(2), "1n", "1n", uint8(bdMIG|bdSharedMemory))
	f.Fuzz(func(t *testing.T, app, infra, initial, maxDelay int64, factor float64, timeout, pending, gpus, limit, migCount int64, memory, cpu string, flags uint8) {
		r := task.Retry{
			App: int(app), Infra: int(infra),
			Backoff:          task.Backoff{Initial: time.Duration(initial), Factor: factor, Max: time.Duration(maxDelay)},
			OnDemandFallback: flags&bdFallback != 0,
			PendingTimeout:   time.Duration(pending),
		}
		prof := resources.Profile{CPU: cpu, Memory: memory}
		if flags&bdMIG != 0 {
			prof.MIG, prof.MIGCount = "1g.10gb", int(migCount)
		} else {
			prof.GPUs = int(gpus)
		}
		if flags&bdSharedMemory != 0 {
			prof.SharedMemory = memory
		}
		opts := &pipeline.Options{}
		if flags&bdPoolWithGPUs != 0 {
			opts.NodePools = []resources.NodePool{{Name: "gpu", Provider: resources.ProviderGKE, Spot: true, Node: resources.Capacity{GPUs: int(gpus)}}}
			prof.NodePool, prof.Preemptible = "gpu", true
		}
		tk := bdTask()
		if flags&bdOnDefaults != 0 {
			opts.Defaults = pipeline.Defaults{Retry: r, Timeout: time.Duration(timeout), Resources: prof}
		} else {
			tk = tk.WithRetry(r).WithTimeout(time.Duration(timeout)).WithResources(prof)
		}

		var p *pipeline.Pipeline
		mustNotPanic(t, "build", func() {
			p = pipeline.New("fuzz", opts)
			var out pipeline.Ref[bdOut]
			if flags&bdFanOut != 0 {
				fan := pipeline.ForEach(p, tk, pipeline.Const([]int{1, 2}), func(pipeline.Ref[int]) bdIn { return bdIn{} }).Limit(int(limit))
				_ = fan.Collect()
			} else {
				out = pipeline.Add(p, tk, bdIn{}).Output()
			}
			if flags&bdOtherTask != 0 {
				pipeline.Add(p, naUse().WithName("next"), naIn{A: out})
			}
		})

		var err error
		mustNotPanic(t, "Validate", func() { err = p.Validate() })
		for n := range 3 {
			for _, k := range []int{n + 1, int(app), int(infra), r.MaxAttempts(), math.MaxInt} {
				if d := r.Backoff.Delay(k); d < 0 {
					t.Fatalf("%+v: Delay(%d) = %v < 0", r.Backoff, k, d)
				}
			}
		}
		if err != nil {
			if len(pipeline.FieldErrors(err)) == 0 {
				t.Fatalf("Validate returned an error with no field error: %v", err)
			}
			return
		}
		for name, b := range bdBackends() {
			var cerr error
			mustNotPanic(t, "Compile on "+name, func() { _, cerr = pipeline.Compile(t.Context(), p, b, nil) })
			if cerr != nil && !errors.Is(cerr, errors.ErrUnsupported) {
				t.Fatalf("Validate accepted the pipeline but %s cannot compile it: %v", name, cerr)
			}
		}
	})
}

func mustNotPanic(t *testing.T, what string, fn func()) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("%s panicked: %v", what, r)
		}
	}()
	fn()
}
