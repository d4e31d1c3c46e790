package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/sluice-ml/sluice/artifact"
	"github.com/sluice-ml/sluice/backends/local"
	"github.com/sluice-ml/sluice/e2e/internal/pipelines"
	"github.com/sluice-ml/sluice/internal/testcluster"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/resources"
	"github.com/sluice-ml/sluice/serve"
)

// rolloutObjects are a Deployment of image and a Service for it, as
// unstructured objects; edit changes the Deployment before.
func rolloutObjects(t *testing.T, ns, image string, edit func(*appsv1.Deployment)) []*unstructured.Unstructured {
	t.Helper()
	labels := map[string]string{"app": "scorer"}
	d := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: "scorer", Namespace: ns, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{
				MaxSurge: ptr.To(intstr.FromInt32(1)), MaxUnavailable: ptr.To(intstr.FromInt32(0)),
			}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					NodeSelector: map[string]string{testcluster.LabelNodePool: testcluster.PoolCPU},
					SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65532),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
					Containers: []corev1.Container{{
						Name: "predictor", Image: image,
						SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false),
							Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
					}},
				},
			},
		},
	}
	if edit != nil {
		edit(d)
	}
	svc := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Name: "scorer", Namespace: ns},
		Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}
	var out []*unstructured.Unstructured
	for _, o := range []runtime.Object{d, svc} {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
		require.NoError(t, err)
		out = append(out, &unstructured.Unstructured{Object: m})
	}
	return out
}

