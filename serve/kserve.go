package serve

import (
	"encoding/json"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// The KServe objects, as small structs of our own: the kserve Go module
// pins Kubernetes libraries that conflict with this module's, and a
// renderer needs few of its fields. Field names and JSON tags follow
// KServe v0.15.2's CRDs (config/crd/full, vendored under
// e2e/testdata/crds/kserve), against which the e2e tests check every
// rendered object with strict field validation.

// KServe API groups and versions.
const (
	KServeAPIVersion      = "serving.kserve.io/v1beta1"
	KServeGraphAPIVersion = "serving.kserve.io/v1alpha1"
	kserveContainerName   = "kserve-container" // KServe's name for a custom component's main container
)

// InferenceService is KServe's serving.kserve.io/v1beta1 InferenceService,
// with the fields the renderer sets.
type InferenceService struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              InferenceServiceSpec `json:"spec"`
}

// InferenceServiceSpec is an InferenceService's spec.
type InferenceServiceSpec struct {
	// Predictor serves the model.
	Predictor PredictorSpec `json:"predictor"`
	// Transformer pre- and post-processes requests; nil when none.
	Transformer *TransformerSpec `json:"transformer,omitempty"`
}

// PredictorSpec is the predictor component: a model served by a
// ServingRuntime (Model), or containers of one's own (Containers).
type PredictorSpec struct {
	// Model is the model and the runtime that serves it; nil when
	// Containers serve it.
	Model *ModelSpec `json:"model,omitempty"`
	PodSpec
	ComponentExtension
}

// TransformerSpec is the transformer component.
type TransformerSpec struct {
	PodSpec
	ComponentExtension
}

// ModelSpec is a predictor's model: its format, where it is and the
// runtime's container settings.
type ModelSpec struct {
	// ModelFormat selects the runtime with Runtime.
	ModelFormat ModelFormat `json:"modelFormat"`
	// Runtime names the ServingRuntime; "" lets KServe pick.
	Runtime string `json:"runtime,omitempty"`
	// StorageURI is where the model is.
	StorageURI string `json:"storageUri,omitempty"`
	// ProtocolVersion is "v1" or "v2".
	ProtocolVersion string `json:"protocolVersion,omitempty"`
	// Image overrides the runtime's image.
	Image string `json:"image,omitempty"`
	// Args are added to the runtime's arguments.
	Args []string `json:"args,omitempty"`
	// Env is added to the runtime's environment.
	Env []corev1.EnvVar `json:"env,omitempty"`
	// Resources are the model container's requests and limits.
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`
	// SecurityContext is the model container's security context.
	SecurityContext *corev1.SecurityContext `json:"securityContext,omitempty"`
	// VolumeMounts are the model container's mounts.
	VolumeMounts []corev1.VolumeMount `json:"volumeMounts,omitempty"`
}

// ModelFormat names a model format and optionally its version.
type ModelFormat struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
}

// PodSpec holds the pod fields of a component that the renderer sets;
// KServe inlines a whole corev1.PodSpec there.
type PodSpec struct {
	Containers                []corev1.Container                `json:"containers,omitempty"`
	Volumes                   []corev1.Volume                   `json:"volumes,omitempty"`
	NodeSelector              map[string]string                 `json:"nodeSelector,omitempty"`
	Tolerations               []corev1.Toleration               `json:"tolerations,omitempty"`
	Affinity                  *corev1.Affinity                  `json:"affinity,omitempty"`
	TopologySpreadConstraints []corev1.TopologySpreadConstraint `json:"topologySpreadConstraints,omitempty"`
	SecurityContext           *corev1.PodSecurityContext        `json:"securityContext,omitempty"`
	ServiceAccountName        string                            `json:"serviceAccountName,omitempty"`
}

// ComponentExtension holds a component's scaling and rollout settings.
type ComponentExtension struct {
	// MinReplicas is the fewest replicas; 0 scales to zero (Serverless).
	MinReplicas *int32 `json:"minReplicas,omitempty"`
	// MaxReplicas is the most replicas.
	MaxReplicas int32 `json:"maxReplicas,omitempty"`
	// ScaleTarget is the autoscaler's target value for ScaleMetric.
	ScaleTarget *int32 `json:"scaleTarget,omitempty"`
	// ScaleMetric is "cpu", "memory", "concurrency" or "rps".
	ScaleMetric string `json:"scaleMetric,omitempty"`
	// CanaryTrafficPercent is the new revision's share of traffic.
	CanaryTrafficPercent *int64 `json:"canaryTrafficPercent,omitempty"`
	// DeploymentStrategy is the rolling update of RawDeployment mode.
	DeploymentStrategy *appsv1.DeploymentStrategy `json:"deploymentStrategy,omitempty"`
	// Labels and Annotations go on the component's pods.
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// InferenceGraph is KServe's serving.kserve.io/v1alpha1 InferenceGraph,
// with the fields the renderer sets: A/B variants are a Splitter node
// over one InferenceService per variant.
type InferenceGraph struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              InferenceGraphSpec `json:"spec"`
}

// InferenceGraphSpec is an InferenceGraph's spec.
type InferenceGraphSpec struct {
	// Nodes are the graph's routers; the entry is "root".
	Nodes map[string]InferenceRouter `json:"nodes"`
	// Placement of the graph's router pods.
	NodeSelector map[string]string   `json:"nodeSelector,omitempty"`
	Tolerations  []corev1.Toleration `json:"tolerations,omitempty"`
	Affinity     *corev1.Affinity    `json:"affinity,omitempty"`
	// MinReplicas and MaxReplicas bound the router's replicas.
	MinReplicas *int32 `json:"minReplicas,omitempty"`
	MaxReplicas int32  `json:"maxReplicas,omitempty"`
	// ServiceAccountName is the router pods' service account.
	ServiceAccountName string `json:"serviceAccountName,omitempty"`
}

// InferenceRouter is one node of an InferenceGraph.
type InferenceRouter struct {
	// RouterType is "Splitter" for an A/B split.
	RouterType string `json:"routerType"`
	// Steps are the routes.
	Steps []InferenceStep `json:"steps,omitempty"`
}

// InferenceStep is one route of a router.
type InferenceStep struct {
	// Name names the step.
	Name string `json:"name,omitempty"`
	// ServiceName is the InferenceService the step calls.
	ServiceName string `json:"serviceName,omitempty"`
	// Weight is the step's share of traffic, in percent (Splitter).
	Weight *int64 `json:"weight,omitempty"`
}

// DeepCopyObject implements runtime.Object.
func (in *InferenceService) DeepCopyObject() runtime.Object { return deepCopy(in) }

// DeepCopyObject implements runtime.Object.
func (in *InferenceGraph) DeepCopyObject() runtime.Object { return deepCopy(in) }

// deepCopy copies in through JSON, which reaches every field of these
// plain types (they hold no unexported state and round-trip exactly).
func deepCopy[T any, P interface {
	*T
	runtime.Object
}](in P) runtime.Object {
	if in == nil {
		return nil
	}
	b, err := json.Marshal(in)
	if err != nil {
		panic("serve: deep copy: " + err.Error()) // cannot happen: the types are plain data
	}
	out := P(new(T))
	if err := json.Unmarshal(b, out); err != nil {
		panic("serve: deep copy: " + err.Error())
	}
	return out
}
