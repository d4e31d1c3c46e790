package kubejob_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/sluice-ml/sluice/internal/hpocase"
)

// A search runs as Jobs and gives the trials it gives in process: the
// suggest steps run in the Jobs' pods (here, the simulated cluster's).
func TestSearchRunsTheSameTrialsAsLocal(t *testing.T) {
	noLeaks(t)
	h := newHarness(t)
	defer h.Close()
	res := hpocase.RunLikeLocal(t, h.backend(testOptions()), false)
	assert.Len(t, res["trials"], 12)
}

// A search with a failure budget whose trials fail now and then runs as
// Jobs and gives the trials, failed ones included, it gives in process.
func TestSearchWithFailedTrialsRunsLikeLocal(t *testing.T) {
	noLeaks(t)
	h := newHarness(t)
	defer h.Close()
	res := hpocase.RunFailingLikeLocal(t, h.backend(testOptions()))
	assert.Len(t, res["trials"], 12)
}

// A search with early stopping runs as Jobs and gives the Result it
// gives in process: promoted trials continue from their previous run's
// output, which the suggest step hands on through the fan-out's items.
func TestSearchWithEarlyStoppingRunsLikeLocal(t *testing.T) {
	noLeaks(t)
	h := newHarness(t)
	defer h.Close()
	res := hpocase.RunEarlyStoppingLikeLocal(t, h.backend(testOptions()))
	assert.Len(t, res["trials"], 9)
}
