package hpo_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/local"
	"github.com/sluice-ml/sluice/hpo"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

// cachedSearch is a search of 8 trials in 4 rounds whose trial task
// caches and counts its calls.
func cachedSearch(calls *atomic.Int32, seed int64) (*pipeline.Pipeline, string) {
	p := pipeline.New("tune", nil)
	f := task.New("f", func(ctx context.Context, in BraninIn) (BraninOut, error) {
		calls.Add(1)
		pt := in.P.Get()
		return BraninOut{Value: (pt.X1-2)*(pt.X1-2) + pt.X2}, nil
	}).WithCache(task.Cache{Enabled: true, Version: "1"})
	hpo.Search(p, hpo.Space[Point]{"X1": hpo.Float(-5, 10), "X2": hpo.Float(0, 15)}, f,
		func(pt pipeline.Ref[Point]) BraninIn { return BraninIn{P: pt} },
		func(out BraninOut) float64 { return out.Value },
		&hpo.Options{Sampler: hpo.CMAES, Seed: seed, MaxTrials: 8, ParallelTrials: 2, Rounds: 4})
	return p, "search"
}

// A search whose trial caches caches its own steps too: run again with
// the same cache, it runs no trial and gives the same Result; with
// another seed, its rounds miss and every trial runs again.
func TestResumedSearchRunsNoFinishedTrial(t *testing.T) {
	cache := t.TempDir()
	run := func(seed int64) (*backends.RunStatus, int32) {
		t.Helper()
		var calls atomic.Int32
		p, _ := cachedSearch(&calls, seed)
		st, err := pipeline.Run(t.Context(), p, local.New(&local.Options{CacheDir: cache, Artifacts: "file://" + t.TempDir()}), nil)
		require.NoError(t, err)
		return st, calls.Load()
	}
	first, n := run(3)
	assert.EqualValues(t, 8, n)
	again, n := run(3)
	assert.Zero(t, n, "every trial was cached")
	for _, s := range again.Steps {
		assert.Equal(t, backends.PhaseCached, s.Phase, "step %s", s.Name)
	}
	var a, b map[string]any
	require.NoError(t, json.Unmarshal(first.Step("search").Output, &a))
	require.NoError(t, json.Unmarshal(again.Step("search").Output, &b))
	assert.Equal(t, a["trials"], b["trials"])
	assert.Equal(t, a["bestParams"], b["bestParams"])

	_, n = run(4)
	assert.EqualValues(t, 8, n, "another seed proposes other trials")
}
