package pipelinetest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/sluice-ml/sluice/artifact"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/pipeline/pipelinetest"
	"github.com/sluice-ml/sluice/task"
)

// panicOf runs fn and returns what it panicked with, as text, or "".
func panicOf(fn func()) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			msg = fmt.Sprint(r)
		}
	}()
	fn()
	return ""
}

// TestNilAndZeroArgumentsFailTheTest gives every exported function and
// method a nil or zero argument (pipeline, step handle, task, artifact,
// context, func) or a step the pipeline does not have: each fails the
// test with a message that names the misuse, and the steps where a step
// was wrong, never with a nil dereference.
func TestNilAndZeroArgumentsFailTheTest(t *testing.T) {
	const churnSteps = "its steps: load, train, deploy"
	for _, tc := range []struct {
		name string
		fn   func(tb testing.TB)
		want []string
	}{
		{"RunNilPipeline", func(tb testing.TB) {
			pipelinetest.NewEnv(tb).Run(nil)
		}, []string{"Run of a nil *pipeline.Pipeline"}},
		{"RunWithParamsNilPipeline", func(tb testing.TB) {
			pipelinetest.NewEnv(tb).RunWithParams(nil, map[string]string{"lr": "1"})
		}, []string{"Run of a nil *pipeline.Pipeline"}},
		{"StubZeroTask", func(tb testing.TB) {
			pipelinetest.Stub(pipelinetest.NewEnv(tb), task.Task[TrainIn, TrainOut]{}, func(context.Context, TrainIn) (TrainOut, error) { return TrainOut{}, nil })
		}, []string{"Stub of a zero task.Task"}},
		{"StubNilFunc", func(tb testing.TB) {
			pipelinetest.Stub(pipelinetest.NewEnv(tb), train, nil)
		}, []string{`Stub("train") with a nil func`}},
		{"StubOfATaskNoStepUses", func(tb testing.TB) {
			p, _ := build()
			env := pipelinetest.NewEnv(tb)
			pipelinetest.Stub(env, train.WithName("trian"), func(context.Context, TrainIn) (TrainOut, error) { return TrainOut{}, nil })
			env.Run(p)
		}, []string{`Stub("trian"): no step of pipeline "churn" is made from task "trian"`, churnSteps}},
		{"InjectNilHandle", func(tb testing.TB) {
			pipelinetest.NewEnv(tb).Inject(nil, 1, pipelinetest.AppError)
		}, []string{"Inject(application error): a nil step handle"}},
		{"InjectZeroFan", func(tb testing.TB) {
			pipelinetest.NewEnv(tb).Inject(pipeline.Fan[int]{}, 1, pipelinetest.AppError)
		}, []string{"a zero step handle names no step"}},
		{"StepNilHandle", func(tb testing.TB) {
			p, _ := build()
			pipelinetest.NewEnv(tb).Run(p).Step(nil)
		}, []string{"a nil step handle", "the run's steps: load, train, deploy"}},
		{"PhaseZeroStep", func(tb testing.TB) {
			p, _ := build()
			pipelinetest.NewEnv(tb).Run(p).Phase(pipeline.Step[int]{})
		}, []string{"a zero step handle names no step", "the run's steps: load, train, deploy"}},
		{"RanUnknownStep", func(tb testing.TB) {
			p, _ := build()
			q, _, trials := sweep()
			_ = q
			pipelinetest.NewEnv(tb).Run(p).Ran(trials)
		}, []string{`the run of "churn" has no step "trial"`, churnSteps}},
		{"SkippedUnknownStep", func(tb testing.TB) {
			p, _ := build()
			_, _, trials := sweep()
			pipelinetest.NewEnv(tb).Run(p).Skipped(trials)
		}, []string{`has no step "trial"`, churnSteps}},
		{"CachedZeroStep", func(tb testing.TB) {
			p, _ := build()
			pipelinetest.NewEnv(tb).Run(p).Cached(pipeline.Step[DataOut]{})
		}, []string{"a zero step handle"}},
		{"ReasonsOfAnInstanceOfAZeroFan", func(tb testing.TB) {
			p, _ := build()
			pipelinetest.NewEnv(tb).Run(p).Reasons(pipelinetest.Instance(pipeline.Fan[int]{}, 0))
		}, []string{"a zero step handle names no step"}},
		{"OutputZeroStep", func(tb testing.TB) {
			p, _ := build()
			pipelinetest.Output(pipelinetest.NewEnv(tb).Run(p), pipeline.Step[DataOut]{})
		}, []string{"a zero step handle names no step"}},
		{"OutputUnknownStep", func(tb testing.TB) {
			p, _ := build()
			_, load, _ := sweep()
			q := pipeline.New("q", nil)
			pipeline.Add(q, train, TrainIn{Data: pipeline.Const(DataOut{})})
			_ = load
			pipelinetest.Output(pipelinetest.NewEnv(tb).Run(q), pipeline.Add(p, deploy.WithName("ship"), DeployIn{}))
		}, []string{`the run of "q" has no step "ship"; its steps: train`}},
		{"OutputsZeroFan", func(tb testing.TB) {
			p, _, _ := sweep()
			pipelinetest.Outputs(pipelinetest.NewEnv(tb).Run(p), pipeline.Fan[TrainOut]{})
		}, []string{"a zero step handle names no step", "the run's steps: grid, load, trial"}},
		{"StepOfAnInvalidPipeline", func(tb testing.TB) {
			p := pipeline.New("", nil)
			s := pipeline.Add(p, load, struct{}{})
			pipelinetest.NewEnv(tb).Run(p).Step(s)
		}, []string{"the pipeline did not run", "pipeline.name: Required"}},
		{"SeedNoName", func(tb testing.TB) {
			pipelinetest.Seed[artifact.Dataset](pipelinetest.NewEnv(tb), "", []byte("x"))
		}, []string{"Seed with no name"}},
		{"ReadZeroArtifact", func(tb testing.TB) {
			_, _ = pipelinetest.NewEnv(tb).ReadArtifact(artifact.Artifact{})
		}, []string{"ReadArtifact of a zero artifact.Artifact"}},
		{"ArtifactContextNil", func(tb testing.TB) {
			//lint:ignore SA1012 the misuse under test
			pipelinetest.NewEnv(tb).ArtifactContext(nil) //nolint:staticcheck
		}, []string{"ArtifactContext(nil)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var msg string
			p := panicOf(func() { msg = fatalOf(t, tc.fn) })
			assert.Empty(t, p, "a panic instead of a test failure")
			for _, w := range tc.want {
				assert.Contains(t, msg, w)
			}
			assert.Contains(t, msg, "pipelinetest: ")
		})
	}
}

