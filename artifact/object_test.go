package artifact_test

import (
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/artifact"
)

// A tool reads an object by the key List gives it.
func TestOpenObject(t *testing.T) {
	ctx, s, _ := scope(t, "search", nil)
	_, err := artifact.WriteJSON[artifact.File](ctx, "trials.json", map[string]int{"bestTrial": 3})
	require.NoError(t, err)

	objs, err := s.List(ctx, "pipe", "run-1")
	require.NoError(t, err)
	require.Len(t, objs, 1)
	r, err := s.OpenObject(ctx, objs[0].Key)
	require.NoError(t, err)
	b, err := io.ReadAll(r)
	require.NoError(t, r.Close())
	require.NoError(t, err)
	assert.JSONEq(t, `{"bestTrial":3}`, string(b))

	_, err = s.OpenObject(ctx, "pipe/run-1/search/plot.svg")
	assert.ErrorContains(t, err, "no object pipe/run-1/search/plot.svg")
	for _, key := range []string{"", "/pipe/run-1", "pipe/../other/x"} {
		_, err = s.OpenObject(ctx, key)
		assert.ErrorContains(t, err, "is not an object key", key)
	}
}
