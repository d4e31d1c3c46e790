package resources_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/resources"
)

// key identifies a field error the way tests match it: by field and type.
type key struct {
	Field string
	Type  pipeline.ErrorType
}

func keys(err error) []key {
	var out []key
	for _, fe := range pipeline.FieldErrors(err) {
		out = append(out, key{fe.Field, fe.Type})
	}
	return out
}

func k(f string, t pipeline.ErrorType) key { return key{f, t} }

const (
	required     = pipeline.ErrorTypeRequired
	invalid      = pipeline.ErrorTypeInvalid
	notSupported = pipeline.ErrorTypeNotSupported
	forbidden    = pipeline.ErrorTypeForbidden
	notFound     = pipeline.ErrorTypeNotFound
	duplicate    = pipeline.ErrorTypeDuplicate
)

func seconds(n int64) *int64 { return &n }

func TestProfileValidate(t *testing.T) {
	tests := []struct {
		name string
		p    resources.Profile
		want []key
	}{
		{name: "ZeroIsValid"},
		{name: "FullValid", p: resources.Profile{
			CPU: "8", Memory: "64Gi", EphemeralStorage: "100Gi", SharedMemory: "16Gi",
			GPUModel: "A100-80GB", MIG: "3g.40gb", MIGCount: 2, MIGStrategy: resources.MIGSingle,
			NodePool: "a100", Preemptible: true,
			NodeSelector: map[string]string{"example.com/team": "ml", "tier": ""},
			Tolerations: []corev1.Toleration{
				{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "ml", Effect: corev1.TaintEffectNoSchedule},
				{Key: "example.com/flaky", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: seconds(30)},
				{Operator: corev1.TolerationOpExists},
				{Key: "implicit-equal", Value: "x"},
			},
		}},
		{name: "MilliCPU", p: resources.Profile{CPU: "500m", Memory: "1.5G"}},
		{name: "MalformedCPU", p: resources.Profile{CPU: "four"}, want: []key{k("cpu", invalid)}},
		{name: "ZeroCPU", p: resources.Profile{CPU: "0"}, want: []key{k("cpu", invalid)}},
		{name: "NegativeMemory", p: resources.Profile{Memory: "-1Gi"}, want: []key{k("memory", invalid)}},
		{name: "MalformedMemory", p: resources.Profile{Memory: "16 GiB"}, want: []key{k("memory", invalid)}},
		{name: "MalformedEphemeralStorage", p: resources.Profile{EphemeralStorage: "lots"}, want: []key{k("ephemeralStorage", invalid)}},
		{name: "MalformedSharedMemory", p: resources.Profile{SharedMemory: "1GB"}, want: []key{k("sharedMemory", invalid)}},
		// Extreme exponents are rejected before parsing: apimachinery's
		// ParseQuantity does not return on "1e-999999999".
		{name: "TinyExponent", p: resources.Profile{CPU: "1e-999999999"}, want: []key{k("cpu", invalid)}},
		{name: "HugeExponent", p: resources.Profile{Memory: "1e999999999"}, want: []key{k("memory", invalid)}},
		{name: "ThreeDigitExponent", p: resources.Profile{Memory: "1e+100"}, want: []key{k("memory", invalid)}},
		{name: "BeyondEightEi", p: resources.Profile{Memory: "1e30"}, want: []key{k("memory", invalid)}},
		{name: "TooLong", p: resources.Profile{CPU: "1" + strings.Repeat("0", 64)}, want: []key{k("cpu", invalid)}},
		{name: "ExaSuffix", p: resources.Profile{EphemeralStorage: "1E", Memory: "2Ei"}},
		{name: "SmallExponent", p: resources.Profile{CPU: "25e-2", Memory: "1e9"}},
		{name: "SharedMemoryAboveMemory", p: resources.Profile{Memory: "8Gi", SharedMemory: "9Gi"}, want: []key{k("sharedMemory", invalid)}},
		{name: "SharedMemoryEqualMemory", p: resources.Profile{Memory: "8Gi", SharedMemory: "8Gi"}},
		{name: "SharedMemoryWithoutMemory", p: resources.Profile{SharedMemory: "8Gi"}},
		{name: "UnknownGPUModel", p: resources.Profile{GPUModel: "A100", GPUs: 1}, want: []key{k("gpuModel", notSupported)}},
		{name: "GPUModelAnyCase", p: resources.Profile{GPUModel: "a100-80gb", GPUs: 1}},
		{name: "NegativeGPUs", p: resources.Profile{GPUs: -1}, want: []key{k("gpus", invalid)}},
		{name: "GPUModelWithoutGPUs", p: resources.Profile{GPUModel: "L4"}, want: []key{k("gpuModel", invalid)}},
		{name: "GPUsWithoutModel", p: resources.Profile{GPUs: 2}},
		{name: "MIGAndGPUs", p: resources.Profile{GPUModel: "A100-80GB", GPUs: 1, MIG: "1g.10gb"}, want: []key{k("mig", forbidden)}},
		{name: "MIGNotOfferedByModel", p: resources.Profile{GPUModel: "A100-80GB", MIG: "3g.20gb"}, want: []key{k("mig", invalid)}},
		{name: "MIGOnModelWithoutMIG", p: resources.Profile{GPUModel: "T4", MIG: "1g.5gb"}, want: []key{k("mig", invalid)}},
		{name: "MIGMediaExtensions", p: resources.Profile{GPUModel: "A30-24GB", MIG: "2g.12gb+me"}},
		{name: "MIGWithoutModelKnownSomewhere", p: resources.Profile{MIG: "3g.47gb"}},
		{name: "MIGWithoutModelUnknown", p: resources.Profile{MIG: "5g.40gb"}, want: []key{k("mig", invalid)}},
		{name: "MIGWrongCase", p: resources.Profile{GPUModel: "H100-80GB", MIG: "3G.40GB"}, want: []key{k("mig", invalid)}},
		{name: "MIGWithUnknownModel", p: resources.Profile{GPUModel: "B200", MIG: "3g.40gb"}, want: []key{k("gpuModel", notSupported)}},
		{name: "MIGWithUnknownModelAndProfile", p: resources.Profile{GPUModel: "B200", MIG: "3g.90gb"},
			want: []key{k("gpuModel", notSupported), k("mig", invalid)}},
		{name: "NegativeMIGCount", p: resources.Profile{MIG: "1g.10gb", MIGCount: -1}, want: []key{k("migCount", invalid)}},
		{name: "MIGCountWithoutMIG", p: resources.Profile{MIGCount: 2}, want: []key{k("migCount", forbidden)}},
		{name: "MIGCountAtLimit", p: resources.Profile{GPUModel: "A100-80GB", MIG: "3g.40gb", MIGCount: 16}},
		{name: "MIGCountAboveLimit", p: resources.Profile{GPUModel: "A100-80GB", MIG: "3g.40gb", MIGCount: 17}, want: []key{k("migCount", invalid)}},
		// Without a model the bound is the largest across models: 1g.10gb
		// is 4 per A100-40GB but 7 per A100-80GB/H100-80GB.
		{name: "MIGCountLimitWithoutModel", p: resources.Profile{MIG: "1g.10gb", MIGCount: 56}},
		{name: "MIGCountAboveLimitWithoutModel", p: resources.Profile{MIG: "1g.10gb", MIGCount: 57}, want: []key{k("migCount", invalid)}},
		{name: "MIGCountLimitOfModel", p: resources.Profile{GPUModel: "A100-40GB", MIG: "1g.10gb", MIGCount: 33}, want: []key{k("migCount", invalid)}},
		{name: "MIGStrategyMixed", p: resources.Profile{MIG: "1g.10gb", MIGStrategy: resources.MIGMixed}},
		{name: "MIGStrategyUnknown", p: resources.Profile{MIG: "1g.10gb", MIGStrategy: "none"}, want: []key{k("migStrategy", notSupported)}},
		{name: "NodeSelectorBadKey", p: resources.Profile{NodeSelector: map[string]string{"bad key": "x"}},
			want: []key{k("nodeSelector[bad key]", invalid)}},
		{name: "NodeSelectorBadValue", p: resources.Profile{NodeSelector: map[string]string{"team": "a/b"}},
			want: []key{k("nodeSelector[team]", invalid)}},
		{name: "NodeSelectorBadKeyAndValue", p: resources.Profile{NodeSelector: map[string]string{"-x": "-y-"}},
			want: []key{k("nodeSelector[-x]", invalid), k("nodeSelector[-x]", invalid)}},
		{name: "TolerationBadOperator", p: resources.Profile{Tolerations: []corev1.Toleration{{Key: "a", Operator: "In"}}},
			want: []key{k("tolerations[0].operator", notSupported)}},
		{name: "TolerationBadEffect", p: resources.Profile{Tolerations: []corev1.Toleration{{Key: "a", Operator: "Exists", Effect: "NoRun"}}},
			want: []key{k("tolerations[0].effect", notSupported)}},
		{name: "TolerationEmptyKeyNeedsExists", p: resources.Profile{Tolerations: []corev1.Toleration{{Operator: "Equal", Value: "x"}}},
			want: []key{k("tolerations[0].operator", invalid)}},
		{name: "TolerationExistsWithValue", p: resources.Profile{Tolerations: []corev1.Toleration{{Key: "a", Operator: "Exists", Value: "x"}}},
			want: []key{k("tolerations[0].value", invalid)}},
		{name: "TolerationBadValue", p: resources.Profile{Tolerations: []corev1.Toleration{{Key: "a", Value: "not valid"}}},
			want: []key{k("tolerations[0].value", invalid)}},
		{name: "TolerationBadKey", p: resources.Profile{Tolerations: []corev1.Toleration{{Key: "a b", Operator: "Exists"}}},
			want: []key{k("tolerations[0].key", invalid)}},
		{name: "TolerationSecondsWithoutNoExecute", p: resources.Profile{Tolerations: []corev1.Toleration{
			{Key: "a", Operator: "Exists", Effect: corev1.TaintEffectNoSchedule, TolerationSeconds: seconds(5)}}},
			want: []key{k("tolerations[0].tolerationSeconds", invalid)}},
		{name: "SecondTolerationPath", p: resources.Profile{Tolerations: []corev1.Toleration{
			{Key: "a", Operator: "Exists"}, {Key: "b", Operator: "Exists", Effect: "Never"}}},
			want: []key{k("tolerations[1].effect", notSupported)}},
		{name: "EveryProblemAtOnce", p: resources.Profile{
			CPU: "x", Memory: "1Gi", SharedMemory: "2Gi", GPUModel: "A100-80GB", GPUs: 1, MIG: "3g.20gb",
			MIGStrategy: "both", NodeSelector: map[string]string{"ok": "yes", "b@d": "v"},
			Tolerations: []corev1.Toleration{{Key: "a", Operator: "Maybe", Effect: "Soon"}},
		}, want: []key{
			k("cpu", invalid),
			k("sharedMemory", invalid),
			k("mig", forbidden),
			k("mig", invalid),
			k("migStrategy", notSupported),
			k("nodeSelector[b@d]", invalid),
			k("tolerations[0].operator", notSupported),
			k("tolerations[0].effect", notSupported),
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Validate()
			assert.Equal(t, tc.want, keys(err))
			if tc.want == nil {
				assert.NoError(t, err)
			}
		})
	}
}

