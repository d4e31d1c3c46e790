package artifact_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/artifact"
)

// recordsContract checks a store's records: write, read, create once,
// list by prefix, bad keys, and one winner among racing creators.
func recordsContract(t *testing.T, s *artifact.Store) {
	ctx := context.Background()
	_, err := s.ReadRecord(ctx, "registry/m/1.json")
	require.ErrorIs(t, err, artifact.ErrNoRecord)

	require.NoError(t, s.CreateRecord(ctx, "registry/m/1.json", []byte(`{"v":1}`)))
	err = s.CreateRecord(ctx, "registry/m/1.json", []byte(`{"v":2}`))
	require.ErrorIs(t, err, artifact.ErrRecordExists)
	got, err := s.ReadRecord(ctx, "registry/m/1.json")
	require.NoError(t, err)
	assert.JSONEq(t, `{"v":1}`, string(got), "a failed create loses nothing")

	require.NoError(t, s.WriteRecord(ctx, "registry/m/1.json", []byte(`{"v":3}`)))
	got, err = s.ReadRecord(ctx, "registry/m/1.json")
	require.NoError(t, err)
	assert.JSONEq(t, `{"v":3}`, string(got))
	require.NoError(t, s.WriteRecord(ctx, "registry/n/1.json", []byte(`{}`)))
	require.NoError(t, s.WriteRecord(ctx, "registry/m/2.json", []byte(`{}`)))

	keys, err := s.Records(ctx, "registry/m/")
	require.NoError(t, err)
	assert.Equal(t, []string{"registry/m/1.json", "registry/m/2.json"}, keys)
	keys, err = s.Records(ctx, "")
	require.NoError(t, err)
	assert.Equal(t, []string{"registry/m/1.json", "registry/m/2.json", "registry/n/1.json"}, keys)

	for _, bad := range []string{"", "/a", "a/", "a//b", "a/../b", "./a"} {
		assert.Error(t, s.WriteRecord(ctx, bad, nil), "key %q", bad)
	}
	_, err = s.Records(ctx, "registry")
	assert.ErrorContains(t, err, "not a record prefix")

	// Of eight creators of one key, one wins.
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := range 8 {
		wg.Go(func() {
			err := s.CreateRecord(ctx, "race/key.json", fmt.Appendf(nil, `{"i":%d}`, i))
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				wins++
			} else {
				assert.ErrorIs(t, err, artifact.ErrRecordExists)
			}
		})
	}
	wg.Wait()
	assert.Equal(t, 1, wins)

	// Records are not runs' artifacts.
	objs, err := s.List(ctx, "registry", "m")
	require.NoError(t, err)
	assert.Empty(t, objs)
}

func TestRecords(t *testing.T) {
	for name, root := range map[string]string{"file": "file://" + t.TempDir(), "mem": "mem://records-test"} {
		t.Run(name, func(t *testing.T) {
			s, err := artifact.Open(context.Background(), root)
			require.NoError(t, err)
			defer s.Close()
			recordsContract(t, s)
		})
	}
}
