package pipeline_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/argo"
	"github.com/sluice-ml/sluice/backends/kubejob"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/resources"
	"github.com/sluice-ml/sluice/task"
)

// Identifiers in this file start with "bd" because package pipeline_test
// is shared with other test files.

type bdIn struct{ X int }

type bdOut struct{ Y int }

func bdWork(context.Context, bdIn) (bdOut, error) { return bdOut{}, nil }

// bdTask is a Go task with an image, so every backend can compile it.
func bdTask() task.Task[bdIn, bdOut] {
	return task.New("train", bdWork).WithImage("registry.example/train:1")
}

type bdKey struct {
	Field string
	Type  pipeline.ErrorType
}

func bdKeys(err error) []bdKey {
	var ks []bdKey
	for _, fe := range pipeline.FieldErrors(err) {
		ks = append(ks, bdKey{fe.Field, fe.Type})
	}
	return ks
}

const (
	bdInvalid = pipeline.ErrorTypeInvalid
	bdTrain   = "pipeline.tasks[train]."
)

// bdWith returns a pipeline with one task changed by with.
func bdWith(opts *pipeline.Options, with func(task.Task[bdIn, bdOut]) task.Task[bdIn, bdOut]) func() *pipeline.Pipeline {
	return func() *pipeline.Pipeline {
		p := pipeline.New("bounds", opts)
		pipeline.Add(p, with(bdTask()), bdIn{})
		return p
	}
}

func bdRetry(r task.Retry) func() *pipeline.Pipeline {
	return bdWith(nil, func(t task.Task[bdIn, bdOut]) task.Task[bdIn, bdOut] { return t.WithRetry(r) })
}

func bdTimeout(d time.Duration) func() *pipeline.Pipeline {
	return bdWith(nil, func(t task.Task[bdIn, bdOut]) task.Task[bdIn, bdOut] { return t.WithTimeout(d) })
}

func bdRes(r resources.Profile) func() *pipeline.Pipeline {
	return bdWith(nil, func(t task.Task[bdIn, bdOut]) task.Task[bdIn, bdOut] { return t.WithResources(r) })
}

func bdDefaults(d pipeline.Defaults) func() *pipeline.Pipeline {
	return bdWith(&pipeline.Options{Defaults: d}, func(t task.Task[bdIn, bdOut]) task.Task[bdIn, bdOut] { return t })
}

func bdPool(n resources.Capacity) func() *pipeline.Pipeline {
	return bdWith(&pipeline.Options{NodePools: []resources.NodePool{{Name: "gpu", Node: n}}},
		func(t task.Task[bdIn, bdOut]) task.Task[bdIn, bdOut] { return t })
}

// bdFan returns a pipeline with one fan-out over a constant list, changed
// by with.
func bdFan(with func(pipeline.Fan[bdOut]) pipeline.Fan[bdOut]) func() *pipeline.Pipeline {
	return func() *pipeline.Pipeline {
		p := pipeline.New("bounds", nil)
		f := pipeline.ForEach(p, bdTask(), pipeline.Const([]int{1, 2, 3}), func(x pipeline.Ref[int]) bdIn { return bdIn{} })
		with(f)
		return p
	}
}

