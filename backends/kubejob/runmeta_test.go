package kubejob_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/backends/backendtest"
	"github.com/sluice-ml/sluice/backends/kubejob"
	"github.com/sluice-ml/sluice/pipeline"
)

// The compiled Jobs show the run's facts as ${runID}, ${runStarted} and
// ${runScheduled} placeholders, which the orchestrator fills in.
func TestRunMetadataPlaceholders(t *testing.T) {
	art, err := pipeline.Compile(t.Context(), backendtest.RunMetadata(), kubejob.New(nil, testOptions()), nil)
	require.NoError(t, err)
	docs := bytes.Join(art.Documents(), nil)
	assert.Contains(t, string(docs), `{"ID":${runID},"Started":${runStarted},"Scheduled":${runScheduled}}`)
}
