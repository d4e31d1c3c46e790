package serve_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/utils/ptr"

	"github.com/sluice-ml/sluice/resources"
	"github.com/sluice-ml/sluice/serve"
)

// problem is an expected error: its field and type.
type problem struct{ field, typ string }

func problems(err error) []problem {
	var out []problem
	for _, e := range serve.FieldErrors(err) {
		out = append(out, problem{e.Field, string(e.Type)})
	}
	return out
}

// TestValidate has one row per problem Validate reports: each row breaks
// one valid target in one way and expects exactly that problem, by field
// and type.
func TestValidate(t *testing.T) {
	serverless := func() serve.Target { return base(serve.KServe, serve.Serverless) }
	raw := func() serve.Target { return base(serve.KServe, serve.RawDeployment) }
	kube := func() serve.Target { return base(serve.Kubernetes, "") }
	goModel := func(t serve.Target) serve.Target {
		t.Runtime = serve.Runtime{Image: programImage}
		return t
	}
	tests := []struct {
		name  string
		t     serve.Target
		model serve.Model
		want  problem
	}{
		{"NameRequired", with(serverless(), func(t *serve.Target) { t.Name = "" }), churnV2, problem{"target.name", "Required"}},
		{"NameNotDNS1035", with(serverless(), func(t *serve.Target) { t.Name = "1churn" }), churnV2, problem{"target.name", "Invalid"}},
		{"NameTooLong", with(serverless(), func(t *serve.Target) { t.Name = strings.Repeat("a", 46) }), churnV2, problem{"target.name", "TooLong"}},
		{"LevelRequired", with(serverless(), func(t *serve.Target) { t.Level = "" }), churnV2, problem{"target.level", "Required"}},
		{"LevelNotALevel", with(serverless(), func(t *serve.Target) { t.Level = "qa" }), churnV2, problem{"target.level", "NotSupported"}},
		{"NamespaceInvalid", with(serverless(), func(t *serve.Target) { t.Namespace = "ML_Prod" }), churnV2, problem{"target.namespace", "Invalid"}},
		{"ServiceAccountInvalid", with(serverless(), func(t *serve.Target) { t.ServiceAccount = "Churn Server" }), churnV2, problem{"target.serviceAccount", "Invalid"}},
		{"PlatformNotSupported", with(serverless(), func(t *serve.Target) { t.Platform = "Nomad"; t.Mode = "" }), churnV2, problem{"target.platform", "NotSupported"}},
		{"ModeNotSupported", with(serverless(), func(t *serve.Target) { t.Mode = "Batch" }), churnV2, problem{"target.mode", "NotSupported"}},
		{"ModeOnKubernetes", with(kube(), func(t *serve.Target) { t.Mode = serve.Serverless }), churnV2, problem{"target.mode", "Forbidden"}},

		{"ModelURIRequired", serverless(), serve.Model{Format: serve.SKLearn}, problem{"model.uri", "Required"}},
		{"FormatRequired", serverless(), serve.Model{URI: "s3://m"}, problem{"model.format", "Required"}},
		{"FormatNotSupported", serverless(), serve.Model{URI: "s3://m", Format: "pickle"}, problem{"model.format", "NotSupported"}},
		{"RuntimeFormatNotSupported", with(serverless(), func(t *serve.Target) { t.Runtime.Format = "pickle" }), churnV2, problem{"target.runtime.format", "NotSupported"}},
		{"RuntimeCannotServeFormat", with(serverless(), func(t *serve.Target) { t.Runtime.Name = "kserve-tensorflow-serving" }), churnV2, problem{"target.runtime.name", "Invalid"}},
		{"RuntimeCannotSpeakProtocol", with(serverless(), func(t *serve.Target) {
			t.Runtime.Name = "kserve-mlserver"
			t.Protocol = serve.ProtocolV1
		}), churnV2, problem{"target.protocol", "Invalid"}},
		{"NoRuntimeForFormatAndProtocol", with(serverless(), func(t *serve.Target) { t.Protocol = serve.ProtocolV1 }), serve.Model{URI: "s3://m", Format: serve.ONNX}, problem{"target.protocol", "Invalid"}},
		{"ProtocolNotSupported", with(serverless(), func(t *serve.Target) { t.Protocol = "grpc" }), churnV2, problem{"target.protocol", "NotSupported"}},
		{"GoModelWithoutImage", serverless(), churnGo, problem{"target.runtime.image", "Required"}},
		{"GoModelWithRuntimeName", with(goModel(serverless()), func(t *serve.Target) { t.Runtime.Name = "kserve-sklearnserver" }), churnGo, problem{"target.runtime.name", "Forbidden"}},
		{"GoModelOverV1", with(goModel(serverless()), func(t *serve.Target) { t.Protocol = serve.ProtocolV1 }), churnGo, problem{"target.protocol", "Invalid"}},
		{"KubernetesWithoutImage", with(kube(), func(t *serve.Target) { t.Runtime.Image = "" }), churnV2, problem{"target.runtime.image", "Required"}},
		{"KubernetesWithServingRuntime", with(kube(), func(t *serve.Target) { t.Runtime.Name = "kserve-sklearnserver" }), churnV2, problem{"target.runtime.name", "Forbidden"}},
		{"ImageInvalid", with(kube(), func(t *serve.Target) { t.Runtime.Image = "Registry.example/ML/Server:1" }), churnV2, problem{"target.runtime.image", "Invalid"}},

		{"GPUModelThePoolLacks", with(serverless(), func(t *serve.Target) {
			t.NodePools = []resources.NodePool{gpuPool}
			t.Resources = resources.Profile{CPU: "1", GPUModel: "H100-80GB", GPUs: 1, NodePool: "l4"}
		}), churnV2, problem{"target.resources.gpuModel", "Invalid"}},
		{"PoolNotDeclared", with(serverless(), func(t *serve.Target) { t.Resources.NodePool = "a100" }), churnV2, problem{"target.resources.nodePool", "NotFound"}},
		{"QuantityInvalid", with(serverless(), func(t *serve.Target) { t.Resources.Memory = "lots" }), churnV2, problem{"target.resources.memory", "Invalid"}},

		{"MinAboveMax", with(serverless(), func(t *serve.Target) { t.Replicas = serve.Replicas{Min: ptr.To(5), Max: 3} }), churnV2, problem{"target.replicas.min", "Invalid"}},
		{"MinNegative", with(serverless(), func(t *serve.Target) { t.Replicas.Min = ptr.To(-1) }), churnV2, problem{"target.replicas.min", "Invalid"}},
		{"MaxNegative", with(serverless(), func(t *serve.Target) { t.Replicas = serve.Replicas{Min: ptr.To(0), Max: -1} }), churnV2, problem{"target.replicas.max", "Invalid"}},
		{"MaxAboveLimit", with(serverless(), func(t *serve.Target) { t.Replicas.Max = 1 << 40 }), churnV2, problem{"target.replicas.max", "Invalid"}},
		{"ScaleToZeroOnKubernetes", with(kube(), func(t *serve.Target) { t.Replicas.Min = ptr.To(0) }), churnV2, problem{"target.replicas.min", "Forbidden"}},
		{"ScaleToZeroOnRawDeployment", with(raw(), func(t *serve.Target) { t.Replicas.Min = ptr.To(0) }), churnV2, problem{"target.replicas.min", "Forbidden"}},
		{"ScaleToZeroOnCPU", with(serverless(), func(t *serve.Target) {
			t.Replicas.Min = ptr.To(0)
			t.Autoscale.CPUPercent = 70
		}), churnV2, problem{"target.replicas.min", "Forbidden"}},
		{"InitialAboveMax", with(serverless(), func(t *serve.Target) { t.Replicas.Initial = 9 }), churnV2, problem{"target.replicas.initial", "Invalid"}},

		{"TwoMetrics", with(serverless(), func(t *serve.Target) { t.Autoscale = serve.Autoscale{Concurrency: 4, RPS: 10} }), churnV2, problem{"target.autoscale", "Forbidden"}},
		{"CPUPercentAbove100", with(kube(), func(t *serve.Target) { t.Autoscale.CPUPercent = 150 }), churnV2, problem{"target.autoscale.cpuPercent", "Invalid"}},
		{"ConcurrencyNegative", with(serverless(), func(t *serve.Target) { t.Autoscale.Concurrency = -2 }), churnV2, problem{"target.autoscale.concurrency", "Invalid"}},
		{"ConcurrencyOnRawDeployment", with(raw(), func(t *serve.Target) { t.Autoscale.Concurrency = 8 }), churnV2, problem{"target.autoscale.concurrency", "Forbidden"}},
		{"RPSOnKubernetes", with(kube(), func(t *serve.Target) { t.Autoscale.RPS = 100 }), churnV2, problem{"target.autoscale.rps", "Forbidden"}},
		{"CPUScalingWithoutCPURequest", with(kube(), func(t *serve.Target) { t.Resources.CPU = "" }), churnV2, problem{"target.resources.cpu", "Required"}},
		{"CPUScalingWithoutTransformerCPU", with(kube(), func(t *serve.Target) {
			t.Transformer = &serve.Transformer{Image: programImage}
		}), churnV2, problem{"target.transformer.resources.cpu", "Required"}},

		{"MaxSurgeNotIntOrPercent", with(kube(), func(t *serve.Target) { t.Rollout.MaxSurge = "a lot" }), churnV2, problem{"target.rollout.maxSurge", "Invalid"}},
		{"MaxUnavailableAbove100Percent", with(raw(), func(t *serve.Target) { t.Rollout.MaxUnavailable = "150%" }), churnV2, problem{"target.rollout.maxUnavailable", "Invalid"}},
		{"RolloutCannotProgress", with(kube(), func(t *serve.Target) { t.Rollout = serve.Rollout{MaxSurge: "0%", MaxUnavailable: "0"} }), churnV2, problem{"target.rollout.maxUnavailable", "Invalid"}},
		{"RolloutOnServerless", with(serverless(), func(t *serve.Target) { t.Rollout.MaxSurge = "1" }), churnV2, problem{"target.rollout", "Forbidden"}},
		{"MinReadySecondsOnKServe", with(raw(), func(t *serve.Target) { t.Rollout.MinReadySeconds = 5 }), churnV2, problem{"target.rollout.minReadySeconds", "Forbidden"}},
		{"MinReadySecondsNegative", with(kube(), func(t *serve.Target) { t.Rollout.MinReadySeconds = -5 }), churnV2, problem{"target.rollout.minReadySeconds", "Invalid"}},

		{"CanaryAbove100", with(serverless(), func(t *serve.Target) { t.Canary = 120 }), churnV2, problem{"target.canary", "Invalid"}},
		{"CanaryWithVariants", with(serverless(), func(t *serve.Target) {
			t.Canary = 10
			t.Variants = []serve.Variant{{Name: "a", Weight: 50}, {Name: "b", Weight: 50}}
		}), churnV2, problem{"target.canary", "Forbidden"}},
		{"CanaryOnRawDeployment", with(raw(), func(t *serve.Target) { t.Canary = 10 }), churnV2, problem{"target.canary", "Forbidden"}},
		{"CanaryOnKubernetesWithoutStable", with(kube(), func(t *serve.Target) {
			t.Canary = 10
			t.Gateway.Name = "inference"
		}), churnV2, problem{"target.stable", "Required"}},
		{"StableOnKServe", with(serverless(), func(t *serve.Target) {
			t.Canary = 10
			t.Stable = &churnV1
		}), churnV2, problem{"target.stable", "Forbidden"}},
		{"StableWithoutCanary", with(kube(), func(t *serve.Target) { t.Stable = &churnV1 }), churnV2, problem{"target.stable", "Forbidden"}},
		{"StableWithoutURI", with(kube(), func(t *serve.Target) {
			t.Canary = 10
			t.Gateway.Name = "inference"
			t.Stable = &serve.Model{Format: serve.SKLearn}
		}), churnV2, problem{"target.stable.uri", "Required"}},
		{"GatewayRequired", with(kube(), func(t *serve.Target) {
			t.Canary = 10
			t.Stable = &churnV1
		}), churnV2, problem{"target.gateway.name", "Required"}},
		{"GatewayWithoutRoute", with(kube(), func(t *serve.Target) { t.Gateway.Name = "inference" }), churnV2, problem{"target.gateway", "Forbidden"}},
		{"GatewayNameInvalid", with(kube(), func(t *serve.Target) {
			t.Variants = []serve.Variant{{Name: "a", Weight: 50}, {Name: "b", Weight: 50}}
			t.Gateway.Name = "Inference GW"
		}), churnV2, problem{"target.gateway.name", "Invalid"}},

		{"VariantWeightsNot100", with(serverless(), func(t *serve.Target) {
			t.Variants = []serve.Variant{{Name: "a", Weight: 60}, {Name: "b", Weight: 30}}
		}), churnV2, problem{"target.variants", "Invalid"}},
		{"OneVariant", with(serverless(), func(t *serve.Target) { t.Variants = []serve.Variant{{Name: "a", Weight: 100}} }), churnV2, problem{"target.variants", "Invalid"}},
		{"VariantNameRequired", with(serverless(), func(t *serve.Target) {
			t.Variants = []serve.Variant{{Weight: 50}, {Name: "b", Weight: 50}}
		}), churnV2, problem{"target.variants[0].name", "Required"}},
		{"VariantNameInvalid", with(serverless(), func(t *serve.Target) {
			t.Variants = []serve.Variant{{Name: "A", Weight: 50}, {Name: "b", Weight: 50}}
		}), churnV2, problem{"target.variants[0].name", "Invalid"}},
		{"VariantNameDuplicate", with(serverless(), func(t *serve.Target) {
			t.Variants = []serve.Variant{{Name: "a", Weight: 50}, {Name: "a", Weight: 50}}
		}), churnV2, problem{"target.variants[1].name", "Duplicate"}},
		{"VariantNameMakesNameTooLong", with(serverless(), func(t *serve.Target) {
			t.Name = strings.Repeat("c", 40)
			t.Variants = []serve.Variant{{Name: "a", Weight: 50}, {Name: "control", Weight: 50}}
		}), churnV2, problem{"target.variants[1].name", "Invalid"}},
		{"VariantWeightNegative", with(serverless(), func(t *serve.Target) {
			t.Variants = []serve.Variant{{Name: "a", Weight: 60}, {Name: "b", Weight: 50}, {Name: "c", Weight: -10}}
		}), churnV2, problem{"target.variants[2].weight", "Invalid"}},
		{"VariantModelOtherFormat", with(serverless(), func(t *serve.Target) {
			t.Variants = []serve.Variant{{Name: "a", Weight: 50}, {Name: "b", Weight: 50, Model: serve.Model{URI: "s3://m", Format: serve.ONNX}}}
		}), churnV2, problem{"target.variants[1].model.format", "Invalid"}},

		{"TransformerImageRequired", with(serverless(), func(t *serve.Target) { t.Transformer = &serve.Transformer{} }), churnV2, problem{"target.transformer.image", "Required"}},
		{"TransformerWithGPU", with(serverless(), func(t *serve.Target) {
			t.Transformer = &serve.Transformer{Image: programImage, Resources: resources.Profile{GPUs: 1}}
		}), churnV2, problem{"target.transformer.resources", "Forbidden"}},
	}
	for _, b := range []serve.Target{serverless(), raw(), kube()} {
		require.NoError(t, b.Validate(churnV2), "the rows' base targets must be valid")
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.t.Validate(tc.model)
			require.Error(t, err)
			assert.Equal(t, []problem{tc.want}, problems(err), "all problems:\n%v", err)
			for _, e := range serve.FieldErrors(err) {
				assert.NotEmpty(t, e.Detail, "%s: every error says how to fix it", e.Field)
			}
		})
	}
}