// TestValidateRejectsNumbersOutOfRange is the table of the class "numbers
// without bounds": each numeric field, just past its range, at both ends
// and far out, at the task and in the pipeline's defaults.
func TestValidateRejectsNumbersOutOfRange(t *testing.T) {
	const day = 24 * time.Hour
	tests := []struct {
		name  string
		build func() *pipeline.Pipeline
		want  []bdKey
	}{
		// Retry budgets.
		{"AppNegative", bdRetry(task.Retry{App: -1}), []bdKey{{bdTrain + "retry.app", bdInvalid}}},
		{"AppPastMax", bdRetry(task.Retry{App: task.MaxRetries + 1}), []bdKey{{bdTrain + "retry.app", bdInvalid}}},
		{"AppAboveInt32", bdRetry(task.Retry{App: 5_000_000_000}), []bdKey{{bdTrain + "retry.app", bdInvalid}}},
		{"AppMaxInt", bdRetry(task.Retry{App: math.MaxInt}), []bdKey{{bdTrain + "retry.app", bdInvalid}}},
		{"AppMinInt", bdRetry(task.Retry{App: math.MinInt}), []bdKey{{bdTrain + "retry.app", bdInvalid}}},
		{"InfraNegative", bdRetry(task.Retry{Infra: -1}), []bdKey{{bdTrain + "retry.infra", bdInvalid}}},
		{"InfraPastMax", bdRetry(task.Retry{Infra: task.MaxRetries + 1}), []bdKey{{bdTrain + "retry.infra", bdInvalid}}},
		{"InfraHuge", bdRetry(task.Retry{Infra: 1 << 40}), []bdKey{{bdTrain + "retry.infra", bdInvalid}}},
		{"InfraMaxInt", bdRetry(task.Retry{Infra: math.MaxInt}), []bdKey{{bdTrain + "retry.infra", bdInvalid}}},
		{"SumPastMax", bdRetry(task.Retry{App: 600, Infra: 401}), []bdKey{{bdTrain + "retry.infra", bdInvalid}}},
		{"SumPastMaxByOne", bdRetry(task.Retry{App: task.MaxRetries, Infra: 1}), []bdKey{{bdTrain + "retry.infra", bdInvalid}}},
		{"SumOverflowsInt", bdRetry(task.Retry{App: math.MaxInt, Infra: math.MaxInt}), []bdKey{{bdTrain + "retry.app", bdInvalid}, {bdTrain + "retry.infra", bdInvalid}}},
		{"OnDemandFallbackWithHugeInfra", bdRetry(task.Retry{Infra: math.MaxInt32 + 1, OnDemandFallback: true}), []bdKey{{bdTrain + "retry.infra", bdInvalid}}},

		// Backoff.
		{"InitialNegative", bdRetry(task.Retry{App: 1, Backoff: task.Backoff{Initial: -time.Second}}), []bdKey{{bdTrain + "retry.backoff.initial", bdInvalid}}},
		{"InitialPastMax", bdRetry(task.Retry{App: 1, Backoff: task.Backoff{Initial: task.MaxBackoffDelay + 1}}), []bdKey{{bdTrain + "retry.backoff.initial", bdInvalid}}},
		{"InitialMaxInt64", bdRetry(task.Retry{App: 1, Backoff: task.Backoff{Initial: math.MaxInt64}}), []bdKey{{bdTrain + "retry.backoff.initial", bdInvalid}}},
		{"MaxNegative", bdRetry(task.Retry{App: 1, Backoff: task.Backoff{Max: -1}}), []bdKey{{bdTrain + "retry.backoff.max", bdInvalid}}},
		{"MaxPastMax", bdRetry(task.Retry{App: 1, Backoff: task.Backoff{Initial: time.Second, Max: task.MaxBackoffDelay + time.Second}}), []bdKey{{bdTrain + "retry.backoff.max", bdInvalid}}},
		{"MaxBelowInitial", bdRetry(task.Retry{App: 1, Backoff: task.Backoff{Initial: time.Minute, Max: time.Second}}), []bdKey{{bdTrain + "retry.backoff.max", bdInvalid}}},
		{"FactorBelowOne", bdRetry(task.Retry{App: 1, Backoff: task.Backoff{Initial: time.Second, Factor: 0.5}}), []bdKey{{bdTrain + "retry.backoff.factor", bdInvalid}}},
		{"FactorNegative", bdRetry(task.Retry{App: 1, Backoff: task.Backoff{Initial: time.Second, Factor: -2}}), []bdKey{{bdTrain + "retry.backoff.factor", bdInvalid}}},
		{"FactorPastMax", bdRetry(task.Retry{App: 1, Backoff: task.Backoff{Initial: time.Second, Factor: task.MaxBackoffFactor + 1}}), []bdKey{{bdTrain + "retry.backoff.factor", bdInvalid}}},
		{"FactorJustPastMax", bdRetry(task.Retry{App: 1, Backoff: task.Backoff{Initial: time.Second, Factor: math.Nextafter(task.MaxBackoffFactor, math.Inf(1))}}), []bdKey{{bdTrain + "retry.backoff.factor", bdInvalid}}},
		{"FactorAboveInt32", bdRetry(task.Retry{App: 1, Backoff: task.Backoff{Initial: time.Second, Factor: 1e10}}), []bdKey{{bdTrain + "retry.backoff.factor", bdInvalid}}},
		{"FactorMaxFloat", bdRetry(task.Retry{App: 1, Backoff: task.Backoff{Initial: time.Second, Factor: math.MaxFloat64}}), []bdKey{{bdTrain + "retry.backoff.factor", bdInvalid}}},
		{"FactorNaN", bdRetry(task.Retry{App: 1, Backoff: task.Backoff{Initial: time.Second, Factor: math.NaN()}}), []bdKey{{bdTrain + "retry.backoff.factor", bdInvalid}}},
		{"FactorInf", bdRetry(task.Retry{App: 1, Backoff: task.Backoff{Initial: time.Second, Factor: math.Inf(1)}}), []bdKey{{bdTrain + "retry.backoff.factor", bdInvalid}}},
		{"FactorNegInf", bdRetry(task.Retry{App: 1, Backoff: task.Backoff{Initial: time.Second, Factor: math.Inf(-1)}}), []bdKey{{bdTrain + "retry.backoff.factor", bdInvalid}}},

		// Timeouts.
		{"PendingTimeoutNegative", bdRetry(task.Retry{Infra: 1, PendingTimeout: -time.Second}), []bdKey{{bdTrain + "retry.pendingTimeout", bdInvalid}}},
		{"PendingTimeoutPastMax", bdRetry(task.Retry{Infra: 1, PendingTimeout: task.MaxTimeout + 1}), []bdKey{{bdTrain + "retry.pendingTimeout", bdInvalid}}},
		{"PendingTimeoutMaxInt64", bdRetry(task.Retry{Infra: 1, PendingTimeout: math.MaxInt64}), []bdKey{{bdTrain + "retry.pendingTimeout", bdInvalid}}},
		{"TimeoutNegative", bdTimeout(-time.Nanosecond), []bdKey{{bdTrain + "timeout", bdInvalid}}},
		{"TimeoutPastMax", bdTimeout(task.MaxTimeout + time.Second), []bdKey{{bdTrain + "timeout", bdInvalid}}},
		{"TimeoutPastInt32Seconds", bdTimeout((math.MaxInt32 + 1) * time.Second), []bdKey{{bdTrain + "timeout", bdInvalid}}},
		{"TimeoutMaxInt64", bdTimeout(math.MaxInt64), []bdKey{{bdTrain + "timeout", bdInvalid}}},
		{"TimeoutMinInt64", bdTimeout(math.MinInt64), []bdKey{{bdTrain + "timeout", bdInvalid}}},

		// The same rules on the pipeline's defaults, reported once there.
		{"DefaultsAppPastMax", bdDefaults(pipeline.Defaults{Retry: task.Retry{App: task.MaxRetries + 1}}), []bdKey{{"pipeline.defaults.retry.app", bdInvalid}}},
		{"DefaultsInfraHuge", bdDefaults(pipeline.Defaults{Retry: task.Retry{Infra: math.MaxInt}}), []bdKey{{"pipeline.defaults.retry.infra", bdInvalid}}},
		{"DefaultsSumPastMax", bdDefaults(pipeline.Defaults{Retry: task.Retry{App: 999, Infra: 2}}), []bdKey{{"pipeline.defaults.retry.infra", bdInvalid}}},
		{"DefaultsFactorPastMax", bdDefaults(pipeline.Defaults{Retry: task.Retry{App: 1, Backoff: task.Backoff{Initial: time.Second, Factor: 1e300}}}), []bdKey{{"pipeline.defaults.retry.backoff.factor", bdInvalid}}},
		{"DefaultsInitialPastMax", bdDefaults(pipeline.Defaults{Retry: task.Retry{App: 1, Backoff: task.Backoff{Initial: 2 * day}}}), []bdKey{{"pipeline.defaults.retry.backoff.initial", bdInvalid}}},
		{"DefaultsPendingTimeoutPastMax", bdDefaults(pipeline.Defaults{Retry: task.Retry{Infra: 1, PendingTimeout: 400 * day}}), []bdKey{{"pipeline.defaults.retry.pendingTimeout", bdInvalid}}},
		{"DefaultsTimeoutPastMax", bdDefaults(pipeline.Defaults{Timeout: task.MaxTimeout + 1}), []bdKey{{"pipeline.defaults.timeout", bdInvalid}}},
		{"DefaultsTimeoutNegative", bdDefaults(pipeline.Defaults{Timeout: -time.Hour}), []bdKey{{"pipeline.defaults.timeout", bdInvalid}}},
		{"DefaultsGPUsPastMax", bdDefaults(pipeline.Defaults{Resources: resources.Profile{GPUs: resources.MaxGPUs + 1}}), []bdKey{{"pipeline.defaults.resources.gpus", bdInvalid}}},

		// Whole GPUs, with and without a pool.
		{"GPUsNegative", bdRes(resources.Profile{GPUs: -1}), []bdKey{{bdTrain + "resources.gpus", bdInvalid}}},
		{"GPUsPastMax", bdRes(resources.Profile{GPUs: resources.MaxGPUs + 1}), []bdKey{{bdTrain + "resources.gpus", bdInvalid}}},
		{"GPUsHuge", bdRes(resources.Profile{GPUs: 1 << 40}), []bdKey{{bdTrain + "resources.gpus", bdInvalid}}},
		{"GPUsMaxInt", bdRes(resources.Profile{GPUs: math.MaxInt}), []bdKey{{bdTrain + "resources.gpus", bdInvalid}}},
		{"GPUsMinInt", bdRes(resources.Profile{GPUs: math.MinInt}), []bdKey{{bdTrain + "resources.gpus", bdInvalid}}},
		{"PoolNodeGPUsPastMax", bdPool(resources.Capacity{GPUs: resources.MaxGPUs + 1}), []bdKey{{"pipeline.nodePools[0].node.gpus", bdInvalid}}},
		{"PoolNodeGPUsNegative", bdPool(resources.Capacity{GPUs: -8}), []bdKey{{"pipeline.nodePools[0].node.gpus", bdInvalid}}},
		{"PoolNodeGPUsMaxInt", bdPool(resources.Capacity{GPUs: math.MaxInt}), []bdKey{{"pipeline.nodePools[0].node.gpus", bdInvalid}}},
		{"MIGCountNegative", bdRes(resources.Profile{MIG: "1g.10gb", MIGCount: -1}), []bdKey{{bdTrain + "resources.migCount", bdInvalid}}},
		{"MIGCountMaxInt", bdRes(resources.Profile{MIG: "1g.10gb", MIGCount: math.MaxInt}), []bdKey{{bdTrain + "resources.migCount", bdInvalid}}},

		// Quantities.
		{"MemoryPast8Ei", bdRes(resources.Profile{Memory: "9Ei"}), []bdKey{{bdTrain + "resources.memory", bdInvalid}}},
		{"MemoryJustPast8Ei", bdRes(resources.Profile{Memory: "9223372036854775809"}), []bdKey{{bdTrain + "resources.memory", bdInvalid}}},
		{"MemoryExponent", bdRes(resources.Profile{Memory: "1e19"}), []bdKey{{bdTrain + "resources.memory", bdInvalid}}},
		{"EphemeralStoragePast8Ei", bdRes(resources.Profile{EphemeralStorage: "10Ei"}), []bdKey{{bdTrain + "resources.ephemeralStorage", bdInvalid}}},
		{"SharedMemoryPast8Ei", bdRes(resources.Profile{SharedMemory: "9223372036854775808.5"}), []bdKey{{bdTrain + "resources.sharedMemory", bdInvalid}}},
		{"CPUPast8Pi", bdRes(resources.Profile{CPU: "9Pi"}), []bdKey{{bdTrain + "resources.cpu", bdInvalid}}},
		{"CPUAt8Ei", bdRes(resources.Profile{CPU: "8Ei"}), []bdKey{{bdTrain + "resources.cpu", bdInvalid}}},
		{"CPUJustPast8Pi", bdRes(resources.Profile{CPU: "9007199254740993"}), []bdKey{{bdTrain + "resources.cpu", bdInvalid}}},
		{"PoolNodeCPUPast8Pi", bdPool(resources.Capacity{CPU: "9Pi"}), []bdKey{{"pipeline.nodePools[0].node.cpu", bdInvalid}}},
		{"PoolNodeMemoryPast8Ei", bdPool(resources.Capacity{Memory: "16Ei"}), []bdKey{{"pipeline.nodePools[0].node.memory", bdInvalid}}},

		// Fan-outs.
		{"LimitNegative", bdFan(func(f pipeline.Fan[bdOut]) pipeline.Fan[bdOut] { return f.Limit(-1) }), []bdKey{{bdTrain + "forEach.parallelism", bdInvalid}}},
		{"LimitPastMax", bdFan(func(f pipeline.Fan[bdOut]) pipeline.Fan[bdOut] { return f.Limit(pipeline.MaxParallelism + 1) }), []bdKey{{bdTrain + "forEach.parallelism", bdInvalid}}},
		{"LimitMaxInt", bdFan(func(f pipeline.Fan[bdOut]) pipeline.Fan[bdOut] { return f.Limit(math.MaxInt) }), []bdKey{{bdTrain + "forEach.parallelism", bdInvalid}}},
		{"TolerateNegative", bdFan(func(f pipeline.Fan[bdOut]) pipeline.Fan[bdOut] { return f.Tolerate(-1) }), []bdKey{{bdTrain + "forEach.maxFailed", bdInvalid}}},
		{"TolerateFractionPastOne", bdFan(func(f pipeline.Fan[bdOut]) pipeline.Fan[bdOut] { return f.TolerateFraction(1.5) }), []bdKey{{bdTrain + "forEach.maxFailedFraction", bdInvalid}}},
		{"TolerateFractionNaN", bdFan(func(f pipeline.Fan[bdOut]) pipeline.Fan[bdOut] { return f.TolerateFraction(math.NaN()) }), []bdKey{{bdTrain + "forEach.maxFailedFraction", bdInvalid}}},

		// Every out-of-range field of one task, in one pass.
		{"EveryNumberAtOnce", bdWith(nil, func(t task.Task[bdIn, bdOut]) task.Task[bdIn, bdOut] {
			return t.WithRetry(task.Retry{App: -1, Infra: math.MaxInt, Backoff: task.Backoff{Initial: -1, Factor: 1e9, Max: 1000 * day}, PendingTimeout: -1}).
				WithTimeout(math.MaxInt64).
				WithResources(resources.Profile{GPUs: 99, Memory: "99Ei"})
		}), []bdKey{
			{bdTrain + "retry.app", bdInvalid},
			{bdTrain + "retry.infra", bdInvalid},
			{bdTrain + "retry.backoff.initial", bdInvalid},
			{bdTrain + "retry.backoff.max", bdInvalid},
			{bdTrain + "retry.backoff.factor", bdInvalid},
			{bdTrain + "retry.pendingTimeout", bdInvalid},
			{bdTrain + "timeout", bdInvalid},
			{bdTrain + "resources.memory", bdInvalid},
			{bdTrain + "resources.gpus", bdInvalid},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.build().Validate()
			require.Error(t, err)
			assert.Equal(t, tc.want, bdKeys(err), "%v", err)
		})
	}
}

