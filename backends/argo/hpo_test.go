package argo_test

import (
	"testing"

	"github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned/fake"
	"github.com/stretchr/testify/assert"

	"github.com/sluice-ml/sluice/backends/argo"
	"github.com/sluice-ml/sluice/internal/hpocase"
)

// A search runs on (simulated) Argo and gives the trials it gives in
// process, the rounds after the goal with no trials (an empty withParam).
func TestSearchRunsTheSameTrialsAsLocal(t *testing.T) {
	cs := fake.NewSimpleClientset()
	nameOnCreate(cs)
	s := newSim(cs, nil)
	t.Cleanup(s.Close)
	res := hpocase.RunLikeLocal(t, &simBackend{Backend: argo.New(cs, testOptions()), sim: s}, true)
	assert.NotEmpty(t, res["stopped"], "the goal ends the search early")
	assert.Less(t, len(res["trials"].([]any)), 12)
}

// A search with a failure budget (MaxFailedTrials, a tolerant fan-out
// per round) whose trials fail now and then runs on (simulated) Argo
// and gives the trials, failed ones included, it gives in process.
func TestSearchWithFailedTrialsRunsLikeLocal(t *testing.T) {
	cs := fake.NewSimpleClientset()
	nameOnCreate(cs)
	s := newSim(cs, nil)
	t.Cleanup(s.Close)
	res := hpocase.RunFailingLikeLocal(t, &simBackend{Backend: argo.New(cs, testOptions()), sim: s})
	assert.Len(t, res["trials"], 12)
}

// A search with early stopping runs on (simulated) Argo and gives the
// Result it gives in process: a promoted trial's item carries its
// previous run's output, a new trial's carries null.
func TestSearchWithEarlyStoppingRunsLikeLocal(t *testing.T) {
	cs := fake.NewSimpleClientset()
	nameOnCreate(cs)
	s := newSim(cs, nil)
	t.Cleanup(s.Close)
	res := hpocase.RunEarlyStoppingLikeLocal(t, &simBackend{Backend: argo.New(cs, testOptions()), sim: s})
	assert.Len(t, res["trials"], 9)
}
