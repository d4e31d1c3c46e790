package artifact_test

import (
	"crypto/rand"
	"io"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/artifact"
)

// TestLargeArtifactStreams writes and reads back a 256 MiB artifact and
// checks that the Go heap in use never grows by 64 MiB: the bytes stream
// through the SDK, and are never all in memory at once.
func TestLargeArtifactStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and reads 256 MiB; skipped with -short")
	}
	const (
		size  = 256 << 20
		limit = 64 << 20
	)
	ctx, _, _ := scope(t, "big", nil)
	block := make([]byte, 1<<20)
	rand.Read(block)

	stop := heapPeak()
	a, err := artifact.Write[artifact.Dataset](ctx, "big", func(w io.Writer) error {
		for range size / len(block) {
			if _, err := w.Write(block); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(t, err)
	r, err := a.Open(ctx)
	require.NoError(t, err)
	n, err := io.Copy(io.Discard, r)
	require.NoError(t, err, "the digest checks")
	require.NoError(t, r.Close())
	p, err := a.Path(ctx)
	require.NoError(t, err)
	peak := stop()

	assert.Equal(t, int64(size), a.Size)
	assert.Equal(t, int64(size), n)
	st, err := os.Stat(p)
	require.NoError(t, err)
	assert.Equal(t, int64(size), st.Size())
	t.Logf("peak heap growth writing, reading and downloading %d MiB: %.2f MiB", size>>20, float64(peak)/(1<<20))
	assert.Less(t, peak, uint64(limit), "the heap grew by %d MiB: the artifact was held in memory", peak>>20)
}