// bdBoundary is one numeric field: build(true) sets it to the largest
// value its range accepts, build(false) to one step past it.
type bdBoundary struct {
	name  string
	field string
	build func(atMax bool) *pipeline.Pipeline
}

func bdPick[T any](atMax bool, max, past T) T {
	if atMax {
		return max
	}
	return past
}

func bdBoundaries() []bdBoundary {
	retry := func(f func(atMax bool) task.Retry) func(bool) *pipeline.Pipeline {
		return func(atMax bool) *pipeline.Pipeline { return bdRetry(f(atMax))() }
	}
	res := func(f func(atMax bool) resources.Profile) func(bool) *pipeline.Pipeline {
		return func(atMax bool) *pipeline.Pipeline { return bdRes(f(atMax))() }
	}
	backoff := func(b task.Backoff) task.Retry {
		return task.Retry{App: 3, Infra: 2, Backoff: b}
	}
	return []bdBoundary{
		{"App", bdTrain + "retry.app", retry(func(m bool) task.Retry { return task.Retry{App: bdPick(m, task.MaxRetries, task.MaxRetries+1)} })},
		{"Infra", bdTrain + "retry.infra", retry(func(m bool) task.Retry {
			return task.Retry{Infra: bdPick(m, task.MaxRetries, task.MaxRetries+1), OnDemandFallback: true}
		})},
		{"AppPlusInfra", bdTrain + "retry.infra", retry(func(m bool) task.Retry {
			return task.Retry{App: task.MaxRetries / 2, Infra: bdPick(m, task.MaxRetries/2, task.MaxRetries/2+1)}
		})},
		{"AppWithTimeout", bdTrain + "retry.app", func(m bool) *pipeline.Pipeline {
			// kubejob makes one Job per application retry of a timed-out task.
			return bdWith(nil, func(t task.Task[bdIn, bdOut]) task.Task[bdIn, bdOut] {
				return t.WithRetry(task.Retry{App: bdPick(m, task.MaxRetries, task.MaxRetries+1)}).WithTimeout(time.Minute)
			})()
		}},
		{"BackoffInitial", bdTrain + "retry.backoff.initial", retry(func(m bool) task.Retry {
			return backoff(task.Backoff{Initial: bdPick(m, task.MaxBackoffDelay, task.MaxBackoffDelay+1)})
		})},
		{"BackoffMax", bdTrain + "retry.backoff.max", retry(func(m bool) task.Retry {
			return backoff(task.Backoff{Initial: time.Second, Max: bdPick(m, task.MaxBackoffDelay, task.MaxBackoffDelay+1)})
		})},
		{"BackoffFactor", bdTrain + "retry.backoff.factor", retry(func(m bool) task.Retry {
			return task.Retry{App: task.MaxRetries, Backoff: task.Backoff{Initial: time.Millisecond, Factor: bdPick(m, float64(task.MaxBackoffFactor), task.MaxBackoffFactor+1)}}
		})},
		{"BackoffFactorMin", bdTrain + "retry.backoff.factor", retry(func(m bool) task.Retry {
			return backoff(task.Backoff{Initial: time.Second, Factor: bdPick(m, 1, math.Nextafter(1, 0))})
		})},
		{"Timeout", bdTrain + "timeout", func(m bool) *pipeline.Pipeline {
			return bdTimeout(bdPick(m, task.MaxTimeout, task.MaxTimeout+1))()
		}},
		{"DefaultTimeout", "pipeline.defaults.timeout", func(m bool) *pipeline.Pipeline {
			return bdDefaults(pipeline.Defaults{Timeout: bdPick(m, task.MaxTimeout, task.MaxTimeout+1)})()
		}},
		{"GPUs", bdTrain + "resources.gpus", res(func(m bool) resources.Profile {
			return resources.Profile{GPUs: bdPick(m, resources.MaxGPUs, resources.MaxGPUs+1)}
		})},
		{"Memory", bdTrain + "resources.memory", res(func(m bool) resources.Profile {
			return resources.Profile{Memory: bdPick(m, "8Ei", "9223372036854775809")}
		})},
		{"SharedMemory", bdTrain + "resources.sharedMemory", res(func(m bool) resources.Profile {
			return resources.Profile{SharedMemory: bdPick(m, "8Ei", "8.1Ei")}
		})},
		{"EphemeralStorage", bdTrain + "resources.ephemeralStorage", res(func(m bool) resources.Profile {
			return resources.Profile{EphemeralStorage: bdPick(m, "8Ei", "9Ei")}
		})},
		{"CPU", bdTrain + "resources.cpu", res(func(m bool) resources.Profile {
			return resources.Profile{CPU: bdPick(m, "8Pi", "9007199254740993")}
		})},
		{"Parallelism", bdTrain + "forEach.parallelism", func(m bool) *pipeline.Pipeline {
			return bdFan(func(f pipeline.Fan[bdOut]) pipeline.Fan[bdOut] {
				return f.Limit(bdPick(m, pipeline.MaxParallelism, pipeline.MaxParallelism+1))
			})()
		}},
	}
}

