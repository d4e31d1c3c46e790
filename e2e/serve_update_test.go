package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"

	"github.com/sluice-ml/sluice/backends/local"
	"github.com/sluice-ml/sluice/e2e/internal/pipelines"
	"github.com/sluice-ml/sluice/internal/testcluster"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/resources"
	"github.com/sluice-ml/sluice/serve"
)

// TestServeRollingUpdate deploys a target of three replicas with the
// deploy step (maxSurge 1, maxUnavailable 0: the renderer's default),
// deploys the same model again, which writes nothing (each object's
// generation and the step's managed fields stay as they were), then
// deploys a better model: the real Deployment
// controller replaces the pods one by one, and a watch of the Deployment
// sees the update under way (a surge pod) and never fewer than three
// available replicas.
func TestServeRollingUpdate(t *testing.T) {
	need(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	ns, kubeconfig := namespace(t, true)
	root := "file://" + t.TempDir()
	run := func(auc string) serve.Deployed {
		t.Helper()
		p := pipeline.New("update", &pipeline.Options{Artifacts: root})
		target := serve.Target{Name: "ranker", Level: serve.Staging, Namespace: ns, Platform: serve.Kubernetes,
			Runtime:   serve.Runtime{Format: serve.GoModel, Image: "registry.example/ranker:v1"},
			Resources: resources.Profile{CPU: "100m", Memory: "128Mi", NodePool: testcluster.PoolCPU},
			NodePools: []resources.NodePool{{Name: testcluster.PoolCPU, Labels: map[string]string{testcluster.LabelNodePool: testcluster.PoolCPU}}},
			Replicas:  serve.Replicas{Min: ptr.To(3), Max: 3},
			Placement: serve.Placement{ShareNodes: true},
		}
		d := pipelines.EvalDeploy(p, target, &serve.DeployOptions{Kubeconfig: kubeconfig, Timeout: 2 * time.Minute,
			Gate: serve.Gate{Metric: "auc", Better: serve.Higher}})
		st, err := pipeline.Run(ctx, p, local.New(nil), &pipeline.RunOptions{Params: map[string]string{"auc": auc}})
		require.NoError(t, err, summary(st))
		var out serve.Deployed
		require.NoError(t, json.Unmarshal(st.Step(d.Name()).Output, &out))
		return out
	}
	// ours is what the deploy step wrote of each object: its generation
	// and the step's field manager's entry (a write that changed anything
	// moves its time and fields). Controllers write statuses; those are
	// theirs.
	ours := func() map[string]string {
		out := map[string]string{}
		add := func(kind string, m metav1.Object) {
			for _, f := range m.GetManagedFields() {
				if f.Manager == serve.FieldManager && f.Subresource == "" {
					out[kind+"/"+m.GetName()] = fmt.Sprintf("generation %d, applied %s: %s", m.GetGeneration(), f.Time, f.FieldsV1.Raw)
				}
			}
		}
		d, err := cl.Client.AppsV1().Deployments(ns).Get(ctx, "ranker", metav1.GetOptions{})
		require.NoError(t, err)
		add("Deployment", d)
		s, err := cl.Client.CoreV1().Services(ns).Get(ctx, "ranker", metav1.GetOptions{})
		require.NoError(t, err)
		add("Service", s)
		pdbs, err := cl.Client.PolicyV1().PodDisruptionBudgets(ns).List(ctx, metav1.ListOptions{})
		require.NoError(t, err)
		for i := range pdbs.Items {
			add("PodDisruptionBudget", &pdbs.Items[i])
		}
		return out
	}

	v1 := run("0.8")
	require.True(t, v1.Decision.Deploy, "%+v", v1.Decision)
	d, err := cl.Client.AppsV1().Deployments(ns).Get(ctx, "ranker", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, int32(3), d.Status.AvailableReplicas)
	require.NotNil(t, d.Spec.Strategy.RollingUpdate)
	assert.Equal(t, "0", d.Spec.Strategy.RollingUpdate.MaxUnavailable.String())
	before := ours()
	require.Len(t, before, 3, "the step applied a Deployment, a Service and a budget: %v", before)

	same := run("0.8") // the same bytes: the same version, live already
	assert.False(t, same.Decision.Deploy, "%+v", same.Decision)
	assert.Equal(t, v1.Version.Version, same.Version.Version, "the same model is the same version")
	assert.Equal(t, before, ours(), "deploying the live version again writes nothing")

	// Watch the Deployment through the update to v2.
	d, err = cl.Client.AppsV1().Deployments(ns).Get(ctx, "ranker", metav1.GetOptions{})
	require.NoError(t, err)
	w, err := cl.Client.AppsV1().Deployments(ns).Watch(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("metadata.name", "ranker").String(), ResourceVersion: d.ResourceVersion})
	require.NoError(t, err)
	var mu sync.Mutex
	minAvailable, maxReplicas, events := int32(1<<30), int32(0), 0
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for ev := range w.ResultChan() {
			dep, ok := ev.Object.(*appsv1.Deployment)
			if ev.Type != watch.Modified || !ok {
				continue
			}
			mu.Lock()
			events++
			minAvailable = min(minAvailable, dep.Status.AvailableReplicas)
			maxReplicas = max(maxReplicas, dep.Status.Replicas)
			mu.Unlock()
		}
	}()
	v2 := run("0.9")
	w.Stop()
	<-watched
	require.True(t, v2.Decision.Deploy, "%+v", v2.Decision)
	d, err = cl.Client.AppsV1().Deployments(ns).Get(ctx, "ranker", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, v2.Version.Model.URI, d.Spec.Template.Annotations[serve.AnnotationModelURI])
	assert.Equal(t, int32(3), d.Status.UpdatedReplicas)
	assert.Equal(t, int32(3), d.Status.AvailableReplicas)
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d Deployment events during the update: available ≥ %d, replicas ≤ %d", events, minAvailable, maxReplicas)
	// A surge pod shows as a fourth replica. (The count may briefly show
	// more: a ReplicaSet's status lags the pods it is deleting.)
	assert.Greater(t, maxReplicas, int32(3), "the watch saw the update under way")
	assert.GreaterOrEqual(t, minAvailable, int32(3), "never fewer available replicas than desired (maxUnavailable 0)")
}