func TestProfileValidateErrorsAreFieldErrors(t *testing.T) {
	err := resources.Profile{CPU: "x", GPUs: -1}.Validate()
	require.Error(t, err)
	var fe *pipeline.FieldError
	require.True(t, errors.As(err, &fe), "errors.As must reach a *pipeline.FieldError")
	assert.Equal(t, "cpu", fe.Field)
	assert.Len(t, pipeline.FieldErrors(err), 2)
}

// The one test that reads message text: the suggestion users rely on.
func TestValidateSuggestsClosestMIGProfile(t *testing.T) {
	tests := []struct {
		name    string
		p       resources.Profile
		suggest string
	}{
		{"SameSliceCountWins", resources.Profile{GPUModel: "A100-80GB", MIG: "3g.20gb"}, `did you mean "3g.40gb"?`},
		{"H100NVL", resources.Profile{GPUModel: "H100-94GB", MIG: "3g.48gb"}, `did you mean "3g.47gb"?`},
		{"Case", resources.Profile{GPUModel: "H200-141GB", MIG: "7G.141GB"}, `did you mean "7g.141gb"?`},
		{"PluginSpelling", resources.Profile{GPUModel: "A100-80GB", MIG: "1g.10gb.me"}, `did you mean "1g.10gb+me"?`},
		{"NoModel", resources.Profile{MIG: "3g.41gb"}, `did you mean "3g.40gb"?`},
		{"GPUModel", resources.Profile{GPUModel: "A100-80G", GPUs: 1}, `did you mean "A100-80GB"?`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Validate()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.suggest)
		})
	}
	t.Run("NothingClose", func(t *testing.T) {
		err := resources.Profile{GPUModel: "A100-80GB", MIG: "large"}.Validate()
		require.Error(t, err)
		assert.NotContains(t, err.Error(), "did you mean")
		assert.Contains(t, err.Error(), "3g.40gb", "the detail lists the valid profiles")
	})
}