// bdBackends are the cluster backends, compile only: no cluster.
func bdBackends() map[string]backends.Backend {
	pod := kubepod.Options{Image: "registry.example/pipeline:1", Command: []string{"/pipeline"}}
	return map[string]backends.Backend{
		"kubejob": kubejob.New(nil, &kubejob.Options{Pod: pod}),
		"argo":    argo.New(nil, &argo.Options{Pod: pod}),
	}
}

// TestNumbersAtTheirBoundsCompile builds a pipeline at the largest value
// of each numeric field's range, which Validate accepts and every backend
// compiles without a panic or an error, and one step past it, which
// Validate rejects at that field.
func TestNumbersAtTheirBoundsCompile(t *testing.T) {
	for _, bd := range bdBoundaries() {
		t.Run(bd.name, func(t *testing.T) {
			p := bd.build(true)
			require.NoError(t, p.Validate())
			for name, b := range bdBackends() {
				var art backends.Artifact
				var err error
				require.NotPanics(t, func() { art, err = pipeline.Compile(t.Context(), p, b, nil) }, name)
				require.NoError(t, err, name)
				assert.NotEmpty(t, art.Documents(), name)
			}

			err := bd.build(false).Validate()
			assert.Contains(t, bdKeys(err), bdKey{bd.field, bdInvalid}, "%v", err)
			for name, b := range bdBackends() {
				_, cerr := pipeline.Compile(t.Context(), bd.build(false), b, nil)
				assert.Contains(t, bdKeys(cerr), bdKey{bd.field, bdInvalid}, name)
			}
		})
	}
}

