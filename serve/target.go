package serve

import (
	"github.com/sluice-ml/sluice/resources"
)

// Platform is what a [Target] renders to.
type Platform string

// Platforms.
const (
	// KServe renders a serving.kserve.io/v1beta1 InferenceService (and,
	// for A/B variants, one per variant behind an InferenceGraph).
	KServe Platform = "KServe"
	// Kubernetes renders plain apps/v1 Deployments, Services,
	// HorizontalPodAutoscalers and PodDisruptionBudgets, and a Gateway API
	// HTTPRoute for canaries and variants.
	Kubernetes Platform = "Kubernetes"
)

// Platforms lists the platforms.
var Platforms = []Platform{KServe, Kubernetes}

// Mode is KServe's deployment mode, set on the InferenceService with the
// annotation serving.kserve.io/deploymentMode.
type Mode string

// KServe deployment modes.
const (
	// Serverless runs the predictor as a Knative Service: request-driven
	// autoscaling on concurrency or requests per second, scale to zero,
	// canary traffic between revisions.
	Serverless Mode = "Serverless"
	// RawDeployment runs the predictor as a plain Deployment scaled by a
	// HorizontalPodAutoscaler on CPU: no Knative, no scale to zero, no
	// canary.
	RawDeployment Mode = "RawDeployment"
)

// Modes lists the KServe deployment modes.
var Modes = []Mode{Serverless, RawDeployment}

// Protocol is the inference protocol a runtime speaks.
type Protocol string

// Inference protocols.
const (
	// ProtocolV1 is KServe's V1 (TensorFlow Serving style) REST protocol.
	ProtocolV1 Protocol = "v1"
	// ProtocolV2 is the Open Inference Protocol (V2) over REST.
	ProtocolV2 Protocol = "v2"
)

// Protocols lists the inference protocols.
var Protocols = []Protocol{ProtocolV1, ProtocolV2}