func with(t serve.Target, edit func(*serve.Target)) serve.Target {
	edit(&t)
	return t
}

// TestValidateReportsEverything breaks a target in many ways at once and
// expects every problem in one error, in the order of the fields.
func TestValidateReportsEverything(t *testing.T) {
	bad := serve.Target{
		Name:     "Churn",
		Level:    "qa",
		Platform: serve.KServe,
		Mode:     serve.RawDeployment,
		Runtime:  serve.Runtime{Name: "kserve-tensorflow-serving"},
		Resources: resources.Profile{
			CPU: "1", GPUModel: "H100-80GB", GPUs: 1, NodePool: "l4",
		},
		NodePools: []resources.NodePool{gpuPool},
		Replicas:  serve.Replicas{Min: ptr.To(0), Max: 2},
		Autoscale: serve.Autoscale{Concurrency: 10},
		Rollout:   serve.Rollout{MaxSurge: "lots"},
		Canary:    120,
		Variants:  []serve.Variant{{Name: "a", Weight: 50}, {Name: "b", Weight: 20}},
	}
	err := bad.Validate(churnV2)
	require.Error(t, err)
	assert.Equal(t, []problem{
		{"target.name", "Invalid"},
		{"target.level", "NotSupported"},
		{"target.runtime.name", "Invalid"},
		{"target.resources.gpuModel", "Invalid"},
		{"target.replicas.min", "Forbidden"},
		{"target.autoscale.concurrency", "Forbidden"},
		{"target.rollout.maxSurge", "Invalid"},
		{"target.canary", "Invalid"},
		{"target.variants", "Invalid"},
	}, problems(err), "all problems:\n%v", err)
	assert.Len(t, strings.Split(err.Error(), "\n"), 9, "one problem per line")
}