// The largest accepted values come out of each backend as themselves:
// nothing is truncated to 32 bits or wrapped.
func TestNumbersAtTheirBoundsAreRenderedExactly(t *testing.T) {
	p := bdWith(nil, func(t task.Task[bdIn, bdOut]) task.Task[bdIn, bdOut] {
		return t.WithRetry(task.Retry{App: task.MaxRetries, Backoff: task.Backoff{Initial: time.Second, Factor: task.MaxBackoffFactor}}).
			WithTimeout(task.MaxTimeout)
	})()
	b := bdBackends()
	art, err := pipeline.Compile(t.Context(), p, b["kubejob"], nil)
	require.NoError(t, err)
	docs := bdJoin(art.Documents())
	assert.Contains(t, docs, "backoffLimit: 1000")
	assert.Contains(t, docs, "activeDeadlineSeconds: 31536000")

	art, err = pipeline.Compile(t.Context(), p, b["argo"], nil)
	require.NoError(t, err)
	docs = bdJoin(art.Documents())
	assert.Contains(t, docs, "limit: 1000")
	assert.Contains(t, docs, "factor: 100")
	assert.Contains(t, docs, "cap: 24h0m0s")
	assert.Contains(t, docs, "activeDeadlineSeconds: 31536000")
}

func bdJoin(docs [][]byte) string {
	var s string
	for _, d := range docs {
		s += string(d) + "---\n"
	}
	return s
}

// Backoff.Delay is never negative and never above its cap, for every
// retry a policy in range allows.
func TestBackoffDelayStaysInRange(t *testing.T) {
	for _, b := range []task.Backoff{
		{Initial: time.Millisecond, Factor: task.MaxBackoffFactor},
		{Initial: task.MaxBackoffDelay, Factor: task.MaxBackoffFactor},
		{Initial: time.Nanosecond},
		{Initial: time.Second, Factor: 1},
		{Initial: time.Second, Factor: math.Nextafter(1, 2)}, // d×f rounds to d
		{Initial: time.Second, Factor: 2, Max: time.Minute},
	} {
		require.NoError(t, task.Retry{App: 1, Backoff: b}.Validate())
		cap := b.Max
		if cap == 0 {
			cap = task.MaxBackoffDelay
		}
		prev := time.Duration(0)
		for n := 1; n <= task.MaxRetries; n++ {
			d := b.Delay(n)
			require.GreaterOrEqual(t, d, prev, "%+v: Delay(%d)", b, n)
			require.LessOrEqual(t, d, cap, "%+v: Delay(%d)", b, n)
			prev = d
		}
		require.LessOrEqual(t, b.Delay(math.MaxInt), cap, "%+v: Delay(MaxInt)", b)
	}
}
