package argo_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned/fake"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/backends/argo"
	"github.com/sluice-ml/sluice/backends/local"
	"github.com/sluice-ml/sluice/hpo"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

// hpoSearch is an adaptive search (CMA-ES, four rounds) over a quadratic,
// which stops early once a trial reaches the goal.
func hpoSearch() (*pipeline.Pipeline, string) {
	type xy struct{ X, Y float64 }
	type in struct{ P pipeline.Ref[xy] }
	p := pipeline.New("tune", nil)
	f := task.New("f", func(ctx context.Context, in in) (float64, error) {
		v := in.P.Get()
		return (v.X-1)*(v.X-1) + (v.Y+2)*(v.Y+2), nil
	})
	s := hpo.Search(p, hpo.Space[xy]{"X": hpo.Float(-5, 5), "Y": hpo.Float(-5, 5)}, f,
		func(v pipeline.Ref[xy]) in { return in{P: v} },
		func(v float64) float64 { return v },
		&hpo.Options{Sampler: hpo.CMAES, Seed: 5, MaxTrials: 12, ParallelTrials: 3, Goal: new(4.0)})
	return p, s.Name()
}

// A search runs on (simulated) Argo and gives the trials it gives in
// process, the rounds after the goal with no trials (an empty withParam).
func TestSearchRunsTheSameTrialsAsLocal(t *testing.T) {
	cs := fake.NewSimpleClientset()
	nameOnCreate(cs)
	s := newSim(cs, nil)
	t.Cleanup(s.Close)
	p, name := hpoSearch()
	st, err := pipeline.Run(t.Context(), p, &simBackend{Backend: argo.New(cs, testOptions()), sim: s}, nil)
	require.NoError(t, err, "%+v", st)
	p, _ = hpoSearch()
	want, err := pipeline.Run(t.Context(), p, local.New(nil), nil)
	require.NoError(t, err)
	var got, exp map[string]any
	require.NoError(t, json.Unmarshal(st.Step(name).Output, &got))
	require.NoError(t, json.Unmarshal(want.Step(name).Output, &exp))
	assert.Equal(t, exp, got)
	assert.NotEmpty(t, got["stopped"], "the goal ends the search early")
	assert.Less(t, len(got["trials"].([]any)), 12)
}
