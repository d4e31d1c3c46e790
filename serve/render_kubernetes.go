package serve

import (
	"maps"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluice-ml/sluice/backends/kubepod"
)

// servicePort is the port of every Service the Kubernetes renderer makes.
const servicePort = 80

// Kubernetes renders t serving m as plain Kubernetes objects, in this
// order, for each track (the stable one; or the stable one and
// "<name>-canary" with a canary; or "<name>-<variant>" for each A/B
// variant):
//
//   - an apps/v1 Deployment: Replicas.Initial replicas, a rolling update
//     with Rollout's maxSurge, maxUnavailable and minReadySeconds,
//     readiness and liveness probes on the Open Inference Protocol's
//     /v2/health/ready and /v2/health/live when the runtime speaks V2, and
//     the transformer, if any, as a second container that receives the
//     traffic on port 8080 and calls the predictor on 127.0.0.1:8081;
//   - a core/v1 Service on port 80, to the pod's port named "http";
//   - an autoscaling/v2 HorizontalPodAutoscaler on CPU utilisation, when
//     Replicas.Max exceeds Replicas.Min;
//   - a policy/v1 PodDisruptionBudget with minAvailable Replicas.Min - 1,
//     when Replicas.Min is 2 or more (with one replica, a budget would block
//     every node drain);
//
// and last, with a canary or variants, a gateway.networking.k8s.io/v1
// HTTPRoute named Name, attached to Gateway, that splits traffic between
// the tracks' Services by weight.
//
// Every pod passes Pod Security "restricted". The model reaches the
// container through the environment (SLUICE_MODEL_URI, SLUICE_MODEL_FORMAT,
// SLUICE_MODEL_DIGEST, SLUICE_MODEL_VERSION; arguments may use
// "$(SLUICE_MODEL_URI)"), and PORT says where to listen. t is validated
// first (a Platform of "" is taken as Kubernetes); on error nothing is
// returned.
func (t Target) Kubernetes(m Model) ([]runtime.Object, error) {
	t, err := t.prepare(Kubernetes, m)
	if err != nil {
		return nil, err
	}
	f := t.format(m)
	var objs []runtime.Object
	tracks := t.tracks(m)
	for _, tr := range tracks {
		objs = append(objs, t.deployment(tr, f), t.service(tr))
		if t.Replicas.Max > *t.Replicas.Min {
			objs = append(objs, t.hpa(tr))
		}
		if *t.Replicas.Min >= 2 {
			objs = append(objs, t.pdb(tr))
		}
	}
	if len(tracks) > 1 {
		objs = append(objs, t.httpRoute(tracks))
	}
	return objs, nil
}

func (t Target) trackLabels(tr track) map[string]string {
	l := t.labels()
	l[LabelTrack] = tr.label
	return l
}

func (t Target) deployment(tr track, f Format) *appsv1.Deployment {
	podLabels := t.trackLabels(tr)
	res := t.resolve(t.Resources)
	pl := t.placement(res.Placement, podLabels)

	pred := container{
		name:     "predictor",
		image:    t.Runtime.Image,
		args:     t.args(f),
		env:      modelEnv(tr.model, f),
		port:     PredictorPort,
		portName: "http",
		res:      res,
		ours:     f == GoModel,
		probes:   t.Protocol == ProtocolV2,
	}
	var ctrs []corev1.Container
	var vols []corev1.Volume
	if x := t.Transformer; x != nil {
		pred.port, pred.portName = SidecarPredictorPort, "predictor"
		tc, tv := container{
			name:  "transformer",
			image: x.Image,
			args:  append([]string(nil), x.Args...),
			env: []corev1.EnvVar{
				{Name: "PORT", Value: itoa(PredictorPort)},
				{Name: envPredictorURL, Value: "http://127.0.0.1:" + itoa(SidecarPredictorPort)},
			},
			port:     PredictorPort,
			portName: "http",
			res:      t.resolve(x.Resources),
			ours:     true,
			probes:   true,
		}.build()
		ctrs, vols = append(ctrs, tc), append(vols, tv...)
		if f == GoModel {
			pred.env = append(pred.env, corev1.EnvVar{Name: envPrePost, Value: "false"})
		}
	}
	pred.env = append(pred.env, corev1.EnvVar{Name: "PORT", Value: itoa(pred.port)})
	pc, pv := pred.build()
	ctrs, vols = append([]corev1.Container{pc}, ctrs...), append(pv, vols...)

	meta := t.objectMeta(tr.name, map[string]string{LabelTrack: tr.label})
	meta.Annotations = modelAnnotations(meta.Annotations, tr.model)
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: meta,
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(t.Replicas.Initial)),
			Selector: &metav1.LabelSelector{MatchLabels: maps.Clone(podLabels)},
			Strategy: appsv1.DeploymentStrategy{
				Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{
					MaxSurge:       intOrPercent(t.Rollout.MaxSurge),
					MaxUnavailable: intOrPercent(t.Rollout.MaxUnavailable),
				},
			},
			MinReadySeconds: int32(t.Rollout.MinReadySeconds),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels, Annotations: modelAnnotations(nil, tr.model)},
				Spec: corev1.PodSpec{
					Containers:                ctrs,
					Volumes:                   vols,
					NodeSelector:              pl.nodeSelector,
					Tolerations:               pl.tolerations,
					Affinity:                  pl.affinity,
					TopologySpreadConstraints: pl.spread,
					SecurityContext:           kubepod.RestrictedPodSecurityContext(),
					ServiceAccountName:        t.ServiceAccount,
				},
			},
		},
	}
}