// The rollout engine of serve on the real control plane: a Deployment
// rolls out (kwok's pods become Ready), an unschedulable version and one
// whose image cannot be pulled fail with their reason and are rolled
// back to the version before, a first rollout that fails leaves nothing
// behind, and applying the same objects again changes nothing.
func TestServeRollout(t *testing.T) {
	need(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	ns, _ := namespace(t, true)
	var mu sync.Mutex
	var progress []string
	a := &serve.Applier{Client: cl.Dynamic(), Mapper: cl.RESTMapper(), Timeout: time.Minute, Progress: func(m string) {
		mu.Lock()
		defer mu.Unlock()
		progress = append(progress, m)
	}}
	deployment := func() *appsv1.Deployment {
		d, err := cl.Client.AppsV1().Deployments(ns).Get(ctx, "scorer", metav1.GetOptions{})
		require.NoError(t, err)
		return d
	}

	v1 := rolloutObjects(t, ns, "registry.example/scorer:v1", nil)
	require.NoError(t, a.Rollout(ctx, v1, nil))
	d := deployment()
	assert.Equal(t, int32(2), d.Status.AvailableReplicas)
	assert.Equal(t, "registry.example/scorer:v1", d.Spec.Template.Spec.Containers[0].Image)
	gen := d.Generation
	mu.Lock()
	assert.Contains(t, progress, "ready")
	mu.Unlock()

	// The same objects again: nothing changes.
	require.NoError(t, a.Rollout(ctx, v1, nil))
	assert.Equal(t, gen, deployment().Generation, "applying the same objects leaves the Deployment's generation")

	// A version no node can take: Unschedulable at the timeout, rolled back.
	short := *a
	short.Timeout = 15 * time.Second
	v2 := rolloutObjects(t, ns, "registry.example/scorer:v2", func(d *appsv1.Deployment) {
		d.Spec.Template.Spec.NodeSelector = map[string]string{testcluster.LabelNodePool: "no-such-pool"}
	})
	err := short.Rollout(ctx, v2, v1)
	var re *serve.RolloutError
	require.True(t, errors.As(err, &re), "%v", err)
	assert.Equal(t, "Unschedulable", re.Reason, "%v", err)
	assert.Contains(t, re.Message, "didn't match Pod's node affinity/selector")
	assert.True(t, re.RolledBack, "%v", err)
	d = deployment()
	assert.Equal(t, "registry.example/scorer:v1", d.Spec.Template.Spec.Containers[0].Image, "rolled back")
	assert.Equal(t, int32(2), d.Status.AvailableReplicas)

	// A version whose image the kubelet cannot pull (the test bed's host
	// kubelet plays the pods labelled sluice.dev/run, and knows no such
	// image): it fails at once, without waiting for the timeout.
	v3 := rolloutObjects(t, ns, "registry.example/scorer:v3", func(d *appsv1.Deployment) {
		d.Spec.Template.Labels = map[string]string{"app": "scorer", testcluster.LabelSluiceRun: "rollout"}
	})
	start := time.Now()
	err = a.Rollout(ctx, v3, v1)
	require.True(t, errors.As(err, &re), "%v", err)
	assert.Equal(t, "ErrImagePull", re.Reason, "%v", err)
	assert.Contains(t, err.Error(), `is not known to the test kubelet`)
	assert.Contains(t, err.Error(), "rolled back to the previous version")
	assert.Less(t, time.Since(start), time.Minute, "a pull failure does not wait for the timeout")
	d = deployment()
	assert.Equal(t, "registry.example/scorer:v1", d.Spec.Template.Spec.Containers[0].Image)
	assert.Equal(t, int32(2), d.Status.AvailableReplicas)

	// A first rollout that fails leaves no object behind.
	first := rolloutObjects(t, ns, "registry.example/other:v1", func(d *appsv1.Deployment) {
		d.Name = "other"
		d.Spec.Template.Spec.NodeSelector = map[string]string{testcluster.LabelNodePool: "no-such-pool"}
	})
	first[1].SetName("other")
	err = short.Rollout(ctx, first, nil)
	require.True(t, errors.As(err, &re), "%v", err)
	assert.True(t, re.RolledBack)
	_, err = cl.Client.AppsV1().Deployments(ns).Get(ctx, "other", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "the failed first rollout's Deployment is gone: %v", err)
	_, err = cl.Client.CoreV1().Services(ns).Get(ctx, "other", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "and its Service: %v", err)

	mu.Lock()
	t.Logf("progress: %s", strings.Join(progress, " | "))
	mu.Unlock()
	managers := deployment().ManagedFields
	require.NotEmpty(t, managers)
	assert.Equal(t, serve.FieldManager, managers[0].Manager)
	assert.Equal(t, metav1.ManagedFieldsOperationApply, managers[0].Operation)
}

// The deploy step on the real control plane, from a run on the local
// backend with a kubeconfig: it renders a plain-Kubernetes target,
// rolls it out (kwok's pods become Ready), records the release; a worse
// candidate is kept out without touching the cluster; a better one whose
// pods cannot be placed fails with the reason and leaves the live
// version serving.
func TestServeDeployStep(t *testing.T) {
	need(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	ns, kubeconfig := namespace(t, true)
	root := "file://" + t.TempDir()
	var reg serve.Registry // nil: the run's store's
	build := func(pool string) (*pipeline.Pipeline, pipeline.Step[serve.Deployed]) {
		p := pipeline.New("churn", &pipeline.Options{Artifacts: root})
		target := serve.Target{Name: "churn", Level: serve.Staging, Namespace: ns, Platform: serve.Kubernetes,
			Runtime:   serve.Runtime{Format: serve.GoModel, Image: "registry.example/churn:v1"},
			Resources: resources.Profile{CPU: "100m", Memory: "128Mi", NodePool: pool},
			NodePools: []resources.NodePool{{Name: testcluster.PoolCPU, Labels: map[string]string{testcluster.LabelNodePool: testcluster.PoolCPU}},
				{Name: "gone", Labels: map[string]string{testcluster.LabelNodePool: "no-such-pool"}}},
		}
		d := pipelines.EvalDeploy(p, target, &serve.DeployOptions{Kubeconfig: kubeconfig, Timeout: 20 * time.Second,
			Gate: serve.Gate{Metric: "auc", Better: serve.Higher}, Registry: reg})
		return p, d
	}
	run := func(pool, auc string) (serve.Deployed, error) {
		p, d := build(pool)
		st, err := pipeline.Run(ctx, p, local.New(nil), &pipeline.RunOptions{Params: map[string]string{"auc": auc}})
		var out serve.Deployed
		if st != nil {
			for _, s := range st.Steps {
				if s.Name == d.Name() && len(s.Output) > 0 {
					require.NoError(t, json.Unmarshal(s.Output, &out))
				}
				if s.Name == d.Name() && s.Message != "" && err != nil {
					err = fmt.Errorf("%w: %s", err, s.Message)
				}
			}
		}
		return out, err
	}

	first, err := run(testcluster.PoolCPU, "0.8")
	require.NoError(t, err)
	require.True(t, first.Decision.Deploy, "%+v", first.Decision)
	require.NotNil(t, first.Release)
	assert.False(t, first.Local)
	d, err := cl.Client.AppsV1().Deployments(ns).Get(ctx, "churn", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, d.Status.Replicas, d.Status.AvailableReplicas)
	gen := d.Generation

	worse, err := run(testcluster.PoolCPU, "0.7")
	require.NoError(t, err)
	assert.False(t, worse.Decision.Deploy)
	d, err = cl.Client.AppsV1().Deployments(ns).Get(ctx, "churn", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, gen, d.Generation, "a candidate the gate keeps out changes nothing")

	_, err = run("gone", "0.9")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Unschedulable")
	assert.Contains(t, err.Error(), "rolled back to the previous version")
	d, err = cl.Client.AppsV1().Deployments(ns).Get(ctx, "churn", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, d.Status.Replicas, d.Status.AvailableReplicas, "v1 serves again")
	assert.Equal(t, first.Version.Model.URI, d.Spec.Template.Annotations[serve.AnnotationModelURI], "the model of v1")

	// A rollout that succeeds but whose release the registry cannot
	// record is undone: the registry and the cluster agree on v1.
	s, err := artifact.Open(ctx, root)
	require.NoError(t, err)
	defer s.Close()
	reg = noReleases{serve.NewRegistry(s)}
	_, err = run(testcluster.PoolCPU, "0.95")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "recording the release: the registry is unreachable")
	assert.Contains(t, err.Error(), "rolled back to the previous version")
	d, err = cl.Client.AppsV1().Deployments(ns).Get(ctx, "churn", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, first.Version.Model.URI, d.Spec.Template.Annotations[serve.AnnotationModelURI], "v1 again")
	assert.Equal(t, d.Status.Replicas, d.Status.AvailableReplicas)

	rels, err := serve.NewRegistry(s).Releases(ctx, "churn", serve.Staging)
	require.NoError(t, err)
	assert.Len(t, rels, 1, "only the rollout that succeeded and was recorded is a release")
}

// noReleases is a registry that cannot record releases.
type noReleases struct{ serve.Registry }

func (noReleases) Release(context.Context, serve.Release) (serve.Release, error) {
	return serve.Release{}, errors.New("the registry is unreachable")
}
