package hpo

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Without an artifact store in the task's context, the result step
// stores no report, and says nothing.
func TestWriteFilesWithoutAStore(t *testing.T) {
	r := Result[struct{ X float64 }, float64]{
		Trials:    []Trial[struct{ X float64 }, float64]{{ID: 0, State: Complete, Objective: 1}},
		Direction: Minimize,
	}
	require.NoError(t, writeFiles(context.Background(), &r))
	assert.Zero(t, r.Files)
}