func (t Target) service(tr track) *corev1.Service {
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: t.objectMeta(tr.name, map[string]string{LabelTrack: tr.label}),
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: t.trackLabels(tr),
			Ports: []corev1.ServicePort{{
				Name:       "http",
				Port:       servicePort,
				TargetPort: intstr.FromString("http"),
				Protocol:   corev1.ProtocolTCP,
			}},
		},
	}
}

func (t Target) hpa(tr track) *autoscalingv2.HorizontalPodAutoscaler {
	return &autoscalingv2.HorizontalPodAutoscaler{
		TypeMeta:   metav1.TypeMeta{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler"},
		ObjectMeta: t.objectMeta(tr.name, map[string]string{LabelTrack: tr.label}),
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: tr.name},
			MinReplicas:    ptr.To(int32(*t.Replicas.Min)),
			MaxReplicas:    int32(t.Replicas.Max),
			Metrics: []autoscalingv2.MetricSpec{{
				Type: autoscalingv2.ResourceMetricSourceType,
				Resource: &autoscalingv2.ResourceMetricSource{
					Name: corev1.ResourceCPU,
					Target: autoscalingv2.MetricTarget{
						Type:               autoscalingv2.UtilizationMetricType,
						AverageUtilization: ptr.To(int32(t.Autoscale.CPUPercent)),
					},
				},
			}},
		},
	}
}

func (t Target) pdb(tr track) *policyv1.PodDisruptionBudget {
	minAvail := intstr.FromInt32(int32(*t.Replicas.Min - 1))
	return &policyv1.PodDisruptionBudget{
		TypeMeta:   metav1.TypeMeta{APIVersion: "policy/v1", Kind: "PodDisruptionBudget"},
		ObjectMeta: t.objectMeta(tr.name, map[string]string{LabelTrack: tr.label}),
		Spec: policyv1.PodDisruptionBudgetSpec{
			MinAvailable: &minAvail,
			Selector:     &metav1.LabelSelector{MatchLabels: t.trackLabels(tr)},
		},
	}
}

func (t Target) httpRoute(tracks []track) *gatewayv1.HTTPRoute {
	weights := make([]int, len(tracks))
	if len(t.Variants) > 0 {
		for i, v := range t.Variants {
			weights[i] = v.Weight
		}
	} else {
		weights[0], weights[1] = 100-t.Canary, t.Canary
	}
	refs := make([]gatewayv1.HTTPBackendRef, len(tracks))
	for i, tr := range tracks {
		refs[i] = gatewayv1.HTTPBackendRef{BackendRef: gatewayv1.BackendRef{
			BackendObjectReference: gatewayv1.BackendObjectReference{
				Name: gatewayv1.ObjectName(tr.name),
				Port: ptr.To(gatewayv1.PortNumber(servicePort)),
			},
			Weight: ptr.To(int32(weights[i])),
		}}
	}
	parent := gatewayv1.ParentReference{Name: gatewayv1.ObjectName(t.Gateway.Name)}
	if t.Gateway.Namespace != "" {
		parent.Namespace = ptr.To(gatewayv1.Namespace(t.Gateway.Namespace))
	}
	return &gatewayv1.HTTPRoute{
		TypeMeta:   metav1.TypeMeta{APIVersion: gatewayv1.GroupVersion.String(), Kind: "HTTPRoute"},
		ObjectMeta: t.objectMeta(t.Name, nil),
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{parent}},
			Rules:           []gatewayv1.HTTPRouteRule{{BackendRefs: refs}},
		},
	}
}
