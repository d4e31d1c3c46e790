package serve_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluice-ml/sluice/resources"
	"github.com/sluice-ml/sluice/serve"
)

func kubernetesObjects(t *testing.T, tgt serve.Target, m serve.Model) []runtime.Object {
	t.Helper()
	objs, err := tgt.Kubernetes(m)
	require.NoError(t, err)
	return objs
}

func objectsOf[T runtime.Object](objs []runtime.Object) []T {
	var out []T
	for _, o := range objs {
		if x, ok := o.(T); ok {
			out = append(out, x)
		}
	}
	return out
}

func envOf(c corev1.Container) map[string]string {
	m := map[string]string{}
	for _, e := range c.Env {
		m[e.Name] = e.Value
	}
	return m
}

// TestKubernetesCanaryTraffic checks the canary's traffic split: the
// HTTPRoute sends 100-canary percent to the stable Service and canary
// percent to the canary's, and each track's Deployment serves its model.
func TestKubernetesCanaryTraffic(t *testing.T) {
	tgt := base(serve.Kubernetes, "")
	tgt.Canary, tgt.Stable, tgt.Gateway = 25, &churnV1, serve.GatewayRef{Name: "gw"}
	objs := kubernetesObjects(t, tgt, churnV2)

	routes := objectsOf[*gatewayv1.HTTPRoute](objs)
	require.Len(t, routes, 1)
	refs := routes[0].Spec.Rules[0].BackendRefs
	require.Len(t, refs, 2)
	assert.Equal(t, gatewayv1.ObjectName("churn"), refs[0].Name)
	assert.Equal(t, int32(75), *refs[0].Weight)
	assert.Equal(t, gatewayv1.ObjectName("churn-canary"), refs[1].Name)
	assert.Equal(t, int32(25), *refs[1].Weight)
	assert.Equal(t, gatewayv1.ObjectName("gw"), routes[0].Spec.ParentRefs[0].Name)

	services := objectsOf[*corev1.Service](objs)
	deps := objectsOf[*appsv1.Deployment](objs)
	require.Len(t, services, 2)
	require.Len(t, deps, 2)
	for i, want := range []serve.Model{churnV1, churnV2} {
		d := deps[i]
		assert.Equal(t, string(refs[i].Name), services[i].Name)
		assert.Equal(t, want.URI, envOf(d.Spec.Template.Spec.Containers[0])["SLUICE_MODEL_URI"], d.Name)
		assert.Equal(t, want.URI, d.Annotations[serve.AnnotationModelURI], d.Name)
		// The Service selects exactly this track's pods.
		assert.Equal(t, d.Spec.Selector.MatchLabels, services[i].Spec.Selector, d.Name)
		assert.Equal(t, d.Spec.Selector.MatchLabels, d.Spec.Template.Labels, d.Name)
	}
	assert.NotEqual(t, services[0].Spec.Selector, services[1].Spec.Selector)
}

// TestKServeVariantsGraph checks A/B variants on KServe: one
// InferenceService per variant, each with its model, and an InferenceGraph
// splitting by the variants' weights.
func TestKServeVariantsGraph(t *testing.T) {
	tgt := base(serve.KServe, serve.Serverless)
	tgt.Variants = []serve.Variant{{Name: "a", Weight: 20}, {Name: "b", Weight: 80, Model: churnV1}}
	objs, err := tgt.KServe(churnV2)
	require.NoError(t, err)
	isvcs := objectsOf[*serve.InferenceService](objs)
	graphs := objectsOf[*serve.InferenceGraph](objs)
	require.Len(t, isvcs, 2)
	require.Len(t, graphs, 1)
	assert.Equal(t, "churn-a", isvcs[0].Name)
	assert.Equal(t, churnV2.URI, isvcs[0].Spec.Predictor.Model.StorageURI)
	assert.Equal(t, "churn-b", isvcs[1].Name)
	assert.Equal(t, churnV1.URI, isvcs[1].Spec.Predictor.Model.StorageURI)
	root := graphs[0].Spec.Nodes["root"]
	assert.Equal(t, "Splitter", root.RouterType)
	require.Len(t, root.Steps, 2)
	for i, s := range root.Steps {
		assert.Equal(t, isvcs[i].Name, s.ServiceName)
		assert.Equal(t, int64(tgt.Variants[i].Weight), *s.Weight)
	}
	assert.Equal(t, "churn", graphs[0].Name)
}