// TestNilReceiversPanicWithTheMisuse calls every method on a nil or zero
// Env, Result and Clock, and NewEnv with no test: there is no test to
// fail, so each panics with a message naming the misuse (not a nil
// dereference's runtime error).
func TestNilReceiversPanicWithTheMisuse(t *testing.T) {
	var nilEnv *pipelinetest.Env
	zeroEnv := &pipelinetest.Env{}
	var nilRes *pipelinetest.Result
	zeroRes := &pipelinetest.Result{}
	var nilClock *pipelinetest.Clock
	p, s := build()
	for _, tc := range []struct {
		name string
		fn   func()
		want string
	}{
		{"NewEnvNil", func() { pipelinetest.NewEnv(nil) }, "NewEnv(nil): pass the test's *testing.T"},
		{"NewEnvNilT", func() { pipelinetest.NewEnv((*testing.T)(nil)) }, "NewEnv(nil)"},
		{"NilEnvRun", func() { nilEnv.Run(p) }, "Run on a nil *Env; create one with pipelinetest.NewEnv(t)"},
		{"NilEnvRunWithParams", func() { nilEnv.RunWithParams(p, nil) }, "RunWithParams on a nil *Env"},
		{"ZeroEnvRun", func() { zeroEnv.Run(p) }, "Run on a zero Env"},
		{"NilEnvInject", func() { nilEnv.Inject(s.Train, 1, pipelinetest.AppError) }, "Inject on a nil *Env"},
		{"ZeroEnvInject", func() { zeroEnv.Inject(s.Train, 1, pipelinetest.AppError) }, "Inject on a zero Env"},
		{"NilEnvStub", func() {
			pipelinetest.Stub(nilEnv, train, func(context.Context, TrainIn) (TrainOut, error) { return TrainOut{}, nil })
		}, "Stub on a nil *Env"},
		{"NilEnvSeed", func() { pipelinetest.Seed[artifact.Dataset](nilEnv, "raw", nil) }, "Seed on a nil *Env"},
		{"ZeroEnvSeed", func() { pipelinetest.Seed[artifact.Dataset](zeroEnv, "raw", nil) }, "Seed on a zero Env"},
		{"NilEnvReadArtifact", func() { _, _ = nilEnv.ReadArtifact(artifact.Artifact{}) }, "ReadArtifact on a nil *Env"},
		{"NilEnvArtifactContext", func() { nilEnv.ArtifactContext(context.Background()) }, "ArtifactContext on a nil *Env"},
		{"NilEnvStore", func() { nilEnv.Store() }, "Store on a nil *Env"},
		{"NilEnvClock", func() { nilEnv.Clock() }, "Clock on a nil *Env"},
		{"NilEnvEnableCache", func() { nilEnv.EnableCache() }, "EnableCache on a nil *Env"},
		{"NilResultErr", func() { _ = nilRes.Err() }, "Err on a nil *Result; use the Result that Env.Run returns"},
		{"ZeroResultErr", func() { _ = zeroRes.Err() }, "Err on a zero Result"},
		{"NilResultOrder", func() { nilRes.Order() }, "Order on a nil *Result"},
		{"NilResultStep", func() { nilRes.Step(s.Train) }, "Step on a nil *Result"},
		{"NilResultPhase", func() { nilRes.Phase(s.Train) }, "Phase on a nil *Result"},
		{"NilResultRan", func() { nilRes.Ran(s.Train) }, "Ran on a nil *Result"},
		{"NilResultSkipped", func() { nilRes.Skipped(s.Train) }, "Skipped on a nil *Result"},
		{"NilResultCached", func() { nilRes.Cached(s.Train) }, "Cached on a nil *Result"},
		{"NilResultAttempts", func() { nilRes.Attempts(s.Train) }, "Attempts on a nil *Result"},
		{"ZeroResultReasons", func() { zeroRes.Reasons(s.Train) }, "Reasons on a zero Result"},
		{"NilResultArtifacts", func() { nilRes.Artifacts() }, "Artifacts on a nil *Result"},
		{"NilResultOutput", func() { pipelinetest.Output(nilRes, s.Train) }, "Output on a nil *Result"},
		{"NilResultOutputs", func() { pipelinetest.Outputs(nilRes, pipeline.Fan[int]{}) }, "Outputs on a nil *Result"},
		{"NilClockNow", func() { nilClock.Now() }, "Clock.Now on a nil *Clock"},
		{"NilClockAdvance", func() { nilClock.Advance(time.Second) }, "Clock.Advance on a nil *Clock"},
		{"NilClockSleep", func() { _ = nilClock.Sleep(context.Background(), time.Second) }, "Clock.Sleep on a nil *Clock"},
		{"NilClockAfterFunc", func() { nilClock.AfterFunc(time.Second, func() {}) }, "Clock.AfterFunc on a nil *Clock"},
		{"AfterFuncNilFunc", func() { pipelinetest.NewClock(pipelinetest.Epoch).AfterFunc(time.Second, nil) }, "Clock.AfterFunc with a nil func"},
		{"SleepNilContext", func() {
			//lint:ignore SA1012 the misuse under test
			_ = pipelinetest.NewClock(pipelinetest.Epoch).Sleep(nil, time.Second) //nolint:staticcheck
		}, "Clock.Sleep(nil, 1s)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, "pipelinetest: ", prefix(panicOf(tc.fn), len("pipelinetest: ")))
			assert.Contains(t, panicOf(tc.fn), tc.want)
		})
	}
}

func prefix(s string, n int) string { return s[:min(n, len(s))] }
