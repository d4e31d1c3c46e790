package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/sluice-ml/sluice/backends/local"
	"github.com/sluice-ml/sluice/e2e/internal/pipelines"
	"github.com/sluice-ml/sluice/internal/testcluster"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/resources"
	"github.com/sluice-ml/sluice/serve"
)

var isvcGVR = schema.GroupVersionResource{Group: "serving.kserve.io", Version: "v1beta1", Resource: "inferenceservices"}

// TestServeKServe deploys to KServe with the deploy step: KServe's own
// controller (v0.15.2, RawDeployment mode) turns the InferenceService
// into a Deployment whose pods (kwok's) become ready, and reports it
// Ready, which the step waits for. A better model rolls out the same
// way; one whose pods cannot be placed fails the step with the reason
// and the InferenceService is rolled back to the version before.
func TestServeKServe(t *testing.T) {
	need(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	ns, kubeconfig := namespace(t, true)
	root := "file://" + t.TempDir()
	run := func(auc, pool string) (serve.Deployed, error) {
		t.Helper()
		p := pipeline.New("kserve", &pipeline.Options{Artifacts: root})
		target := serve.Target{Name: "ranker", Level: serve.Staging, Namespace: ns, Platform: serve.KServe, Mode: serve.RawDeployment,
			Runtime:   serve.Runtime{Format: serve.GoModel, Image: "registry.example/ranker:v1"},
			Resources: resources.Profile{CPU: "100m", Memory: "128Mi", NodePool: pool},
			NodePools: []resources.NodePool{{Name: testcluster.PoolCPU, Labels: map[string]string{testcluster.LabelNodePool: testcluster.PoolCPU}},
				{Name: "gone", Labels: map[string]string{testcluster.LabelNodePool: "no-such-pool"}}},
		}
		d := pipelines.EvalDeploy(p, target, &serve.DeployOptions{Kubeconfig: kubeconfig, Timeout: 30 * time.Second,
			Gate: serve.Gate{Metric: "auc", Better: serve.Higher}})
		st, err := pipeline.Run(ctx, p, local.New(nil), &pipeline.RunOptions{Params: map[string]string{"auc": auc}})
		var out serve.Deployed
		if st != nil && len(st.Step(d.Name()).Output) > 0 {
			require.NoError(t, json.Unmarshal(st.Step(d.Name()).Output, &out))
		}
		if err != nil && st != nil {
			err = fmt.Errorf("%w: %s", err, st.Step(d.Name()).Message)
		}
		return out, err
	}
	modelOf := func() string {
		u, err := cl.Dynamic().Resource(isvcGVR).Namespace(ns).Get(ctx, "ranker", metav1.GetOptions{})
		require.NoError(t, err)
		return u.GetAnnotations()[serve.AnnotationModelURI]
	}

	v1, err := run("0.8", testcluster.PoolCPU)
	require.NoError(t, err)
	require.True(t, v1.Decision.Deploy, "%+v", v1.Decision)
	d, err := cl.Client.AppsV1().Deployments(ns).Get(ctx, "ranker-predictor", metav1.GetOptions{})
	require.NoError(t, err, "KServe made the predictor's Deployment")
	assert.Equal(t, d.Status.Replicas, d.Status.AvailableReplicas)
	assert.Equal(t, v1.Version.Model.URI, modelOf())

	v2, err := run("0.9", testcluster.PoolCPU)
	require.NoError(t, err)
	require.True(t, v2.Decision.Deploy, "%+v", v2.Decision)
	assert.Equal(t, v2.Version.Model.URI, modelOf())

	_, err = run("0.95", "gone")
	require.Error(t, err)
	t.Logf("the unplaceable version: %v", err)
	assert.Contains(t, err.Error(), "rolled back to the previous version")
	assert.Equal(t, v2.Version.Model.URI, modelOf(), "v2 is live again")
}
