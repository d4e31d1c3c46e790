package serve

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/resources"
)

// Knative's autoscaling annotations: a revision's initial scale, and the
// autoscaler class (Knative's HPA class scales on CPU).
const (
	annotationInitialScale     = "autoscaling.knative.dev/initial-scale"
	annotationAutoscalingClass = "autoscaling.knative.dev/class"
	autoscalingClassHPA        = "hpa.autoscaling.knative.dev"
)

// KServe renders t serving m as KServe objects: one
// serving.kserve.io/v1beta1 InferenceService named Name, or, with A/B
// variants, one InferenceService "<name>-<variant>" per variant followed
// by a serving.kserve.io/v1alpha1 InferenceGraph named Name whose root
// Splitter node sends each variant its weight of the requests.
//
// The annotation serving.kserve.io/deploymentMode carries Mode. In
// Serverless mode the predictor scales on Autoscale's concurrency, rps or
// cpu (Knative's default concurrency when none is set; CPU takes
// Knative's HPA class, annotated autoscaling.knative.dev/class), may
// scale to zero (Replicas.Min 0, except on CPU) and takes Canary as
// canaryTrafficPercent, KServe keeping the previous revision for the rest; Replicas.Initial becomes
// Knative's initial scale when it exceeds Replicas.Min (and 1). In
// RawDeployment mode a HorizontalPodAutoscaler scales it on CPU and
// Rollout's maxSurge and maxUnavailable shape its rolling update.
//
// A model in a KServe format is the predictor's model: its format and
// version, the runtime (Runtime.Name, or KServe's choice), storageUri and
// protocolVersion. A [GoModel] runs Runtime.Image as the predictor's
// container "kserve-container", listening on port 8080 with probes on
// /v2/health/ready and /v2/health/live; the model reaches it through the
// environment (SLUICE_MODEL_URI, SLUICE_MODEL_FORMAT, SLUICE_MODEL_DIGEST,
// SLUICE_MODEL_VERSION), and PROTOCOL tells KServe it speaks V2. A
// Transformer is the InferenceService's transformer component, with
// SLUICE_PREDICTOR_URL set to the predictor's Service; note that KServe
// appends the arguments --model_name, --predictor_host and --http_port to
// a transformer's container unless its arguments already hold them.
//
// Pod and container security contexts pass Pod Security "restricted". t
// is validated first (a Platform of "" is taken as KServe); on error
// nothing is returned.
func (t Target) KServe(m Model) ([]runtime.Object, error) {
	t, err := t.prepare(KServe, m)
	if err != nil {
		return nil, err
	}
	f := t.format(m)
	var objs []runtime.Object
	tracks := t.tracks(m)
	for _, tr := range tracks {
		objs = append(objs, t.inferenceService(tr, f))
	}
	if len(t.Variants) > 0 {
		objs = append(objs, t.inferenceGraph(tracks))
	}
	return objs, nil
}

// componentLabels are the labels of a component's pods.
func (t Target) componentLabels(tr track, component string) map[string]string {
	l := t.trackLabels(tr)
	l[LabelComponent] = component
	return l
}

// scaling returns the component extension shared by predictor and
// transformer: replicas and the autoscaling metric.
func (t Target) scaling(podLabels map[string]string) ComponentExtension {
	ce := ComponentExtension{
		MinReplicas: ptr.To(int32(*t.Replicas.Min)),
		MaxReplicas: int32(t.Replicas.Max),
		Labels:      podLabels,
	}
	a := t.Autoscale
	switch {
	case a.Concurrency > 0:
		ce.ScaleMetric, ce.ScaleTarget = "concurrency", ptr.To(int32(a.Concurrency))
	case a.RPS > 0:
		ce.ScaleMetric, ce.ScaleTarget = "rps", ptr.To(int32(a.RPS))
	case a.CPUPercent > 0:
		ce.ScaleMetric, ce.ScaleTarget = "cpu", ptr.To(int32(a.CPUPercent))
	}
	switch t.Mode {
	case Serverless:
		// Knative starts a revision with max(initial-scale, min-scale)
		// replicas, initial-scale defaulting to 1.
		if t.Replicas.Initial > max(*t.Replicas.Min, 1) {
			ce.Annotations = map[string]string{annotationInitialScale: itoa(int32(t.Replicas.Initial))}
		}
		// Knative's own autoscaler (KPA, KServe's default class) scales on
		// concurrency and rps only; CPU needs its HPA class.
		if ce.ScaleMetric == "cpu" {
			if ce.Annotations == nil {
				ce.Annotations = map[string]string{}
			}
			ce.Annotations[annotationAutoscalingClass] = autoscalingClassHPA
		}
	case RawDeployment:
		ce.DeploymentStrategy = &appsv1.DeploymentStrategy{
			Type: appsv1.RollingUpdateDeploymentStrategyType,
			RollingUpdate: &appsv1.RollingUpdateDeployment{
				MaxSurge:       intOrPercent(t.Rollout.MaxSurge),
				MaxUnavailable: intOrPercent(t.Rollout.MaxUnavailable),
			},
		}
	}
	return ce
}

