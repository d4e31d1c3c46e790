package serve

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/artifact"
)

func testRegistry(t *testing.T) *storeRegistry {
	t.Helper()
	s, err := artifact.Open(context.Background(), "file://"+t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	r := NewRegistry(s).(*storeRegistry)
	r.now = func() time.Time { return time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC) }
	return r
}

func version(name, digest, run string, metrics map[string]float64) ModelVersion {
	return ModelVersion{
		Name:    name,
		Model:   Model{URI: "file:///models/" + digest, Digest: "sha256:" + digest, Format: GoModel},
		Metrics: metrics,
		Source:  artifact.Producer{Pipeline: "churn", Run: run, Step: "train"},
	}
}

func TestRegistryVersions(t *testing.T) {
	ctx := context.Background()
	r := testRegistry(t)
	v1, err := r.Register(ctx, version("churn", "aa", "run-1", map[string]float64{"auc": 0.8}))
	require.NoError(t, err)
	assert.Equal(t, 1, v1.Version)
	assert.Equal(t, "v1", v1.Model.Version)
	assert.Equal(t, "churn v1", v1.String())
	v2, err := r.Register(ctx, version("churn", "bb", "run-2", nil))
	require.NoError(t, err)
	assert.Equal(t, 2, v2.Version)

	again, err := r.Register(ctx, version("churn", "aa", "run-1", map[string]float64{"auc": 0.8}))
	require.NoError(t, err)
	assert.Equal(t, v1, again, "the same bytes from the same step: the version registered then")
	other, err := r.Register(ctx, version("churn", "aa", "run-3", nil))
	require.NoError(t, err)
	assert.Equal(t, v1, other, "the same bytes from another run: the same version")
	v3, err := r.Register(ctx, version("churn", "cc", "run-3", nil))
	require.NoError(t, err)
	assert.Equal(t, 3, v3.Version)

	_, err = r.Register(ctx, version("fraud", "cc", "run-1", nil))
	require.NoError(t, err)
	names, err := r.Models(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"churn", "fraud"}, names)
	vs, err := r.Versions(ctx, "churn")
	require.NoError(t, err)
	require.Len(t, vs, 3)
	assert.Equal(t, v1, vs[0])
	got, err := r.Version(ctx, "churn", 2)
	require.NoError(t, err)
	assert.Equal(t, v2, got)
	_, err = r.Version(ctx, "churn", 9)
	assert.ErrorIs(t, err, ErrNotFound)
	assert.ErrorContains(t, err, "model churn has no version 9")

	_, err = r.Register(ctx, version("Churn_Model", "dd", "run-1", nil))
	assert.ErrorContains(t, err, `model name "Churn_Model" is not a DNS-1123 label`)
	_, err = r.Register(ctx, ModelVersion{Name: "churn"})
	assert.ErrorContains(t, err, "the model has no URI")
}

// Runs registering at once get a version each.
func TestRegistryConcurrentRegister(t *testing.T) {
	ctx := context.Background()
	r := testRegistry(t)
	var wg sync.WaitGroup
	got := make([]int, 6)
	for i := range got {
		wg.Go(func() {
			v, err := r.Register(ctx, version("churn", fmt.Sprint(i), fmt.Sprint("run-", i), nil))
			assert.NoError(t, err)
			got[i] = v.Version
		})
	}
	wg.Wait()
	assert.ElementsMatch(t, []int{1, 2, 3, 4, 5, 6}, got)
}

func TestRegistryReleases(t *testing.T) {
	ctx := context.Background()
	r := testRegistry(t)
	_, ok, err := r.Live(ctx, "churn-api", Prod)
	require.NoError(t, err)
	assert.False(t, ok)
	a, err := r.Release(ctx, Release{Target: "churn-api", Level: Staging, Model: "churn", Version: 1, Run: "run-1"})
	require.NoError(t, err)
	assert.Equal(t, 1, a.Seq)
	assert.Equal(t, r.now(), a.Time)
	b, err := r.Release(ctx, Release{Target: "churn-api", Level: Staging, Model: "churn", Version: 2})
	require.NoError(t, err)
	assert.Equal(t, 2, b.Seq)
	_, err = r.Release(ctx, Release{Target: "churn-api", Level: Prod, Model: "churn", Version: 1})
	require.NoError(t, err)

	live, ok, err := r.Live(ctx, "churn-api", Staging)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, b, live)
	rels, err := r.Releases(ctx, "churn-api", Staging)
	require.NoError(t, err)
	assert.Equal(t, []Release{a, b}, rels)
	live, _, err = r.Live(ctx, "churn-api", Prod)
	require.NoError(t, err)
	assert.Equal(t, 1, live.Version, "levels are apart")

	_, err = r.Release(ctx, Release{Target: "churn-api", Level: "qa"})
	assert.ErrorContains(t, err, `level "qa" is not one of [dev staging prod]`)
}

func TestListModels(t *testing.T) {
	ctx := context.Background()
	r := testRegistry(t)
	var b strings.Builder
	require.NoError(t, listModels(ctx, &b, r, ""))
	assert.Equal(t, "no models registered\n", b.String())
	for i, auc := range []float64{0.81, 0.86} {
		_, err := r.Register(ctx, version("churn", fmt.Sprintf("%064d", i), fmt.Sprint("run-", i), map[string]float64{"auc": auc, "logloss": 0.4}))
		require.NoError(t, err)
	}
	_, err := r.Register(ctx, version("fraud", "ff", "run-9", nil))
	require.NoError(t, err)
	_, err = r.Release(ctx, Release{Target: "churn-api", Level: Staging, Model: "churn", Version: 2})
	require.NoError(t, err)
	_, err = r.Release(ctx, Release{Target: "churn-api", Level: Prod, Model: "churn", Version: 1})
	require.NoError(t, err)
	b.Reset()
	require.NoError(t, listModels(ctx, &b, r, ""))
	assert.Equal(t, `churn: 2 versions
  version  created           digest        metrics               source       live
  v2       2026-12-02 10:00  000000000000  auc=0.86 logloss=0.4  run-1/train  staging/churn-api
  v1       2026-12-02 10:00  000000000000  auc=0.81 logloss=0.4  run-0/train  prod/churn-api

fraud: 1 version
  version  created           digest  metrics  source       live
  v1       2026-12-02 10:00  ff               run-9/train  
`, b.String())
	b.Reset()
	assert.ErrorContains(t, listModels(ctx, &b, r, "spam"), "no model spam in the registry (it has: churn, fraud)")
}
