package e2e

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-ml/sluice/artifact"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/e2e/internal/pipelines"
	"github.com/sluice-ml/sluice/internal/s3test"
	"github.com/sluice-ml/sluice/internal/testcluster"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/serve"
)

// TestServeDeployInPod runs the deploy step where a cluster run runs it:
// in a pod, on each cluster backend, as the ServiceAccount that compile
// emits for it (task.Access), with nothing but its in-cluster identity.
// Its target is in another namespace than the run's. A first run rolls
// the model out (the Deployment's pods, kwok's, become available) and
// records the release in the run's artifact store, on a real S3 server;
// a second run, with a worse model, is kept out by the gate and leaves
// the live Deployment as it was. Everything the step does is within the
// Role compile emitted: the API server enforces RBAC.
func TestServeDeployInPod(t *testing.T) {
	need(t)
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()
	srv := s3test.StartT(t)
	srv.Setenv(t)
	require.NoError(t, srv.CreateBucket(ctx, "deploy"))
	for _, backend := range clusterBackends {
		for _, platform := range []serve.Platform{serve.Kubernetes, serve.KServe} {
			t.Run(backend+"/"+string(platform), func(t *testing.T) {
				deployInPod(t, ctx, srv, backend, platform)
			})
		}
	}
}

// deployInPod is TestServeDeployInPod on backend, to platform.
func deployInPod(t *testing.T, ctx context.Context, srv *s3test.Server, backend string, platform serve.Platform) {
	ns, _ := namespace(t, true)
	target, _ := namespace(&namedT{t, t.Name() + "-target"}, true)
	object := "scorer" // the Deployment the pods are of
	if platform == serve.KServe {
		object = "scorer-predictor" // KServe's, of the InferenceService
	}
	secretFromEnv(t, ns, "store", srv.Env())
	root := rootURL(srv, "deploy", backend+"-"+string(platform))
	image := "sluice.test/e2e-deploy-" + backend + "-" + string(platform) + ":1"
	cl.Kubelet.SetImage(image, testcluster.Image{
		Program:    progs["e2eprog"],
		Entrypoint: []string{pipelines.Entrypoint},
		Env: []string{pipelines.Env + "=" + pipelines.Deploy, pipelines.DeployNamespaceEnv + "=" + target,
			pipelines.DeployPlatformEnv + "=" + string(platform)},
	})
	b := clusterBackendWith(t, backend, kubepod.Options{Namespace: ns, Image: image, ArtifactSecret: "store"})
	run := func(auc string) serve.Deployed {
		t.Helper()
		st, err := pipeline.Run(ctx, pipelines.DeployTo(target, platform), b, &pipeline.RunOptions{Artifacts: root, Params: map[string]string{"auc": auc}})
		require.NoError(t, err, summary(st))
		var out serve.Deployed
		require.NoError(t, json.Unmarshal(st.Step("deploy").Output, &out))
		return out
	}

	first := run("0.8")
	require.True(t, first.Decision.Deploy, "%+v", first.Decision)
	require.NotNil(t, first.Release)
	assert.False(t, first.Local)
	assert.Equal(t, target, first.Namespace)
	d, err := cl.Client.AppsV1().Deployments(target).Get(ctx, object, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, d.Status.Replicas, d.Status.AvailableReplicas)
	assert.Equal(t, first.Version.Model.URI, d.Spec.Template.Annotations[serve.AnnotationModelURI], "the model of %s", object)
	gen := d.Generation

	// The step ran in a pod, as its own ServiceAccount.
	pods := podsByStep(t, ctx, ns)["deploy"]
	require.NotEmpty(t, pods, "the deploy step's pod")
	assert.Equal(t, kubepod.AccessName(pipelines.Deploy, "deploy"), pods[0].Spec.ServiceAccountName)

	worse := run("0.7")
	assert.False(t, worse.Decision.Deploy, "%+v", worse.Decision)
	assert.Nil(t, worse.Release)
	d, err = cl.Client.AppsV1().Deployments(target).Get(ctx, object, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, gen, d.Generation, "a candidate the gate keeps out changes nothing")

	s, err := artifact.Open(ctx, root)
	require.NoError(t, err)
	defer s.Close()
	rels, err := serve.NewRegistry(s).Releases(ctx, "scorer", serve.Staging)
	require.NoError(t, err)
	require.Len(t, rels, 1)
	assert.Equal(t, first.Release.Version, rels[0].Version)
}