// Target is where and how a model is served: plain data, written as a
// struct literal, checked by [Target.Validate] and rendered by
// [Target.KServe] and [Target.Kubernetes] (or [Render]). The zero values
// of its optional fields take the defaults documented on each field; they
// are applied in one place, before validation and rendering.
//
// A Target is a value: methods never modify it, and it is safe to use
// from several goroutines as long as nobody writes to it.
type Target struct {
	// Name names the served model and every object rendered for it. It is
	// a DNS-1035 label (lower case letters, digits and '-', starting with a
	// letter) of at most [MaxNameLength] characters, so that the names
	// KServe and Knative derive from it ("<name>-predictor-00001-deployment")
	// still fit Kubernetes' 63.
	Name string `json:"name"`
	// Level is the service level: dev, staging or prod. It sets the
	// default namespace and the labels sluice.dev/level, which keep the
	// pods of different levels off each other's nodes (see Placement).
	Level Level `json:"level"`
	// Namespace is where the objects go; "" means "sluice-<level>".
	Namespace string `json:"namespace,omitempty"`
	// Platform is what the target renders to; "" means [KServe].
	Platform Platform `json:"platform,omitempty"`
	// Mode is KServe's deployment mode; "" means [Serverless] on KServe.
	// It must be empty on the Kubernetes platform.
	Mode Mode `json:"mode,omitempty"`
	// Runtime says what serves the model: a KServe runtime chosen by the
	// model's format, or a container image of your own (the program's Go
	// predictor).
	Runtime Runtime `json:"runtime"`
	// Protocol is the inference protocol; "" means [ProtocolV2]. The
	// runtime must speak it.
	Protocol Protocol `json:"protocol,omitempty"`
	// Resources is what one replica needs: CPU, memory, GPUs or MIG
	// slices, a node pool, spot capacity. It is resolved against NodePools
	// exactly as pipeline tasks are (resources.Resolve).
	Resources resources.Profile `json:"resources,omitempty"`
	// NodePools declares the node pools Resources may name. A target
	// carries its own so that it is self-contained data: it renders and
	// validates without a pipeline, and a program shares one []NodePool
	// variable between its pipeline and its targets.
	NodePools []resources.NodePool `json:"nodePools,omitempty"`
	// Replicas bounds the number of replicas.
	Replicas Replicas `json:"replicas,omitempty"`
	// Autoscale is the autoscaling target.
	Autoscale Autoscale `json:"autoscale,omitempty"`
	// Rollout is how a new version replaces the old one, where the
	// platform rolls Deployments: Kubernetes, and KServe RawDeployment
	// (maxSurge and maxUnavailable only).
	Rollout Rollout `json:"rollout,omitempty"`
	// Canary is the percentage (0 to 100) of traffic the new model gets
	// while the previous one keeps the rest; 0 means no canary, the new
	// model takes all traffic once rolled out. On KServe it is the
	// predictor's canaryTrafficPercent (Serverless only); on Kubernetes it
	// is a "<name>-canary" Deployment and an HTTPRoute splitting traffic
	// with the stable one, which serves Stable.
	Canary int `json:"canary,omitempty"`
	// Stable is the model the stable track keeps serving while a canary
	// runs on the Kubernetes platform, where, unlike KServe, nothing
	// remembers the previous version. The Deploy step sets it from the
	// live target's recorded version. It must be nil without a canary.
	Stable *Model `json:"stable,omitempty"`
	// Variants splits traffic between models for an A/B test, by weight
	// (the weights sum to 100). The model given to the renderer serves
	// every variant whose Model is empty. On KServe each variant is an
	// InferenceService "<name>-<variant>" behind an InferenceGraph named
	// Name that splits requests; on Kubernetes each is a Deployment and a
	// Service "<name>-<variant>" behind an HTTPRoute. It cannot be combined
	// with Canary.
	Variants []Variant `json:"variants,omitempty"`
	// Gateway is the Gateway API Gateway the HTTPRoute of a canary or of
	// variants attaches to, on the Kubernetes platform.
	Gateway GatewayRef `json:"gateway,omitempty"`
	// Transformer, when set, runs pre- and post-processing in front of the
	// predictor, with the program's own binary. On KServe it is the
	// InferenceService's transformer component; on Kubernetes it is a
	// second container of the predictor's pod that receives the traffic
	// and calls the predictor on localhost.
	Transformer *Transformer `json:"transformer,omitempty"`
	// Placement keeps levels apart and spreads replicas over nodes.
	Placement Placement `json:"placement,omitempty"`
	// Note says what changed and why; it becomes the annotation
	// sluice.dev/change-note on every object.
	Note string `json:"note,omitempty"`
	// ServiceAccount is the pods' service account; "" means the
	// namespace's default.
	ServiceAccount string `json:"serviceAccount,omitempty"`
}

// MaxNameLength is the longest Target name, and the longest name derived
// from it for an A/B variant's InferenceService.
const MaxNameLength = 45

// Runtime says what serves the model.
type Runtime struct {
	// Format overrides the model's format when set; "" means the Model's
	// Format. On KServe it selects the ServingRuntime; [GoModel] runs
	// Image instead.
	Format Format `json:"format,omitempty"`
	// Name is the KServe ServingRuntime (or ClusterServingRuntime) to use,
	// for example "kserve-mlserver"; "" lets KServe pick one that serves
	// the format and protocol. KServe's built-in runtimes are checked
	// against the format and protocol; other names are runtimes of your
	// own and are not checked.
	Name string `json:"name,omitempty"`
	// Version is the version of the model format the runtime must
	// support (KServe's modelFormat.version), for example "1" for
	// scikit-learn 1.x; "" means any.
	Version string `json:"version,omitempty"`
	// Image is the container image that serves the model: required for
	// [GoModel] (the program's own image) and, on the Kubernetes
	// platform, for every format, since there is no KServe to pick a
	// runtime image. On KServe with another format it overrides the
	// runtime's image.
	Image string `json:"image,omitempty"`
	// Args are the container's arguments. For [GoModel] "" means
	// ["serve"], the program's serve mode.
	Args []string `json:"args,omitempty"`
}