func (t Target) inferenceService(tr track, f Format) *InferenceService {
	res := t.resolve(t.Resources)
	podLabels := t.componentLabels(tr, "predictor")
	pl := t.placement(res.Placement, podLabels)

	pred := PredictorSpec{
		PodSpec: PodSpec{
			NodeSelector:              pl.nodeSelector,
			Tolerations:               pl.tolerations,
			Affinity:                  pl.affinity,
			TopologySpreadConstraints: pl.spread,
			SecurityContext:           kubepod.RestrictedPodSecurityContext(),
			ServiceAccountName:        t.ServiceAccount,
		},
		ComponentExtension: t.scaling(podLabels),
	}
	if t.Canary > 0 {
		pred.CanaryTrafficPercent = ptr.To(int64(t.Canary))
	}
	c := container{
		name:  kserveContainerName,
		image: t.Runtime.Image,
		args:  t.args(f),
		// KServe reads a custom container's protocol from PROTOCOL
		// (default v1).
		env: append(modelEnv(tr.model, f), corev1.EnvVar{Name: "PROTOCOL", Value: string(t.Protocol)},
			corev1.EnvVar{Name: envModelName, Value: t.Name}),
		port:     PredictorPort,
		portName: "http1", // Knative accepts http1 or h2c
		res:      res,
		ours:     true,
		probes:   true,
	}
	if t.Transformer != nil {
		c.env = append(c.env, corev1.EnvVar{Name: envPrePost, Value: "false"})
	}
	if f != GoModel {
		// A ServingRuntime's container: KServe sets its port and probes.
		c.port, c.ours, c.probes, c.env = 0, false, false, nil
	}
	ctr, vols := c.build()
	pred.Volumes = vols
	if f == GoModel {
		pred.Containers = []corev1.Container{ctr}
	} else {
		pred.Model = &ModelSpec{
			ModelFormat:     ModelFormat{Name: string(f), Version: t.Runtime.Version},
			Runtime:         t.Runtime.Name,
			StorageURI:      tr.model.URI,
			ProtocolVersion: string(t.Protocol),
			Image:           ctr.Image,
			Args:            ctr.Args,
			Resources:       ctr.Resources,
			SecurityContext: ctr.SecurityContext,
			VolumeMounts:    ctr.VolumeMounts,
		}
	}

	meta := t.objectMeta(tr.name, map[string]string{LabelTrack: tr.label})
	meta.Annotations = modelAnnotations(meta.Annotations, tr.model)
	meta.Annotations[AnnotationDeploymentMode] = string(t.Mode)
	isvc := &InferenceService{
		TypeMeta:   metav1.TypeMeta{APIVersion: KServeAPIVersion, Kind: "InferenceService"},
		ObjectMeta: meta,
		Spec:       InferenceServiceSpec{Predictor: pred},
	}
	if x := t.Transformer; x != nil {
		isvc.Spec.Transformer = t.transformer(tr, x)
	}
	return isvc
}

func (t Target) transformer(tr track, x *Transformer) *TransformerSpec {
	res := t.resolve(x.Resources)
	podLabels := t.componentLabels(tr, "transformer")
	pl := t.placement(res.Placement, podLabels)
	ctr, vols := container{
		name:  kserveContainerName,
		image: x.Image,
		args:  append([]string(nil), x.Args...),
		env: []corev1.EnvVar{
			{Name: envPredictorURL, Value: "http://" + tr.name + "-predictor." + t.Namespace + ".svc.cluster.local"},
			{Name: "PROTOCOL", Value: string(ProtocolV2)},
			{Name: envModelName, Value: t.Name},
		},
		port:     PredictorPort,
		portName: "http1",
		res:      res,
		ours:     true,
		probes:   true,
	}.build()
	return &TransformerSpec{
		PodSpec: PodSpec{
			Containers:                []corev1.Container{ctr},
			Volumes:                   vols,
			NodeSelector:              pl.nodeSelector,
			Tolerations:               pl.tolerations,
			Affinity:                  pl.affinity,
			TopologySpreadConstraints: pl.spread,
			SecurityContext:           kubepod.RestrictedPodSecurityContext(),
			ServiceAccountName:        t.ServiceAccount,
		},
		ComponentExtension: t.scaling(podLabels),
	}
}

func (t Target) inferenceGraph(tracks []track) *InferenceGraph {
	steps := make([]InferenceStep, len(tracks))
	for i, tr := range tracks {
		steps[i] = InferenceStep{Name: tr.label, ServiceName: tr.name, Weight: ptr.To(int64(t.Variants[i].Weight))}
	}
	meta := t.objectMeta(t.Name, nil)
	if meta.Annotations == nil {
		meta.Annotations = map[string]string{}
	}
	meta.Annotations[AnnotationDeploymentMode] = string(t.Mode)
	return &InferenceGraph{
		TypeMeta:   metav1.TypeMeta{APIVersion: KServeGraphAPIVersion, Kind: "InferenceGraph"},
		ObjectMeta: meta,
		Spec: InferenceGraphSpec{
			Nodes: map[string]InferenceRouter{"root": {RouterType: "Splitter", Steps: steps}},
			// The router's pods keep off the nodes of other levels too;
			// they need no pool of the target's.
			Affinity:           t.placement(resources.Placement{}, nil).affinity,
			MinReplicas:        ptr.To(int32(*t.Replicas.Min)),
			MaxReplicas:        int32(t.Replicas.Max),
			ServiceAccountName: t.ServiceAccount,
		},
	}
}
