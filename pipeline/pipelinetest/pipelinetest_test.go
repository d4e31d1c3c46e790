package pipelinetest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/artifact"
	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/pipeline/pipelinetest"
	"github.com/sluice-ml/sluice/task"
)

type DataOut struct{ Rows int }
type TrainIn struct {
	Data pipeline.Ref[DataOut]
	LR   float64
}
type TrainOut struct{ Accuracy float64 }
type DeployIn struct{ Model pipeline.Ref[TrainOut] }

var (
	load = task.New("load", func(ctx context.Context, _ struct{}) (DataOut, error) {
		return DataOut{Rows: 100}, nil
	})
	train = task.New("train", func(ctx context.Context, in TrainIn) (TrainOut, error) {
		return TrainOut{}, errors.New("the real trainer needs a GPU")
	}).WithRetry(task.Retry{App: 1, Infra: 2, Backoff: task.Backoff{Initial: time.Hour}}).WithTimeout(2 * time.Hour)
	deploy = task.New("deploy", func(ctx context.Context, in DeployIn) (string, error) {
		return fmt.Sprintf("deployed model with accuracy %.2f", in.Model.Get().Accuracy), nil
	})
)

type steps struct {
	Load   pipeline.Step[DataOut]
	Train  pipeline.Step[TrainOut]
	Deploy pipeline.Step[string]
}

func build() (*pipeline.Pipeline, steps) {
	p := pipeline.New("churn", nil)
	var s steps
	s.Load = pipeline.Add(p, load, struct{}{})
	s.Train = pipeline.Add(p, train, TrainIn{Data: s.Load.Output(), LR: 0.1})
	s.Deploy = pipeline.Add(p, deploy, DeployIn{Model: s.Train.Output()}).
		When(pipeline.Ge(pipeline.Field[float64](s.Train.Output(), "Accuracy"), 0.9))
	return p, s
}

func stubTrain(env *pipelinetest.Env, acc float64) {
	pipelinetest.Stub(env, train, func(ctx context.Context, in TrainIn) (TrainOut, error) {
		return TrainOut{Accuracy: acc * float64(in.Data.Get().Rows) / 100}, nil
	})
}

func TestStubsAndOutputs(t *testing.T) {
	p, s := build()
	env := pipelinetest.NewEnv(t)
	stubTrain(env, 0.95)

	res := env.Run(p)

	require.NoError(t, res.Err())
	assert.Equal(t, TrainOut{Accuracy: 0.95}, pipelinetest.Output(res, s.Train))
	assert.Equal(t, "deployed model with accuracy 0.95", pipelinetest.Output(res, s.Deploy))
	assert.True(t, res.Ran(s.Deploy))
	assert.Equal(t, []string{"load", "train", "deploy"}, res.Order())
}

func TestConditionSkips(t *testing.T) {
	p, s := build()
	env := pipelinetest.NewEnv(t)
	stubTrain(env, 0.5)

	res := env.Run(p)

	require.NoError(t, res.Err())
	assert.True(t, res.Skipped(s.Deploy))
	assert.False(t, res.Ran(s.Deploy))
}

func TestUnstubbedTaskRunsForReal(t *testing.T) {
	p, s := build()
	res := pipelinetest.NewEnv(t).Run(p)

	require.ErrorIs(t, res.Err(), pipeline.ErrRunFailed)
	assert.Equal(t, backends.PhaseFailed, res.Phase(s.Train))
	assert.Equal(t, []backends.Reason{"app", "app"}, res.Reasons(s.Train), "App: 1 allows one retry")
	assert.True(t, res.Skipped(s.Deploy), "a failed upstream step skips its dependents")
}

func TestInjectedFaultsUseTheirBudgets(t *testing.T) {
	p, s := build()
	env := pipelinetest.NewEnv(t)
	stubTrain(env, 0.95)
	env.Inject(s.Train, 1, pipelinetest.Preemption)
	env.Inject(s.Train, 2, pipelinetest.Preemption)
	env.Inject(s.Train, 3, pipelinetest.AppError)

	start := env.Clock().Now()
	res := env.Run(p)

	require.NoError(t, res.Err())
	assert.Equal(t, []backends.Reason{"infra", "infra", "app", ""}, res.Reasons(s.Train))
	assert.Equal(t, []string{"load", "train", "train", "train", "train", "deploy"}, res.Order())
	// Backoff 1h, 2h, 4h on the virtual clock: no real waiting.
	assert.Equal(t, 7*time.Hour, env.Clock().Now().Sub(start))
	att := res.Attempts(s.Train)
	assert.Equal(t, time.Hour, att[1].Started.Sub(att[0].Finished))
}

