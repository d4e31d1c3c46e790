package e2e

import (
	"context"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	argoclient "github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/argo"
	"github.com/sluice-ml/sluice/backends/backendtest"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/backends/local"
	"github.com/sluice-ml/sluice/e2e/internal/pipelines"
	"github.com/sluice-ml/sluice/internal/testcluster"
	"github.com/sluice-ml/sluice/pipeline"
)

// shardedCases are conformance pipelines run on Argo with a shard size
// that makes each step a shard of its own: data passed between shards (whole outputs, fields, parameters,
// fan-out items), renamed tasks, retries and a failed step, cached steps.
var shardedCases = []string{"Diamond", "ParamsAndFields", "DynamicFanOutFanIn", "StaticFanOutFanIn", "WeirdNames", "Timeout", "Cache"}

// A pipeline over the size budget runs as shards, child Workflows of a
// parent, and what a user observes is what the local backend gives.
func TestShardedRun(t *testing.T) {
	need(t)
	ac, err := argoclient.NewForConfig(cl.Config)
	require.NoError(t, err)
	for _, c := range backendtest.Cases() {
		if !contains(shardedCases, c.Name) {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
			defer cancel()
			want, werr := pipeline.Run(ctx, c.Build(), local.New(nil), nil)
			require.NotNil(t, want, "local: %v", werr)

			ns, _ := namespace(t, true)
			b := argo.New(ac, &argo.Options{
				Pod:        kubepod.Options{Namespace: ns, Image: imageFor(t, "argo", c.Name), Command: []string{pipelines.Entrypoint}},
				KubeClient: cl.Client, ControllerNamespace: testcluster.ArgoNamespace,
				ShardSize: 1,
			})
			art, err := pipeline.Compile(ctx, c.Build(), b, nil)
			require.NoError(t, err)
			var shards []*wfv1.WorkflowTemplate
			require.True(t, art.As(&shards), "sharded")
			t.Logf("%d shards", len(shards))

			got, gerr := pipeline.Run(ctx, c.Build(), b, nil)
			require.NotNil(t, got, "argo: %v", gerr)
			assert.Equal(t, want.Phase == backends.PhaseSucceeded, gerr == nil, "error: %v", gerr)
			assert.Equal(t, observable(want), observable(got))

			kids, err := ac.ArgoprojV1alpha1().Workflows(ns).List(ctx, metav1.ListOptions{LabelSelector: argo.LabelRun + "=" + got.RunID})
			require.NoError(t, err)
			assert.NotEmpty(t, kids.Items)
			for _, k := range kids.Items {
				require.Len(t, k.OwnerReferences, 1, "owned by the parent")
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}