// Replicas bounds the number of replicas of each track (stable, canary,
// variant).
type Replicas struct {
	// Initial is the number of replicas a new version starts with; 0
	// means Min, or 1 when Min is 0.
	Initial int `json:"initial,omitempty"`
	// Min is the fewest replicas; nil means 1. A pointer to 0 scales to
	// zero when idle, which only KServe Serverless can do.
	Min *int `json:"min,omitempty"`
	// Max is the most replicas; 0 means the larger of Min and Initial.
	Max int `json:"max,omitempty"`
}

// Autoscale is what the autoscaler keeps each replica at. Set at most one
// field; with none set, RawDeployment and Kubernetes scale on 80% CPU and
// Serverless on Knative's default concurrency.
type Autoscale struct {
	// CPUPercent is the target CPU utilisation, in percent of the CPU
	// request (1 to 100), on every platform.
	CPUPercent int `json:"cpuPercent,omitempty"`
	// Concurrency is the target number of requests in flight per replica;
	// KServe Serverless only.
	Concurrency int `json:"concurrency,omitempty"`
	// RPS is the target number of requests per second per replica; KServe
	// Serverless only.
	RPS int `json:"rps,omitempty"`
}

// Rollout is how a new version's replicas replace the old ones.
type Rollout struct {
	// MaxSurge is how many replicas above the desired count may exist
	// during a rollout: an integer ("1") or a percentage ("25%"); ""
	// means "25%".
	MaxSurge string `json:"maxSurge,omitempty"`
	// MaxUnavailable is how many replicas below the desired count may be
	// unready during a rollout, an integer or a percentage; "" means "0":
	// a rollout never drops below the desired count of ready replicas.
	MaxUnavailable string `json:"maxUnavailable,omitempty"`
	// MinReadySeconds is how long a new replica must be ready before it
	// counts as available; Kubernetes platform only.
	MinReadySeconds int `json:"minReadySeconds,omitempty"`
}

// Variant is one arm of an A/B test.
type Variant struct {
	// Name names the variant, a DNS-1035 label; objects are named
	// "<target>-<variant>".
	Name string `json:"name"`
	// Weight is the variant's share of traffic, in percent.
	Weight int `json:"weight"`
	// Model is what the variant serves; the zero Model means the model
	// given to the renderer.
	Model Model `json:"model,omitempty"`
}

// GatewayRef names a Gateway API Gateway.
type GatewayRef struct {
	// Name is the Gateway's name.
	Name string `json:"name,omitempty"`
	// Namespace is the Gateway's namespace; "" means the target's.
	Namespace string `json:"namespace,omitempty"`
}

// Transformer runs pre- and post-processing in front of the predictor,
// with the program's own binary.
type Transformer struct {
	// Image is the program's image; required.
	Image string `json:"image"`
	// Args are the container's arguments; nil means ["transform"], the
	// program's transformer mode.
	Args []string `json:"args,omitempty"`
	// Resources is what the transformer needs (CPU and memory; it gets no
	// GPU and runs where the predictor runs on Kubernetes).
	Resources resources.Profile `json:"resources,omitempty"`
}

// Placement keeps levels apart and spreads replicas.
type Placement struct {
	// ShareNodes lets pods of this target share nodes with pods of other
	// levels. By default (false) a required pod anti-affinity keeps every
	// pod off nodes that run a pod of another level, in any namespace.
	ShareNodes bool `json:"shareNodes,omitempty"`
	// NoSpread turns off spreading replicas over nodes. By default
	// (false) a topology spread constraint over kubernetes.io/hostname
	// (maxSkew 1, ScheduleAnyway) spreads them.
	NoSpread bool `json:"noSpread,omitempty"`
}

