package local_test

import (
	"context"
	"io"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/artifact"
	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/local"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

type prepIn struct {
	Seed pipeline.Ref[int]
}

type fitIn struct {
	Data pipeline.Ref[artifact.Dataset] `json:"data"`
}

// A cached step's key counts an input artifact by its bytes: the same
// data written by a new run (another URI) is a hit, changed data a miss
// that the status explains.
func TestCacheKeysArtifactsByDigest(t *testing.T) {
	store := "file://" + t.TempDir()
	var fits atomic.Int32
	prep := task.New("prep", func(ctx context.Context, in prepIn) (artifact.Dataset, error) {
		return artifact.Write[artifact.Dataset](ctx, "rows", func(w io.Writer) error {
			_, err := io.WriteString(w, "rows of seed "+string(rune('0'+in.Seed.Get())))
			return err
		})
	})
	fit := task.New("fit", func(ctx context.Context, in fitIn) (int, error) {
		fits.Add(1)
		b, err := in.Data.Get().ReadAll(ctx)
		return len(b), err
	}).WithCache(task.Cache{Enabled: true})
	build := func() *pipeline.Pipeline {
		p := pipeline.New("digests", &pipeline.Options{Artifacts: store})
		seed := pipeline.NewParam(p, "seed", 1)
		d := pipeline.Add(p, prep, prepIn{Seed: seed.Ref()})
		pipeline.Add(p, fit, fitIn{Data: d.Output()})
		return p
	}
	b := local.New(&local.Options{CacheDir: t.TempDir()})

	first, err := pipeline.Run(t.Context(), build(), b, nil)
	require.NoError(t, err)
	second, err := pipeline.Run(t.Context(), build(), b, nil)
	require.NoError(t, err)
	require.NotEqual(t, first.RunID, second.RunID)
	assert.NotEqual(t, string(first.Step("prep").Output), string(second.Step("prep").Output), "each run writes its own artifact")
	assert.Equal(t, backends.PhaseCached, second.Step("fit").Phase, "the same bytes under another URI are a hit")
	assert.Equal(t, int32(1), fits.Load())

	third, err := pipeline.Run(t.Context(), build(), b, &pipeline.RunOptions{Params: map[string]string{"seed": "2"}})
	require.NoError(t, err)
	assert.Equal(t, backends.PhaseSucceeded, third.Step("fit").Phase)
	assert.Equal(t, "cache miss: input data changed", third.Step("fit").Message)
	assert.Equal(t, int32(2), fits.Load())
}
