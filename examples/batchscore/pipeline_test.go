package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/argo"
	"github.com/sluice-ml/sluice/backends/kubejob"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/internal/golden"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/pipeline/pipelinetest"
)

// named refers to a step by name, for the steps build does not return.
type named string

func (n named) Name() string { return string(n) }

// stubAlert replaces the alert container (pipelinetest starts no
// containers) by a Go function that records what it was given.
func stubAlert(env *pipelinetest.Env, got *AlertIn) {
	pipelinetest.Stub(env, alertTask, func(ctx context.Context, in AlertIn) (AlertOut, error) {
		*got = in
		return AlertOut{Message: "sent"}, nil
	})
}

// An ordinary night: the scores look like the validation data, the alert
// does not run, and the run succeeds.
func TestQuietNightSkipsTheAlert(t *testing.T) {
	env := pipelinetest.NewEnv(t)
	var alerted AlertIn
	stubAlert(env, &alerted)

	res := env.Run(build())

	require.NoError(t, res.Err())
	var d Drift
	require.NoError(t, json.Unmarshal(res.Step(named(stepDrift)).Output, &d))
	assert.Less(t, d.PSI, 0.1, "an unshifted partition should not drift")
	assert.True(t, res.Skipped(named(stepAlert)))
	assert.Contains(t, res.Step(named(stepAlert)).Message, "drift.psi")
}

// Shifted features move the scores: the drift is above max_drift and the
// alert runs with the partition, the index and the threshold.
func TestDriftRaisesTheAlert(t *testing.T) {
	env := pipelinetest.NewEnv(t)
	var alerted AlertIn
	stubAlert(env, &alerted)

	res := env.RunWithParams(build(), map[string]string{"shift": "1.5", "partition": "2026-11-30"})

	require.NoError(t, res.Err())
	require.True(t, res.Ran(named(stepAlert)))
	assert.Equal(t, "2026-11-30", alerted.Partition.Get())
	assert.Equal(t, 0.2, alerted.MaxDrift.Get())
	assert.Greater(t, alerted.PSI.Get(), 0.25)
}

// With no partition given, a run scores the day before its scheduled time:
// a nightly schedule scores yesterday, a backfill the day before its date.
func TestPartitionIsTheDayBeforeTheScheduledTime(t *testing.T) {
	env := pipelinetest.NewEnv(t)
	var alerted AlertIn
	stubAlert(env, &alerted)

	res := env.RunWith(build(), pipelinetest.RunOptions{
		Params:    map[string]string{"shift": "1.5"},
		Start:     time.Date(2026, 12, 2, 1, 30, 0, 0, time.UTC),
		Scheduled: time.Date(2026, 11, 15, 0, 0, 0, 0, time.UTC),
	})

	require.NoError(t, res.Err())
	var ex Extracted
	require.NoError(t, json.Unmarshal(res.Step(named(stepExtract)).Output, &ex))
	assert.Equal(t, "2026-11-14", ex.Partition)
	assert.Equal(t, "2026-11-14", alerted.Partition.Get())
}

// A partition that is not a day fails extract with the fix.
func TestPartitionMustBeADay(t *testing.T) {
	res := pipelinetest.NewEnv(t).RunWithParams(build(), map[string]string{"partition": "yesterday"})

	require.Error(t, res.Err())
	assert.Contains(t, res.Step(named(stepExtract)).Message, "give it as YYYY-MM-DD")
}

// Spot interruptions of the scoring node use the Infra budget; the last
// retry runs on on-demand capacity and the night's run still succeeds.
func TestSpotInterruptionsFallBackToOnDemand(t *testing.T) {
	env := pipelinetest.NewEnv(t)
	for attempt := 1; attempt <= 3; attempt++ {
		env.Inject(named(stepScore), attempt, pipelinetest.Preemption)
	}

	res := env.Run(build())

	require.NoError(t, res.Err())
	a := res.Attempts(named(stepScore))
	require.Len(t, a, 4)
	assert.Equal(t, []backends.Reason{"infra", "infra", "infra", ""}, res.Reasons(named(stepScore)))
	assert.True(t, a[3].OnDemand, "the last infra retry runs on on-demand nodes")
	assert.False(t, a[2].OnDemand)
	// The back-off (1m, 2m, 4m) passed on the virtual clock.
	assert.Equal(t, 4*60e9, float64(a[3].Started.Sub(a[2].Finished)))
}