// TestRenderRefusesInvalid checks that the renderers validate first and
// return nothing for an invalid target, and that a target meant for one
// platform is not rendered for the other.
func TestRenderRefusesInvalid(t *testing.T) {
	bad := with(base(serve.KServe, serve.Serverless), func(t *serve.Target) { t.Canary = 120 })
	objs, err := bad.KServe(churnV2)
	assert.Nil(t, objs)
	assert.Equal(t, []problem{{"target.canary", "Invalid"}}, problems(err))

	objs, err = base(serve.KServe, serve.Serverless).Kubernetes(churnV2)
	assert.Nil(t, objs)
	assert.Equal(t, []problem{{"target.platform", "Invalid"}}, problems(err))

	objs, err = base(serve.Kubernetes, "").KServe(churnV2)
	assert.Nil(t, objs)
	assert.Equal(t, []problem{{"target.platform", "Invalid"}}, problems(err))

	// An empty platform takes the renderer's.
	tgt := base(serve.Kubernetes, "")
	tgt.Platform = ""
	objs, err = tgt.Kubernetes(churnV2)
	require.NoError(t, err)
	assert.NotEmpty(t, objs)
}

// TestValidateDoesNotModify checks that Validate and the renderers leave
// the caller's target as it was (defaults are applied to a copy).
func TestValidateDoesNotModify(t *testing.T) {
	for _, c := range renderCases() {
		before := fmt.Sprintf("%#v", c.t)
		require.NoError(t, c.t.Validate(c.model), c.name)
		var err error
		if c.t.Platform == serve.Kubernetes {
			_, err = c.t.Kubernetes(c.model)
		} else {
			_, err = c.t.KServe(c.model)
		}
		require.NoError(t, err, c.name)
		assert.Equal(t, before, fmt.Sprintf("%#v", c.t), c.name)
	}
}
