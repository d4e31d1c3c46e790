package pipelinetest_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/pipeline/pipelinetest"
	"github.com/sluice-ml/sluice/task"
)

// fakeTB records the first Fatalf (or Fatal) and stops the goroutine
// that called it, as testing.T does; everything else goes to the real T.
type fakeTB struct {
	testing.TB
	mu    sync.Mutex
	fatal string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	if f.fatal == "" {
		f.fatal = fmt.Sprintf(format, args...)
	}
	f.mu.Unlock()
	runtime.Goexit()
}

func (f *fakeTB) Fatal(args ...any) { f.Fatalf("%s", fmt.Sprint(args...)) }

// fatalOf runs fn with a fakeTB in its own goroutine and returns the
// message of the Fatalf that stopped it, or "" if none did.
func fatalOf(t *testing.T, fn func(tb testing.TB)) string {
	t.Helper()
	tb := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(tb)
	}()
	<-done
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return tb.fatal
}

// sweep is a pipeline with a ForEach fan-out of three trials, each
// retried once on infrastructure failures.
func sweep() (*pipeline.Pipeline, pipeline.Step[DataOut], pipeline.Fan[TrainOut]) {
	p := pipeline.New("sweep", nil)
	grid := pipeline.Add(p, task.New("grid", func(context.Context, struct{}) ([]float64, error) {
		return []float64{0.3, 0.1, 0.2}, nil
	}), struct{}{})
	data := pipeline.Add(p, load, struct{}{})
	trial := task.New("trial", func(ctx context.Context, in TrialIn) (TrainOut, error) {
		return TrainOut{Accuracy: 1 - in.LR.Get()}, nil
	}).WithRetry(task.Retry{Infra: 1})
	trials := pipeline.ForEach(p, trial, grid.Output(), func(lr pipeline.Ref[float64]) TrialIn {
		return TrialIn{Data: data.Output(), LR: lr}
	})
	return p, data, trials
}

func TestInjectOneInstance(t *testing.T) {
	p, _, trials := sweep()
	env := pipelinetest.NewEnv(t)
	env.Inject(pipelinetest.Instance(trials, 1), 1, pipelinetest.Preemption)

	res := env.Run(p)

	require.NoError(t, res.Err())
	assert.Equal(t, []string{"grid", "load", "trial[0]", "trial[1]", "trial[1]", "trial[2]"}, res.Order())
	assert.Equal(t, []backends.Reason{""}, res.Reasons(pipelinetest.Instance(trials, 0)))
	assert.Equal(t, []backends.Reason{"infra", ""}, res.Reasons(pipelinetest.Instance(trials, 1)))
	assert.Len(t, res.Attempts(pipelinetest.Instance(trials, 2)), 1)
	assert.Equal(t, backends.PhaseSucceeded, res.Phase(pipelinetest.Instance(trials, 1)))
}

func TestInjectOnInstanceWinsOverTheWholeFanOut(t *testing.T) {
	p, _, trials := sweep()
	env := pipelinetest.NewEnv(t)
	env.Inject(trials, 1, pipelinetest.Preemption)
	env.Inject(pipelinetest.Instance(trials, 2), 1, pipelinetest.AppError)

	res := env.Run(p)

	require.Error(t, res.Err())
	assert.Equal(t, []backends.Reason{"infra", ""}, res.Reasons(pipelinetest.Instance(trials, 0)))
	assert.Equal(t, []backends.Reason{"app"}, res.Reasons(pipelinetest.Instance(trials, 2)))
}