// A bug in scoring is not retried (no App budget): the run fails at once,
// and nothing downstream runs.
func TestScoringBugFailsTheRun(t *testing.T) {
	env := pipelinetest.NewEnv(t)
	env.Inject(named(stepScore), 1, pipelinetest.AppError)

	res := env.Run(build())

	require.Error(t, res.Err())
	assert.Len(t, res.Attempts(named(stepScore)), 1)
	assert.True(t, res.Skipped(named(stepDrift)))
	assert.True(t, res.Skipped(named(stepAlert)))
}

// The whole pipeline on the local executor, the alert container included
// (as a host process: it needs sh), as `go run ./examples/batchscore -p
// shift=1.5` runs it.
func TestRunLocalWithTheAlertContainer(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := pipeline.Exec(t.Context(), build(), []string{
		"-scheduled", "2026-12-02", "-p", "shift=1.5", "-artifacts", t.TempDir(), "-no-cache",
	}, &stdout, &stderr, newLocal())
	require.Equal(t, pipeline.ExitOK, code, "stderr:\n%s", stderr.String())
	assert.Contains(t, stderr.String(), "[alert] score drift on partition 2026-12-01: PSI ")
	assert.Regexp(t, `alert\s+Succeeded`, stdout.String()+stderr.String())
}

// The manifests for both cluster backends, and the local dry-run record
// (testdata/TestCompile/*.golden.yaml; -update rewrites them): the GPU
// request, the node groups' selectors and tolerations, the Spot placement.
func TestCompile(t *testing.T) {
	for _, tc := range []struct {
		name    string
		backend backends.Backend
	}{
		{"local", newLocal()},
		{"argo", argo.New(nil, &argo.Options{Pod: kubepod.Options{Image: image, Command: command}})},
		{"kubejob", kubejob.New(nil, &kubejob.Options{Pod: kubepod.Options{Image: image}, RunID: "batchscore-1"})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			art, err := pipeline.Compile(t.Context(), build(), tc.backend, nil)
			require.NoError(t, err)
			golden.Assert(t, bytes.Join(art.Documents(), []byte("---\n")))
		})
	}
}

// The pipeline is valid for every backend it links.
func TestLint(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := pipeline.Exec(t.Context(), build(), []string{"lint"}, &stdout, &stderr, newLocal(),
		argo.New(nil, &argo.Options{Pod: kubepod.Options{Image: image, Command: command}}),
		kubejob.New(nil, &kubejob.Options{Pod: kubepod.Options{Image: image}}))
	assert.Equal(t, pipeline.ExitOK, code, "stderr:\n%s", stderr.String())
}

func TestPSI(t *testing.T) {
	assert.Zero(t, psi(reference, reference))
	near := histogram(scores(sample("2026-12-01", 20_000, 0)))
	far := histogram(scores(sample("2026-12-01", 20_000, 1)))
	assert.Less(t, psi(near, reference), 0.01)
	assert.Greater(t, psi(far, reference), 0.25)
	assert.Greater(t, psi(far, reference), psi(near, reference))
	// An empty bin is floored, not infinite.
	assert.False(t, math.IsInf(psi([]float64{1, 0}, []float64{0.5, 0.5}), 0))
}

func TestSampleIsDeterministicPerPartition(t *testing.T) {
	assert.Equal(t, sample("2026-12-01", 10, 0), sample("2026-12-01", 10, 0))
	assert.NotEqual(t, sample("2026-12-01", 10, 0), sample("2026-12-02", 10, 0))
}

func scores(x [][features]float64) []float64 {
	s := make([]float64, len(x))
	for i, r := range x {
		s[i] = predict(r)
	}
	return s
}
