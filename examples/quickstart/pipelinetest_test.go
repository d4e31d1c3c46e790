package main

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/hpo"
	"github.com/sluice-ml/sluice/pipeline/pipelinetest"
)

// named refers to a step by name, for the steps build does not return.
type named string

func (n named) Name() string { return string(n) }

// Spot preemptions of the training trials use the infrastructure budget and
// are retried; the run still succeeds and picks the same model as a run
// without preemptions.
func TestPreemptedTrialsAreRetried(t *testing.T) {
	env := pipelinetest.NewEnv(t)
	for r := range rounds {
		env.Inject(named(trialsStep(r)), 1, pipelinetest.Preemption)
		env.Inject(named(trialsStep(r)), 2, pipelinetest.Preemption)
	}

	res := env.RunWithParams(build(), map[string]string{"publish_dir": t.TempDir()})

	require.NoError(t, res.Err())
	for r := range rounds {
		tr := res.Step(named(trialsStep(r)))
		require.NotEmpty(t, tr.Instances, "round %d", r)
		for i, in := range tr.Instances {
			var reasons []backends.Reason
			for _, a := range in.Attempts {
				reasons = append(reasons, a.Reason)
			}
			assert.Equal(t, []backends.Reason{"infra", "infra", ""}, reasons, "round %d, trial %d", r, i)
		}
	}
	// The backoff (30s, then 60s) passed on the virtual clock, not for real.
	a := res.Step(named(trialsStep(0))).Instances[0].Attempts
	assert.Equal(t, 60e9, float64(a[2].Started.Sub(a[1].Finished)))
	assert.True(t, res.Ran(named(stepPublish)))

	clean := pipelinetest.NewEnv(t).RunWithParams(build(), map[string]string{"publish_dir": t.TempDir()})
	require.NoError(t, clean.Err())
	assert.Equal(t, bestParams(t, clean), bestParams(t, res))
}

// A model that evaluates below min_accuracy is not published, and the run
// still succeeds: the gate is a condition, not a failure.
func TestGateSkipsPublishingAPoorModel(t *testing.T) {
	env := pipelinetest.NewEnv(t)
	pipelinetest.Stub(env, evaluateTask, func(ctx context.Context, in EvalIn) (Metrics, error) {
		return Metrics{Accuracy: 0.61, LogLoss: 0.9, AUC: 0.7}, nil
	})

	res := env.Run(build())

	require.NoError(t, res.Err())
	assert.True(t, res.Skipped(named(stepPublish)))
	assert.False(t, res.Ran(named(stepPublish)))
	assert.Equal(t, backends.PhaseSucceeded, res.Phase(named(stepReport)))
}

// A bug in training exhausts the application budget (one retry) and fails
// the run; nothing downstream runs, and the exit handler still reports.
func TestTrainingBugFailsTheRun(t *testing.T) {
	env := pipelinetest.NewEnv(t)
	env.Inject(named(trialsStep(0)), 1, pipelinetest.AppError)
	env.Inject(named(trialsStep(0)), 2, pipelinetest.AppError)

	res := env.Run(build())

	require.Error(t, res.Err())
	assert.Equal(t, backends.PhaseFailed, res.Phase(named(trialsStep(0))))
	assert.True(t, res.Skipped(named(stepSearch+"-suggest-1")))
	assert.True(t, res.Skipped(named(stepSearch)))
	assert.True(t, res.Skipped(named(stepPublish)))
	assert.True(t, res.Ran(named(stepReport)))
	// Sequential and deterministic: the first trial used up its budget
	// before any other trial started.
	assert.Equal(t, []string{"make-dataset", "split", "search-suggest-0", "search-trials-0[0]", "search-trials-0[0]"}, res.Order()[:5])
}

// bestParams are the best hyperparameters of the search in the run res.
func bestParams(t *testing.T, res *pipelinetest.Result) HParams {
	t.Helper()
	var out hpo.Result[HParams, Trial]
	require.NoError(t, json.Unmarshal(res.Step(named(stepSearch)).Output, &out))
	return out.BestParams
}