// TestKubernetesScaling checks replicas, the HPA and the PDB, and that
// they are left out when they would do nothing or harm.
func TestKubernetesScaling(t *testing.T) {
	tgt := base(serve.Kubernetes, "")
	tgt.Replicas = serve.Replicas{Min: ptr.To(3), Initial: 4, Max: 9}
	tgt.Autoscale.CPUPercent = 65
	objs := kubernetesObjects(t, tgt, churnV2)
	dep := objectsOf[*appsv1.Deployment](objs)[0]
	assert.Equal(t, int32(4), *dep.Spec.Replicas)
	hpa := objectsOf[*autoscalingv2.HorizontalPodAutoscaler](objs)[0]
	assert.Equal(t, int32(3), *hpa.Spec.MinReplicas)
	assert.Equal(t, int32(9), hpa.Spec.MaxReplicas)
	assert.Equal(t, int32(65), *hpa.Spec.Metrics[0].Resource.Target.AverageUtilization)
	assert.Equal(t, dep.Name, hpa.Spec.ScaleTargetRef.Name)
	pdb := objectsOf[*policyv1.PodDisruptionBudget](objs)[0]
	assert.Equal(t, 2, pdb.Spec.MinAvailable.IntValue())

	// One fixed replica: no HPA (min = max) and no PDB (it would block
	// every drain).
	tgt.Replicas = serve.Replicas{}
	objs = kubernetesObjects(t, tgt, churnV2)
	assert.Empty(t, objectsOf[*autoscalingv2.HorizontalPodAutoscaler](objs))
	assert.Empty(t, objectsOf[*policyv1.PodDisruptionBudget](objs))
	assert.Equal(t, int32(1), *objectsOf[*appsv1.Deployment](objs)[0].Spec.Replicas)

	// Rollout defaults: surge 25%, never below the desired count.
	ru := objectsOf[*appsv1.Deployment](objs)[0].Spec.Strategy.RollingUpdate
	assert.Equal(t, "25%", ru.MaxSurge.String())
	assert.Equal(t, 0, ru.MaxUnavailable.IntValue())
}

// TestPlacementLevels checks the rules between levels and the node pool
// placement together: the pool's selector and tolerations, the user's own
// node affinity kept, and the required anti-affinity against other
// levels in every namespace.
func TestPlacementLevels(t *testing.T) {
	userAffinity := &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}}},
		}}},
	}}
	tgt := base(serve.Kubernetes, "")
	tgt.Level = serve.Staging
	tgt.NodePools = []resources.NodePool{migPool}
	tgt.Resources = resources.Profile{CPU: "2", Memory: "8Gi", MIG: "1g.5gb", NodePool: "a100-mig", Affinity: userAffinity}
	tmpl := objectsOf[*appsv1.Deployment](kubernetesObjects(t, tgt, churnV2))[0].Spec.Template
	spec := tmpl.Spec
	assert.Equal(t, "staging", tmpl.Labels[serve.LabelLevel], "the label the other levels' anti-affinity selects")

	assert.Equal(t, "p4d-mig", spec.NodeSelector["eks.amazonaws.com/nodegroup"])
	assert.Contains(t, spec.Tolerations, corev1.Toleration{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "inference", Effect: corev1.TaintEffectNoSchedule})
	assert.Equal(t, userAffinity.NodeAffinity, spec.Affinity.NodeAffinity)
	terms := spec.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution
	require.Len(t, terms, 1)
	assert.Equal(t, "kubernetes.io/hostname", terms[0].TopologyKey)
	assert.Equal(t, &metav1.LabelSelector{}, terms[0].NamespaceSelector, "every namespace")
	assert.Contains(t, terms[0].LabelSelector.MatchExpressions, metav1.LabelSelectorRequirement{
		Key: serve.LabelLevel, Operator: metav1.LabelSelectorOpNotIn, Values: []string{"staging"},
	})
	require.Len(t, spec.TopologySpreadConstraints, 1)
	assert.Equal(t, corev1.ScheduleAnyway, spec.TopologySpreadConstraints[0].WhenUnsatisfiable)
	assert.Equal(t, "1", spec.Containers[0].Resources.Limits.Name("nvidia.com/mig-1g.5gb", "").String())

	// The caller's affinity is not modified.
	assert.Nil(t, userAffinity.PodAntiAffinity)

	// Opting out removes both rules.
	tgt.Placement = serve.Placement{ShareNodes: true, NoSpread: true}
	spec = objectsOf[*appsv1.Deployment](kubernetesObjects(t, tgt, churnV2))[0].Spec.Template.Spec
	assert.Nil(t, spec.Affinity.PodAntiAffinity)
	assert.Empty(t, spec.TopologySpreadConstraints)
}