func TestInjectedTimeoutFiresTheDeadline(t *testing.T) {
	p, s := build()
	env := pipelinetest.NewEnv(t)
	stubTrain(env, 0.95)
	env.Inject(s.Train, 1, pipelinetest.Timeout)

	res := env.Run(p)

	require.NoError(t, res.Err())
	att := res.Attempts(s.Train)
	require.Len(t, att, 2)
	assert.Equal(t, backends.ReasonApp, att[0].Reason)
	assert.Equal(t, "timed out after 2h0m0s", att[0].Message)
	assert.Equal(t, 2*time.Hour, att[0].Finished.Sub(att[0].Started))
}

func TestSlowStubTimesOutOnTheVirtualClock(t *testing.T) {
	p, s := build()
	env := pipelinetest.NewEnv(t)
	calls := 0
	pipelinetest.Stub(env, train, func(ctx context.Context, in TrainIn) (TrainOut, error) {
		calls++
		d := 3 * time.Hour // longer than the 2h timeout
		if calls > 1 {
			d = 30 * time.Minute
		}
		if err := env.Clock().Sleep(ctx, d); err != nil {
			return TrainOut{}, err
		}
		return TrainOut{Accuracy: 0.99}, nil
	})

	res := env.Run(p)

	require.NoError(t, res.Err())
	assert.Equal(t, []backends.Reason{"app", ""}, res.Reasons(s.Train))
	att := res.Attempts(s.Train)
	assert.Equal(t, 2*time.Hour, att[0].Finished.Sub(att[0].Started), "stopped at the deadline")
	assert.Equal(t, 30*time.Minute, att[1].Finished.Sub(att[1].Started))
}

func TestCacheAcrossRuns(t *testing.T) {
	cachedTrain := train.WithCache(task.Cache{Enabled: true, Version: "1"})
	p := pipeline.New("cached", nil)
	data := pipeline.Add(p, load, struct{}{})
	tr := pipeline.Add(p, cachedTrain, TrainIn{Data: data.Output(), LR: 0.1})
	env := pipelinetest.NewEnv(t)
	env.EnableCache()
	stubTrain(env, 0.9)

	first := env.Run(p)
	second := env.Run(p)

	require.NoError(t, first.Err())
	require.NoError(t, second.Err())
	assert.False(t, first.Cached(tr))
	assert.True(t, second.Cached(tr))
	assert.False(t, second.Ran(tr))
	assert.Equal(t, []string{"load"}, second.Order())
	assert.Equal(t, pipelinetest.Output(first, tr), pipelinetest.Output(second, tr))
}

func TestFanOutOrderIsDeterministic(t *testing.T) {
	p := pipeline.New("sweep", nil)
	grid := pipeline.Add(p, task.New("grid", func(context.Context, struct{}) ([]float64, error) {
		return []float64{0.3, 0.1, 0.2}, nil
	}), struct{}{})
	data := pipeline.Add(p, load, struct{}{})
	trial := task.New("trial", func(ctx context.Context, in TrialIn) (TrainOut, error) {
		return TrainOut{}, errors.New("real training")
	}).WithRetry(task.Retry{Infra: 1})
	trials := pipeline.ForEach(p, trial, grid.Output(), func(lr pipeline.Ref[float64]) TrialIn {
		return TrialIn{Data: data.Output(), LR: lr}
	}).Limit(3)
	env := pipelinetest.NewEnv(t)
	pipelinetest.Stub(env, trial, func(ctx context.Context, in TrialIn) (TrainOut, error) {
		return TrainOut{Accuracy: 1 - in.LR.Get()}, nil
	})
	env.Inject(trials, 1, pipelinetest.Preemption)

	var first []string
	for i := range 20 {
		res := env.Run(p)
		require.NoError(t, res.Err())
		assert.Equal(t, []TrainOut{{0.7}, {0.9}, {0.8}}, pipelinetest.Outputs(res, trials))
		if i == 0 {
			first = res.Order()
			continue
		}
		require.Equal(t, first, res.Order(), "run %d", i)
	}
	assert.Equal(t, []string{"grid", "load", "trial[0]", "trial[0]", "trial[1]", "trial[1]", "trial[2]", "trial[2]"}, first)
}