func TestNodePoolValidate(t *testing.T) {
	valid := func() resources.NodePool {
		return resources.NodePool{
			Name:     "a100",
			Provider: resources.ProviderGKE,
			Labels:   map[string]string{"cloud.google.com/gke-nodepool": "a100"},
			Taints:   []corev1.Taint{{Key: "nvidia.com/gpu", Value: "present", Effect: corev1.TaintEffectNoSchedule}},
			Node: resources.Capacity{
				CPU: "96", Memory: "1360Gi", EphemeralStorage: "6Ti", GPUModel: "A100-80GB", GPUs: 8,
				MIG: map[string]int{"3g.40gb": 8, "1g.10gb": 8},
			},
			MIGStrategy: resources.MIGMixed,
			Spot:        true,
		}
	}
	tests := []struct {
		name   string
		modify func(*resources.NodePool)
		want   []key
	}{
		{name: "Valid", modify: func(*resources.NodePool) {}},
		{name: "MissingName", modify: func(n *resources.NodePool) { n.Name = "" }, want: []key{k("name", required)}},
		{name: "NameNotDNSLabel", modify: func(n *resources.NodePool) { n.Name = "GPU_Pool" }, want: []key{k("name", invalid)}},
		{name: "UnknownProvider", modify: func(n *resources.NodePool) { n.Provider = "gcp" }, want: []key{k("provider", notSupported)}},
		{name: "BadLabelKey", modify: func(n *resources.NodePool) { n.Labels["a b"] = "x" }, want: []key{k("labels[a b]", invalid)}},
		{name: "BadLabelValue", modify: func(n *resources.NodePool) { n.Labels["pool"] = "a b" }, want: []key{k("labels[pool]", invalid)}},
		{name: "TaintWithoutKey", modify: func(n *resources.NodePool) { n.Taints[0].Key = "" }, want: []key{k("taints[0].key", required)}},
		{name: "TaintBadKey", modify: func(n *resources.NodePool) { n.Taints[0].Key = "a//b" }, want: []key{k("taints[0].key", invalid)}},
		{name: "TaintBadValue", modify: func(n *resources.NodePool) { n.Taints[0].Value = "a b" }, want: []key{k("taints[0].value", invalid)}},
		{name: "TaintWithoutEffect", modify: func(n *resources.NodePool) { n.Taints[0].Effect = "" }, want: []key{k("taints[0].effect", required)}},
		{name: "TaintBadEffect", modify: func(n *resources.NodePool) { n.Taints[0].Effect = "Block" }, want: []key{k("taints[0].effect", notSupported)}},
		{name: "BadNodeCPU", modify: func(n *resources.NodePool) { n.Node.CPU = "many" }, want: []key{k("node.cpu", invalid)}},
		{name: "BadNodeMemory", modify: func(n *resources.NodePool) { n.Node.Memory = "0" }, want: []key{k("node.memory", invalid)}},
		{name: "BadNodeEphemeralStorage", modify: func(n *resources.NodePool) { n.Node.EphemeralStorage = "-1" }, want: []key{k("node.ephemeralStorage", invalid)}},
		{name: "UnknownNodeGPUModel", modify: func(n *resources.NodePool) { n.Node.GPUModel = "A100" },
			// The MIG map cannot be checked against an unknown model; its
			// profiles exist for some model, so only the model is reported.
			want: []key{k("node.gpuModel", notSupported)}},
		{name: "NegativeNodeGPUs", modify: func(n *resources.NodePool) { n.Node.GPUs = -8 }, want: []key{k("node.gpus", invalid)}},
		{name: "NodeMIGNotOfModel", modify: func(n *resources.NodePool) { n.Node.MIG["3g.20gb"] = 8 }, want: []key{k("node.mig[3g.20gb]", invalid)}},
		{name: "NodeMIGWithoutModel", modify: func(n *resources.NodePool) { n.Node.GPUModel = "" }},
		{name: "NodeMIGUnknownWithoutModel", modify: func(n *resources.NodePool) { n.Node.GPUModel = ""; n.Node.MIG["9g.99gb"] = 1 },
			want: []key{k("node.mig[9g.99gb]", invalid)}},
		{name: "NodeMIGNegative", modify: func(n *resources.NodePool) { n.Node.MIG["1g.10gb"] = -1 }, want: []key{k("node.mig[1g.10gb]", invalid)}},
		{name: "NodeMIGMoreThanGPUsHold", modify: func(n *resources.NodePool) { n.Node.MIG["3g.40gb"] = 17 }, want: []key{k("node.mig[3g.40gb]", invalid)}},
		{name: "UnknownMIGStrategy", modify: func(n *resources.NodePool) { n.MIGStrategy = "all" }, want: []key{k("migStrategy", notSupported)}},
		{name: "GenericSpotWithoutSpotLabels", modify: func(n *resources.NodePool) { n.Provider = resources.ProviderGeneric },
			want: []key{k("spotLabels", required)}},
		{name: "GenericSpot", modify: func(n *resources.NodePool) {
			n.Provider = resources.ProviderGeneric
			n.SpotLabels = map[string]string{"capacity": "spot"}
			n.SpotTaints = []corev1.Taint{{Key: "spot", Effect: corev1.TaintEffectNoSchedule}}
		}},
		{name: "SpotLabelsOnCloudProvider", modify: func(n *resources.NodePool) { n.SpotLabels = map[string]string{"capacity": "spot"} },
			want: []key{k("spotLabels", forbidden)}},
		{name: "SpotTaintsWithoutSpot", modify: func(n *resources.NodePool) {
			n.Provider, n.Spot = resources.ProviderGeneric, false
			n.SpotTaints = []corev1.Taint{{Key: "spot", Effect: corev1.TaintEffectNoSchedule}}
		}, want: []key{k("spotTaints", forbidden)}},
		{name: "BadSpotLabelsAndTaints", modify: func(n *resources.NodePool) {
			n.Provider = resources.ProviderGeneric
			n.SpotLabels = map[string]string{"capacity": "spot instance"}
			n.SpotTaints = []corev1.Taint{{Key: "spot"}}
		}, want: []key{k("spotLabels[capacity]", invalid), k("spotTaints[0].effect", required)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := valid()
			tc.modify(&n)
			err := n.Validate()
			assert.Equal(t, tc.want, keys(err))
			if tc.want == nil {
				assert.NoError(t, err)
			}
		})
	}
}

func TestValidatePools(t *testing.T) {
	pools := []resources.NodePool{
		{Name: "cpu"},
		{Name: "gpu", Taints: []corev1.Taint{{Effect: corev1.TaintEffectNoSchedule}}},
		{Name: "cpu", Provider: "azure"},
		{},
	}
	assert.Equal(t, []key{
		k("[1].taints[0].key", required),
		k("[2].provider", notSupported),
		k("[2].name", duplicate),
		k("[3].name", required),
	}, keys(resources.ValidatePools(pools)))

	assert.NoError(t, resources.ValidatePools(nil))
	assert.NoError(t, resources.ValidatePools(pools[:1]))
}