// TestMisuseFailsTheTest checks that a handle the run cannot honour fails
// the test with a message that lists what there is, instead of doing
// nothing.
func TestMisuseFailsTheTest(t *testing.T) {
	other := pipeline.New("other", nil)
	elsewhere := pipeline.Add(other, deploy, DeployIn{Model: pipeline.Const(TrainOut{})})
	_, loadStep, trials := sweep()
	_, churnSteps := build()

	for _, tc := range []struct {
		name string
		fn   func(tb testing.TB)
		want string
	}{
		{"InjectUnknownStep", func(tb testing.TB) {
			p, _, _ := sweep()
			env := pipelinetest.NewEnv(tb)
			env.Inject(elsewhere, 1, pipelinetest.AppError)
			env.Run(p)
		}, `Inject("deploy"): pipeline "sweep" has no step "deploy"; its steps: grid, load, trial`},
		{"InjectZeroStep", func(tb testing.TB) {
			pipelinetest.NewEnv(tb).Inject(pipeline.Step[int]{}, 1, pipelinetest.AppError)
		}, "a zero step handle names no step"},
		{"InjectAttemptZero", func(tb testing.TB) {
			pipelinetest.NewEnv(tb).Inject(loadStep, 0, pipelinetest.AppError)
		}, "attempts are numbered from 1"},
		{"InjectNoFault", func(tb testing.TB) {
			pipelinetest.NewEnv(tb).Inject(loadStep, 1, 0)
		}, "not a fault"},
		{"InjectNegativeInstance", func(tb testing.TB) {
			pipelinetest.NewEnv(tb).Inject(pipelinetest.Instance(trials, -1), 1, pipelinetest.AppError)
		}, "instances are numbered from 0"},
		{"InjectInstanceOfAZeroFan", func(tb testing.TB) {
			pipelinetest.NewEnv(tb).Inject(pipelinetest.Instance(pipeline.Fan[DataOut]{}, 0), 1, pipelinetest.AppError)
		}, "a zero step handle names no step"},
		{"InjectInstanceOfAPlainStep", func(tb testing.TB) {
			// A fan-out of train in another pipeline; in build's, train
			// is a plain step.
			q := pipeline.New("q", nil)
			trains := pipeline.ForEach(q, train, pipeline.Const([]int{1}), func(pipeline.Ref[int]) TrainIn { return TrainIn{} })
			p, _ := build()
			env := pipelinetest.NewEnv(tb)
			env.Inject(pipelinetest.Instance(trains, 0), 1, pipelinetest.AppError)
			env.Run(p)
		}, `Inject("train[0]"): step "train" of pipeline "churn" is not a ForEach fan-out; its fan-outs: none`},
		{"InjectInstanceBeyondTheFanOut", func(tb testing.TB) {
			p, _, trials := sweep()
			env := pipelinetest.NewEnv(tb)
			env.Inject(pipelinetest.Instance(trials, 3), 1, pipelinetest.AppError)
			env.Run(p)
		}, `Inject("trial[3]"): fan-out "trial" ran 3 instances (0 to 2)`},
		{"ReasonsOfUnknownStep", func(tb testing.TB) {
			p, _, _ := sweep()
			pipelinetest.NewEnv(tb).Run(p).Reasons(elsewhere)
		}, `the run of "sweep" has no step "deploy"; its steps: grid, load, trial`},
		{"AttemptsOfUnknownStep", func(tb testing.TB) {
			p, _, _ := sweep()
			pipelinetest.NewEnv(tb).Run(p).Attempts(churnSteps.Train)
		}, `has no step "train"; its steps: grid, load, trial`},
		{"AttemptsOfAWholeFanOut", func(tb testing.TB) {
			p, _, trials := sweep()
			pipelinetest.NewEnv(tb).Run(p).Attempts(trials)
		}, `Attempts("trial"): a fan-out's attempts are per instance`},
		{"ReasonsOfAnInstanceBeyondTheFanOut", func(tb testing.TB) {
			p, _, trials := sweep()
			pipelinetest.NewEnv(tb).Run(p).Reasons(pipelinetest.Instance(trials, 7))
		}, `fan-out "trial" ran 3 instances, so none is "trial[7]"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Contains(t, fatalOf(t, tc.fn), tc.want)
		})
	}
}

// TestInjectIsCheckedOnlyByTheNextRun checks that a fault already checked
// against one pipeline keeps applying, without complaint, to an Env's
// later runs of other pipelines.
func TestInjectIsCheckedOnlyByTheNextRun(t *testing.T) {
	p, s := build()
	q, _, _ := sweep()
	env := pipelinetest.NewEnv(t)
	stubTrain(env, 0.95)
	env.Inject(s.Train, 1, pipelinetest.AppError)

	require.NoError(t, env.Run(p).Err(), "App: 1 allows the retry")
	require.NoError(t, env.Run(q).Err())
}