// TrialIn takes its learning rate from a fan-out element; the stub below
// is typed against it, so a stub for the wrong task does not compile.
type TrialIn struct {
	Data pipeline.Ref[DataOut]
	LR   pipeline.Ref[float64]
}

func TestInvalidPipelineReportsEveryProblem(t *testing.T) {
	p := pipeline.New("", nil)
	pipeline.Add(p, load, struct{}{})
	pipeline.Add(p, load, struct{}{})

	res := pipelinetest.NewEnv(t).Run(p)

	assert.Nil(t, res.Status)
	var fields []string
	for _, fe := range pipeline.FieldErrors(res.Err()) {
		fields = append(fields, fe.Field+" "+string(fe.Type))
	}
	assert.Equal(t, []string{"pipeline.name Required", "pipeline.tasks[load].name Duplicate"}, fields)
}

func TestContainerTasksNeedStubs(t *testing.T) {
	eval := task.Container[DeployIn, TrainOut]("eval", "registry.example/eval:1")
	p := pipeline.New("c", nil)
	pipeline.Add(p, eval, DeployIn{Model: pipeline.Const(TrainOut{Accuracy: 1})})
	env := pipelinetest.NewEnv(t)

	res := env.Run(p)
	require.Error(t, res.Err())
	assert.Contains(t, res.Status.Steps[0].Message, "has no stub")

	pipelinetest.Stub(env, eval, func(ctx context.Context, in DeployIn) (TrainOut, error) {
		return in.Model.Get(), nil
	})
	require.NoError(t, env.Run(p).Err())
}

func TestClockFiresDeadlinesInOrder(t *testing.T) {
	c := pipelinetest.NewClock(pipelinetest.Epoch)
	var fired []string
	c.AfterFunc(3*time.Second, func() { fired = append(fired, "3s") })
	c.AfterFunc(time.Second, func() { fired = append(fired, "1s") })
	stop := c.AfterFunc(2*time.Second, func() { fired = append(fired, "2s") })
	assert.True(t, stop())
	assert.False(t, stop())
	c.Advance(2 * time.Second)
	assert.Equal(t, []string{"1s"}, fired)
	ctx, cancel := context.WithCancel(context.Background())
	c.AfterFunc(time.Second, cancel) // at 3s, with the other 3s timer after it
	err := c.Sleep(ctx, time.Hour)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, []string{"1s", "3s"}, fired)
	assert.Equal(t, pipelinetest.Epoch.Add(3*time.Second), c.Now(), "sleep stopped when its context ended")
}

// Artifacts of a pipeline that names no store go to a directory of the
// test's, never to the user's cache directory, and stay readable across
// the Env's runs: a cached step's model is read by the next run.
func TestArtifactsStayInTheTest(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir()) // os.UserCacheDir on Linux
	t.Setenv("HOME", t.TempDir())           // and on macOS
	userCache, err := os.UserCacheDir()
	require.NoError(t, err)

	fit := task.New("fit", func(ctx context.Context, _ struct{}) (artifact.Model, error) {
		return artifact.WriteJSON[artifact.Model](ctx, "model", map[string]float64{"w": 2})
	}).WithCache(task.Cache{Enabled: true, Version: "1"})
	use := task.New("use", func(ctx context.Context, in struct{ Model pipeline.Ref[artifact.Model] }) (float64, error) {
		var m map[string]float64
		err := in.Model.Get().ReadJSON(ctx, &m)
		return m["w"], err
	})
	p := pipeline.New("artifacts", nil)
	f := pipeline.Add(p, fit, struct{}{})
	u := pipeline.Add(p, use, struct{ Model pipeline.Ref[artifact.Model] }{f.Output()})
	env := pipelinetest.NewEnv(t)
	env.EnableCache()

	first := env.Run(p)
	second := env.Run(p)

	require.NoError(t, first.Err())
	require.NoError(t, second.Err())
	assert.True(t, second.Cached(f))
	assert.Equal(t, 2.0, pipelinetest.Output(second, u))
	assert.NotEqual(t, first.Status.RunID, second.Status.RunID, "a run never overwrites an earlier one's artifacts")
	entries, err := os.ReadDir(userCache)
	require.NoError(t, err)
	assert.Empty(t, entries, "nothing in the user's cache directory")
}
