package local_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/artifact"
	"github.com/sluice-ml/sluice/backends/local"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

func TestOptionsStoreIsSharedAndNotClosed(t *testing.T) {
	store, err := artifact.Open(t.Context(), "mem://shared")
	require.NoError(t, err)
	defer store.Close()

	write := task.New("write", func(ctx context.Context, _ struct{}) (artifact.Dataset, error) {
		return artifact.WriteJSON[artifact.Dataset](ctx, "rows", []int{1, 2, 3})
	})
	// The plan's own store is ignored: Options.Store wins.
	p := pipeline.New("shared", &pipeline.Options{Artifacts: "file:///nonexistent/never-used"})
	pipeline.Add(p, write, struct{}{})
	b := local.New(&local.Options{Store: store})

	for _, id := range []string{"r1", "r2"} {
		st, err := pipeline.Run(t.Context(), p, b, &pipeline.RunOptions{RunID: id})
		require.NoError(t, err)
		objs, err := store.List(t.Context(), "shared", id)
		require.NoError(t, err, "the run must not close a store it did not open")
		require.Len(t, objs, 1)
		assert.Equal(t, "shared/"+id+"/write/rows", objs[0].Key)

		var got artifact.Dataset
		require.NoError(t, json.Unmarshal(st.Step("write").Output, &got))
		assert.Equal(t, objs[0].URI, got.URI)
	}
}