// Labels and annotations the renderers set.
const (
	// LabelTarget is the target's name, on every object and pod.
	LabelTarget = "sluice.dev/target"
	// LabelLevel is the target's level, on every object and pod; the
	// anti-affinity between levels selects on it.
	LabelLevel = "sluice.dev/level"
	// LabelTrack is "stable", "canary" or the variant's name, on Kubernetes
	// Deployments and their pods.
	LabelTrack = "sluice.dev/track"
	// LabelComponent is "predictor" or "transformer", on the pods of
	// KServe components.
	LabelComponent = "sluice.dev/component"
	// AnnotationNote is the target's change note.
	AnnotationNote = "sluice.dev/change-note"
	// AnnotationModelURI, AnnotationModelDigest and AnnotationModelVersion
	// record the model an object serves.
	AnnotationModelURI     = "sluice.dev/model-uri"
	AnnotationModelDigest  = "sluice.dev/model-digest"
	AnnotationModelVersion = "sluice.dev/model-version"
	// AnnotationDeploymentMode is KServe's deployment mode annotation.
	AnnotationDeploymentMode = "serving.kserve.io/deploymentMode"
)

// Default values.
const (
	DefaultCPUPercent     = 80
	DefaultMaxSurge       = "25%"
	DefaultMaxUnavailable = "0"
	// PredictorPort is the port the Go predictor (and the entry container
	// of a Kubernetes pod) listens on.
	PredictorPort = 8080
	// SidecarPredictorPort is the predictor's port when a transformer in
	// the same pod takes PredictorPort.
	SidecarPredictorPort = 8081
)

// withDefaults returns t with every default applied: the one place where
// defaults live. The renderers and Validate work on its result; the
// caller's value is not modified.
//
//   - Namespace: "sluice-<level>".
//   - Platform: KServe; Mode: Serverless on KServe.
//   - Protocol: v2.
//   - Transformer.Args: ["transform"]. (Runtime.Args defaults to ["serve"]
//     for GoModel when rendering, since the format may come from the model.)
//   - Replicas: Min 1; Initial Min, or 1 when Min is 0; Max the larger of
//     Min and Initial.
//   - Autoscale: CPUPercent 80 when no metric is set, except on KServe
//     Serverless, where Knative's default concurrency applies.
//   - Rollout: MaxSurge "25%", MaxUnavailable "0", where rollouts apply
//     (Kubernetes and KServe RawDeployment).
func (t Target) withDefaults() Target {
	if t.Namespace == "" && t.Level != "" {
		t.Namespace = "sluice-" + string(t.Level)
	}
	if t.Platform == "" {
		t.Platform = KServe
	}
	if t.Platform == KServe && t.Mode == "" {
		t.Mode = Serverless
	}
	if t.Protocol == "" {
		t.Protocol = ProtocolV2
	}
	if t.Transformer != nil {
		tr := *t.Transformer
		if tr.Args == nil {
			tr.Args = []string{"transform"}
		}
		t.Transformer = &tr
	}
	minR := 1
	if t.Replicas.Min != nil {
		minR = *t.Replicas.Min
	}
	t.Replicas.Min = &minR
	if t.Replicas.Initial == 0 {
		t.Replicas.Initial = max(minR, 1)
	}
	if t.Replicas.Max == 0 {
		t.Replicas.Max = max(minR, t.Replicas.Initial)
	}
	a := t.Autoscale
	if a.CPUPercent == 0 && a.Concurrency == 0 && a.RPS == 0 && (t.Platform != KServe || t.Mode != Serverless) {
		t.Autoscale.CPUPercent = DefaultCPUPercent
	}
	if t.Platform == Kubernetes || t.Mode == RawDeployment {
		if t.Rollout.MaxSurge == "" {
			t.Rollout.MaxSurge = DefaultMaxSurge
		}
		if t.Rollout.MaxUnavailable == "" {
			t.Rollout.MaxUnavailable = DefaultMaxUnavailable
		}
	}
	t.Variants = append([]Variant(nil), t.Variants...)
	return t
}

// format is the format the target serves m in.
func (t Target) format(m Model) Format {
	if t.Runtime.Format != "" {
		return t.Runtime.Format
	}
	return m.Format
}

// labels are the labels of every object rendered for t.
func (t Target) labels() map[string]string {
	return map[string]string{LabelTarget: t.Name, LabelLevel: string(t.Level)}
}
