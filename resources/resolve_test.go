package resources_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/sluice-ml/sluice/resources"
)

func q(s string) resource.Quantity { return resource.MustParse(s) }

// n is how Resolve builds counts (GPUs, slices).
func n(i int64) resource.Quantity { return *resource.NewQuantity(i, resource.DecimalSI) }

var gpuToleration = corev1.Toleration{Key: "nvidia.com/gpu", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}

func gkeSpotToleration() corev1.Toleration {
	return corev1.Toleration{Key: "cloud.google.com/gke-spot", Operator: corev1.TolerationOpEqual, Value: "true", Effect: corev1.TaintEffectNoSchedule}
}

func aksSpotToleration() corev1.Toleration {
	return corev1.Toleration{Key: "kubernetes.azure.com/scalesetpriority", Operator: corev1.TolerationOpEqual, Value: "spot", Effect: corev1.TaintEffectNoSchedule}
}

func requiredAffinity(terms ...corev1.NodeSelectorTerm) *corev1.Affinity {
	return &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: terms},
	}}
}

func term(reqs ...corev1.NodeSelectorRequirement) corev1.NodeSelectorTerm {
	return corev1.NodeSelectorTerm{MatchExpressions: reqs}
}

var (
	notGKESpot        = corev1.NodeSelectorRequirement{Key: "cloud.google.com/gke-spot", Operator: corev1.NodeSelectorOpDoesNotExist}
	notGKEPreemptible = corev1.NodeSelectorRequirement{Key: "cloud.google.com/gke-preemptible", Operator: corev1.NodeSelectorOpDoesNotExist}
)

// testPools is a cluster with one pool per provider convention.
func testPools() []resources.NodePool {
	return []resources.NodePool{
		{
			Name: "cpu", Labels: map[string]string{"pool": "cpu"},
			Node: resources.Capacity{CPU: "16", Memory: "64Gi", EphemeralStorage: "200Gi"},
		},
		{
			// A GKE pool running the NVIDIA GPU Operator (mixed strategy).
			Name: "gke-a100", Provider: resources.ProviderGKE, GPUStack: resources.GPUStackNVIDIA, Spot: true,
			Labels: map[string]string{"cloud.google.com/gke-nodepool": "a100"},
			Taints: []corev1.Taint{{Key: "nvidia.com/gpu", Value: "present", Effect: corev1.TaintEffectNoSchedule}},
			Node: resources.Capacity{CPU: "96", Memory: "1360Gi", GPUModel: "A100-80GB", GPUs: 8,
				MIG: map[string]int{"3g.40gb": 16}},
		},
		{
			Name: "gke-l4", Provider: resources.ProviderGKE,
			Labels: map[string]string{"cloud.google.com/gke-nodepool": "l4"},
			Node:   resources.Capacity{GPUModel: "L4", GPUs: 1},
		},
		{
			Name: "eks-h100", Provider: resources.ProviderEKS, Spot: true,
			Labels: map[string]string{"eks.amazonaws.com/nodegroup": "h100"},
			Node:   resources.Capacity{GPUModel: "H100-80GB", GPUs: 8},
		},
		{
			Name: "eks-cpu", Provider: resources.ProviderEKS,
			Labels: map[string]string{"eks.amazonaws.com/nodegroup": "cpu"},
		},
		{
			Name: "aks-spot", Provider: resources.ProviderAKS, Spot: true,
			Labels: map[string]string{"kubernetes.azure.com/agentpool": "spot"},
		},
		{
			Name: "onprem", Spot: true,
			Labels:     map[string]string{"rack": "r1"},
			Taints:     []corev1.Taint{{Key: "dedicated", Effect: corev1.TaintEffectNoSchedule}},
			SpotLabels: map[string]string{"capacity": "spot", "lifecycle": "preemptible"},
			SpotTaints: []corev1.Taint{{Key: "capacity", Value: "spot", Effect: corev1.TaintEffectNoExecute}},
		},
		{
			Name: "onprem-untainted", Spot: true,
			SpotLabels: map[string]string{"capacity": "spot", "lifecycle": "preemptible"},
		},
		{
			Name: "h100-single", MIGStrategy: resources.MIGSingle,
			Labels: map[string]string{"pool": "h100-single"},
			Node:   resources.Capacity{GPUModel: "H100-80GB", GPUs: 8, MIG: map[string]int{"1g.10gb": 56}},
		},
	}
}

func TestResolve(t *testing.T) {
	tests := []struct {
		name    string
		p       resources.Profile
		noPools bool // resolve without declared pools (no fit check)
		want    resources.Resolved
	}{
		{name: "Zero"},
		{
			name: "Compute",
			p:    resources.Profile{CPU: "500m", Memory: "2Gi", EphemeralStorage: "10Gi", SharedMemory: "1Gi"},
			want: resources.Resolved{
				Requests:     corev1.ResourceList{"cpu": q("500m"), "memory": q("2Gi"), "ephemeral-storage": q("10Gi")},
				Limits:       corev1.ResourceList{"memory": q("2Gi")},
				SharedMemory: ptr(q("1Gi")),
			},
		},
		{
			name:    "GPUsOfAModelWithoutPool",
			noPools: true,
			p:       resources.Profile{GPUModel: "h100-80gb", GPUs: 2},
			want: resources.Resolved{
				Requests: corev1.ResourceList{"nvidia.com/gpu": n(2)},
				Limits:   corev1.ResourceList{"nvidia.com/gpu": n(2)},
				GPUModel: "H100-80GB",
				Placement: resources.Placement{
					NodeSelector: map[string]string{"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
					Tolerations:  []corev1.Toleration{gpuToleration},
				},
			},
		},
		{
			name:    "GPUsOfAnyModel",
			noPools: true,
			p:       resources.Profile{GPUs: 1},
			want: resources.Resolved{
				Requests:  corev1.ResourceList{"nvidia.com/gpu": n(1)},
				Limits:    corev1.ResourceList{"nvidia.com/gpu": n(1)},
				Placement: resources.Placement{Tolerations: []corev1.Toleration{gpuToleration}},
			},
		},
		{
			name:    "MIGMixedWithoutPool",
			noPools: true,
			p:       resources.Profile{GPUModel: "A100-40GB", MIG: "3g.20gb", MIGCount: 2},
			want: resources.Resolved{
				Requests: corev1.ResourceList{"nvidia.com/mig-3g.20gb": n(2)},
				Limits:   corev1.ResourceList{"nvidia.com/mig-3g.20gb": n(2)},
				GPUModel: "A100-40GB",
				Placement: resources.Placement{
					NodeSelector: map[string]string{"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB"},
					Tolerations:  []corev1.Toleration{gpuToleration},
				},
			},
		},
		{
			name:    "MIGMixedAnyModel",
			noPools: true,
			p:       resources.Profile{MIG: "1g.10gb+me"},
			want: resources.Resolved{
				Requests:  corev1.ResourceList{"nvidia.com/mig-1g.10gb.me": n(1)},
				Limits:    corev1.ResourceList{"nvidia.com/mig-1g.10gb.me": n(1)},
				Placement: resources.Placement{Tolerations: []corev1.Toleration{gpuToleration}},
			},
		},
		{
			name:    "MIGSingle",
			noPools: true,
			p:       resources.Profile{GPUModel: "A30-24GB", MIG: "2g.12gb", MIGCount: 2, MIGStrategy: resources.MIGSingle},
			want: resources.Resolved{
				Requests: corev1.ResourceList{"nvidia.com/gpu": n(2)},
				Limits:   corev1.ResourceList{"nvidia.com/gpu": n(2)},
				GPUModel: "A30-24GB",
				Placement: resources.Placement{
					NodeSelector: map[string]string{"nvidia.com/gpu.product": "NVIDIA-A30-MIG-2g.12gb"},
					Tolerations:  []corev1.Toleration{gpuToleration},
				},
			},
		},
		{
			name: "MIGSingleFromPoolWithPoolModel",
			p:    resources.Profile{MIG: "1g.10gb", MIGCount: 4, NodePool: "h100-single"},
			want: resources.Resolved{
				Requests: corev1.ResourceList{"nvidia.com/gpu": n(4)},
				Limits:   corev1.ResourceList{"nvidia.com/gpu": n(4)},
				GPUModel: "H100-80GB",
				Placement: resources.Placement{
					NodeSelector: map[string]string{"pool": "h100-single", "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3-MIG-1g.10gb"},
					Tolerations:  []corev1.Toleration{gpuToleration},
				},
			},
		},
		{
			name: "MIGMixedOverridesPoolStrategyWhenSame",
			p:    resources.Profile{MIG: "1g.10gb", MIGStrategy: resources.MIGSingle, NodePool: "h100-single"},
			want: resources.Resolved{
				Requests: corev1.ResourceList{"nvidia.com/gpu": n(1)},
				Limits:   corev1.ResourceList{"nvidia.com/gpu": n(1)},
				GPUModel: "H100-80GB",
				Placement: resources.Placement{
					NodeSelector: map[string]string{"pool": "h100-single", "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3-MIG-1g.10gb"},
					Tolerations:  []corev1.Toleration{gpuToleration},
				},
			},
		},
		{
			name: "PoolLabelsAndTaints",
			p:    resources.Profile{CPU: "4", NodePool: "onprem"},
			want: resources.Resolved{
				Requests: corev1.ResourceList{"cpu": q("4")},
				Placement: resources.Placement{
					NodeSelector: map[string]string{"rack": "r1"},
					Tolerations:  []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}},
				},
			},
		},
		{
			name: "GPUsOnGKESpotPoolNotPreemptible",
			p:    resources.Profile{GPUs: 8, NodePool: "gke-a100"},
			want: resources.Resolved{
				Requests: corev1.ResourceList{"nvidia.com/gpu": n(8)},
				Limits:   corev1.ResourceList{"nvidia.com/gpu": n(8)},
				GPUModel: "A100-80GB",
				Placement: resources.Placement{
					NodeSelector: map[string]string{"cloud.google.com/gke-nodepool": "a100"},
					Tolerations: []corev1.Toleration{
						gpuToleration, // covers the pool's nvidia.com/gpu=present taint
					},
					Affinity: requiredAffinity(term(notGKESpot, notGKEPreemptible)),
				},
			},
		},
		{
			name: "MIGOnGKESpotPoolPreemptible",
			p:    resources.Profile{MIG: "3g.40gb", NodePool: "gke-a100", Preemptible: true},
			want: resources.Resolved{
				Requests: corev1.ResourceList{"nvidia.com/mig-3g.40gb": n(1)},
				Limits:   corev1.ResourceList{"nvidia.com/mig-3g.40gb": n(1)},
				GPUModel: "A100-80GB",
				Placement: resources.Placement{
					NodeSelector: map[string]string{"cloud.google.com/gke-nodepool": "a100", "cloud.google.com/gke-spot": "true"},
					Tolerations: []corev1.Toleration{
						gkeSpotToleration(),
						gpuToleration, // covers the pool's nvidia.com/gpu=present taint
					},
				},
				OnDemand: &resources.Placement{
					NodeSelector: map[string]string{"cloud.google.com/gke-nodepool": "a100"},
					Tolerations: []corev1.Toleration{
						gpuToleration, // covers the pool's nvidia.com/gpu=present taint
					},
					Affinity: requiredAffinity(term(notGKESpot, notGKEPreemptible)),
				},
			},
		},
		{
			name: "GKEPoolWithoutSpot",
			p:    resources.Profile{GPUs: 1, NodePool: "gke-l4"},
			want: resources.Resolved{
				Requests: corev1.ResourceList{"nvidia.com/gpu": n(1)},
				Limits:   corev1.ResourceList{"nvidia.com/gpu": n(1)},
				GPUModel: "L4",
				Placement: resources.Placement{
					// GKE's managed stack: the pool's accelerator type too.
					NodeSelector: map[string]string{"cloud.google.com/gke-nodepool": "l4", "cloud.google.com/gke-accelerator": "nvidia-l4"},
					Tolerations:  []corev1.Toleration{gpuToleration},
				},
			},
		},
		{
			name: "EKSPreemptible",
			p:    resources.Profile{NodePool: "eks-h100", Preemptible: true},
			want: resources.Resolved{
				Placement: resources.Placement{NodeSelector: map[string]string{
					"eks.amazonaws.com/nodegroup": "h100", "eks.amazonaws.com/capacityType": "SPOT"}},
				OnDemand: &resources.Placement{NodeSelector: map[string]string{
					"eks.amazonaws.com/nodegroup": "h100", "eks.amazonaws.com/capacityType": "ON_DEMAND"}},
			},
		},
		{
			name: "EKSSpotPoolNotPreemptible",
			p:    resources.Profile{NodePool: "eks-h100"},
			want: resources.Resolved{
				Placement: resources.Placement{NodeSelector: map[string]string{
					"eks.amazonaws.com/nodegroup": "h100", "eks.amazonaws.com/capacityType": "ON_DEMAND"}},
			},
		},
		{
			name: "EKSPoolWithoutSpot",
			p:    resources.Profile{NodePool: "eks-cpu"},
			want: resources.Resolved{
				Placement: resources.Placement{NodeSelector: map[string]string{"eks.amazonaws.com/nodegroup": "cpu"}},
			},
		},
		{
			name: "AKSPreemptible",
			p:    resources.Profile{NodePool: "aks-spot", Preemptible: true},
			want: resources.Resolved{
				Placement: resources.Placement{
					NodeSelector: map[string]string{
						"kubernetes.azure.com/agentpool": "spot", "kubernetes.azure.com/scalesetpriority": "spot"},
					Tolerations: []corev1.Toleration{aksSpotToleration()},
				},
				OnDemand: &resources.Placement{NodeSelector: map[string]string{"kubernetes.azure.com/agentpool": "spot"}},
			},
		},
		{
			name: "AKSNotPreemptible",
			p:    resources.Profile{NodePool: "aks-spot"},
			want: resources.Resolved{
				Placement: resources.Placement{NodeSelector: map[string]string{"kubernetes.azure.com/agentpool": "spot"}},
			},
		},
		{
			name: "GenericPreemptible",
			p:    resources.Profile{NodePool: "onprem", Preemptible: true},
			want: resources.Resolved{
				Placement: resources.Placement{
					NodeSelector: map[string]string{"rack": "r1", "capacity": "spot", "lifecycle": "preemptible"},
					Tolerations: []corev1.Toleration{
						{Key: "capacity", Operator: corev1.TolerationOpEqual, Value: "spot", Effect: corev1.TaintEffectNoExecute},
						{Key: "dedicated", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
					},
				},
				OnDemand: &resources.Placement{
					NodeSelector: map[string]string{"rack": "r1"},
					Tolerations:  []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}},
				},
			},
		},
		{
			name: "GenericUntaintedSpotPoolNotPreemptible",
			p:    resources.Profile{NodePool: "onprem-untainted"},
			want: resources.Resolved{
				Placement: resources.Placement{Affinity: requiredAffinity(
					term(corev1.NodeSelectorRequirement{Key: "capacity", Operator: corev1.NodeSelectorOpNotIn, Values: []string{"spot"}}),
					term(corev1.NodeSelectorRequirement{Key: "lifecycle", Operator: corev1.NodeSelectorOpNotIn, Values: []string{"preemptible"}}),
				)},
			},
		},
		{
			name: "ProfileSelectorWinsAndTolerationsAreMerged",
			p: resources.Profile{
				NodePool:     "onprem",
				NodeSelector: map[string]string{"rack": "r2", "disk": "ssd"},
				Tolerations: []corev1.Toleration{
					{Key: "dedicated", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}, // duplicate of the pool's
					{Key: "a-first", Operator: corev1.TolerationOpExists},
				},
			},
			want: resources.Resolved{
				Placement: resources.Placement{
					NodeSelector: map[string]string{"rack": "r2", "disk": "ssd"},
					Tolerations: []corev1.Toleration{
						{Key: "a-first", Operator: corev1.TolerationOpExists},
						{Key: "dedicated", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
					},
				},
			},
		},
		{
			name:    "ProfileCanPickAnotherProduct",
			noPools: true,
			p: resources.Profile{GPUModel: "A100-80GB", GPUs: 1,
				NodeSelector: map[string]string{"nvidia.com/gpu.product": "NVIDIA-A100-80GB-PCIe"}},
			want: resources.Resolved{
				Requests: corev1.ResourceList{"nvidia.com/gpu": n(1)},
				Limits:   corev1.ResourceList{"nvidia.com/gpu": n(1)},
				GPUModel: "A100-80GB",
				Placement: resources.Placement{
					NodeSelector: map[string]string{"nvidia.com/gpu.product": "NVIDIA-A100-80GB-PCIe"},
					Tolerations:  []corev1.Toleration{gpuToleration},
				},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pools := testPools()
			if tc.noPools {
				pools = nil
			}
			got, err := resources.Resolve(tc.p, pools)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestResolveMergesProfileAffinity(t *testing.T) {
	user := &corev1.Affinity{
		NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{
				term(corev1.NodeSelectorRequirement{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}}),
				term(corev1.NodeSelectorRequirement{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"b"}}),
			}},
			PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{{Weight: 10,
				Preference: term(corev1.NodeSelectorRequirement{Key: "disk", Operator: corev1.NodeSelectorOpIn, Values: []string{"ssd"}})}},
		},
		PodAntiAffinity: &corev1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{TopologyKey: "kubernetes.io/hostname"}}},
	}
	orig := user.DeepCopy()
	got, err := resources.Resolve(resources.Profile{GPUs: 1, NodePool: "gke-a100", Affinity: user}, testPools())
	require.NoError(t, err)

	want := orig.DeepCopy()
	// (zone a or zone b) and no spot: each user term also excludes spot.
	want.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms = []corev1.NodeSelectorTerm{
		term(corev1.NodeSelectorRequirement{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}}, notGKESpot, notGKEPreemptible),
		term(corev1.NodeSelectorRequirement{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"b"}}, notGKESpot, notGKEPreemptible),
	}
	assert.Equal(t, want, got.Placement.Affinity)
	assert.Equal(t, orig, user, "Resolve changed the profile's affinity")

	// Without placement needs the user's affinity is passed through (a copy).
	got, err = resources.Resolve(resources.Profile{Affinity: user}, nil)
	require.NoError(t, err)
	assert.Equal(t, orig, got.Placement.Affinity)
	assert.NotSame(t, user, got.Placement.Affinity)

	// A user affinity without required node terms gets ours.
	pref := &corev1.Affinity{PodAffinity: &corev1.PodAffinity{}}
	got, err = resources.Resolve(resources.Profile{NodePool: "gke-a100", Affinity: pref}, testPools())
	require.NoError(t, err)
	assert.Equal(t, &corev1.Affinity{
		PodAffinity:  &corev1.PodAffinity{},
		NodeAffinity: requiredAffinity(term(notGKESpot, notGKEPreemptible)).NodeAffinity,
	}, got.Placement.Affinity)
}

// OnDemand is exactly what the profile gets without Preemptible.
func TestResolveOnDemandIsTheNonPreemptiblePlacement(t *testing.T) {
	for _, pool := range []string{"gke-a100", "eks-h100", "aks-spot", "onprem", "onprem-untainted"} {
		t.Run(pool, func(t *testing.T) {
			p := resources.Profile{CPU: "1", NodePool: pool, Preemptible: true,
				NodeSelector: map[string]string{"team": "ml"}}
			spot, err := resources.Resolve(p, testPools())
			require.NoError(t, err)
			p.Preemptible = false
			onDemand, err := resources.Resolve(p, testPools())
			require.NoError(t, err)
			require.NotNil(t, spot.OnDemand)
			assert.Equal(t, onDemand.Placement, *spot.OnDemand)
			assert.NotEqual(t, spot.Placement, *spot.OnDemand)
			assert.Nil(t, onDemand.OnDemand)
		})
	}
}

func TestResolveErrors(t *testing.T) {
	tests := []struct {
		name  string
		p     resources.Profile
		pools []resources.NodePool // nil: testPools()
		want  []key
	}{
		{name: "ValidateErrorsToo", p: resources.Profile{CPU: "x", MIG: "9g.1gb"},
			want: []key{k("cpu", invalid), k("mig", invalid)}},
		{name: "PoolNotFound", p: resources.Profile{NodePool: "gpu"}, want: []key{k("nodePool", notFound)}},
		{name: "NoPoolsDeclared", p: resources.Profile{NodePool: "gpu"}, pools: []resources.NodePool{},
			want: []key{k("nodePool", notFound)}},
		{name: "PreemptibleWithoutPool", p: resources.Profile{Preemptible: true}, want: []key{k("nodePool", required)}},
		{name: "PreemptibleOnPoolWithoutSpot", p: resources.Profile{NodePool: "cpu", Preemptible: true},
			want: []key{k("preemptible", invalid)}},
		{name: "PreemptibleOnCloudPoolWithoutSpot", p: resources.Profile{NodePool: "gke-l4", Preemptible: true},
			want: []key{k("preemptible", invalid)}},
		{name: "PreemptibleOnUnknownProvider", p: resources.Profile{NodePool: "x", Preemptible: true},
			pools: []resources.NodePool{{Name: "x", Provider: "gcp", Spot: true}},
			want:  []key{k("nodePool", invalid)}},
		{name: "GPUModelConflictsWithPool", p: resources.Profile{GPUModel: "H100-80GB", GPUs: 1, NodePool: "gke-a100"},
			want: []key{k("gpuModel", invalid)}},
		{name: "GPUModelSameAsPoolAnyCase", p: resources.Profile{GPUModel: "a100-80GB", GPUs: 1, NodePool: "gke-a100"}},
		{name: "MIGNotOfferedByPoolModel", p: resources.Profile{MIG: "3g.20gb", NodePool: "gke-a100"},
			want: []key{k("mig", invalid)}},
		{name: "MIGOnPoolWithoutMIG", p: resources.Profile{MIG: "1g.10gb", NodePool: "gke-l4"},
			want: []key{k("mig", invalid)}},
		{name: "MIGStrategyConflictsWithPool", p: resources.Profile{MIG: "1g.10gb", MIGStrategy: resources.MIGMixed, NodePool: "h100-single"},
			want: []key{k("migStrategy", invalid)}},
		{name: "MIGSingleWithoutModel", p: resources.Profile{MIG: "1g.10gb", MIGStrategy: resources.MIGSingle},
			want: []key{k("gpuModel", required)}},
		{name: "MIGSinglePoolStrategyUnknownModel", p: resources.Profile{MIG: "1g.10gb", NodePool: "s"},
			pools: []resources.NodePool{{Name: "s", MIGStrategy: resources.MIGSingle}},
			want:  []key{k("gpuModel", required)}},
		{name: "PoolWithUnsupportedStrategy", p: resources.Profile{MIG: "1g.10gb", NodePool: "s"},
			pools: []resources.NodePool{{Name: "s", MIGStrategy: "none"}},
			want:  []key{k("nodePool", invalid)}},

		// Fit against the named pool.
		{name: "FitsPool", p: resources.Profile{CPU: "16", Memory: "64Gi", EphemeralStorage: "200Gi", NodePool: "cpu"}},
		{name: "CPUTooLargeForPool", p: resources.Profile{CPU: "16500m", NodePool: "cpu"}, want: []key{k("cpu", invalid)}},
		{name: "MemoryTooLargeForPool", p: resources.Profile{Memory: "65Gi", NodePool: "cpu"}, want: []key{k("memory", invalid)}},
		{name: "EphemeralStorageTooLargeForPool", p: resources.Profile{EphemeralStorage: "1Ti", NodePool: "cpu"},
			want: []key{k("ephemeralStorage", invalid)}},
		{name: "EverythingTooLargeForPool", p: resources.Profile{CPU: "17", Memory: "1Ti", EphemeralStorage: "1Ti", NodePool: "cpu"},
			want: []key{k("cpu", invalid), k("memory", invalid), k("ephemeralStorage", invalid)}},
		{name: "GPUsTooManyForPool", p: resources.Profile{GPUs: 9, NodePool: "gke-a100"}, want: []key{k("gpus", invalid)}},
		{name: "MIGSlicesFitPool", p: resources.Profile{MIG: "3g.40gb", MIGCount: 16, NodePool: "gke-a100"}},
		{name: "MIGSlicesMoreThanPoolExposes", p: resources.Profile{MIG: "1g.10gb", MIGCount: 57, NodePool: "h100-single"},
			want: []key{k("migCount", invalid), k("mig", invalid)}},
		{name: "MIGProfileNotExposedByPool", p: resources.Profile{MIG: "1g.10gb", NodePool: "gke-a100"},
			want: []key{k("mig", invalid)}},
		{name: "ExtremePoolCapacityIsUnknown", p: resources.Profile{CPU: "1", Memory: "1Gi", NodePool: "x"},
			pools: []resources.NodePool{{Name: "x", Node: resources.Capacity{CPU: "1e-999999999", Memory: "1e999999999"}}}},
		{name: "UnknownCapacityIsNotChecked", p: resources.Profile{CPU: "1000", GPUs: resources.MaxGPUs, NodePool: "aks-spot"}},

		// No pool named: fit some declared pool.
		{name: "FitsSomePool", p: resources.Profile{CPU: "90", GPUs: 8}},
		{name: "CPUTooLargeForEveryPool", p: resources.Profile{CPU: "100"}, want: []key{k("cpu", invalid)}},
		{name: "GPUsTooManyForEveryPool", p: resources.Profile{GPUs: 16}, want: []key{k("gpus", invalid)}},
		{name: "MIGFitsSomePool", p: resources.Profile{MIG: "3g.40gb", MIGCount: 16}},
		{name: "MIGExposedByNoPool", p: resources.Profile{MIG: "2g.20gb"}, want: []key{k("mig", invalid)}},
		{name: "UnknownCapacityLetsAPoolFit", p: resources.Profile{CPU: "20", GPUs: 1}, pools: []resources.NodePool{
			{Name: "big-cpu", Node: resources.Capacity{CPU: "64", GPUs: 1}},
			{Name: "small-gpu", Node: resources.Capacity{CPU: "8", GPUs: 1}},
			{Name: "fits-if-cpu-were-known", Node: resources.Capacity{GPUs: 1}},
		}},
		{name: "NoPoolFitsEverythingTogether", p: resources.Profile{CPU: "20", GPUs: 4}, pools: []resources.NodePool{
			{Name: "big-cpu", Node: resources.Capacity{CPU: "64", GPUs: 1}},
			{Name: "small-gpu", Node: resources.Capacity{CPU: "8", GPUs: 8}},
		}, want: []key{k("nodePool", invalid)}},
		{name: "PoolsWithUnknownCapacity", p: resources.Profile{CPU: "1000", GPUs: resources.MaxGPUs}, pools: []resources.NodePool{{Name: "a"}, {Name: "b"}}},
		{name: "AskingNothingFitsAnything", p: resources.Profile{NodeSelector: map[string]string{"a": "b"}}},

		{name: "EveryProblemAtOnce", p: resources.Profile{
			CPU: "200", GPUModel: "H100-80GB", MIG: "1g.5gb", NodePool: "gke-a100", Preemptible: true, MIGStrategy: "auto",
		}, want: []key{
			k("mig", invalid),
			k("migStrategy", notSupported),
			k("gpuModel", invalid),
			k("cpu", invalid),
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pools := tc.pools
			if pools == nil {
				pools = testPools()
			}
			got, err := resources.Resolve(tc.p, pools)
			assert.Equal(t, tc.want, keys(err))
			if tc.want != nil {
				assert.Equal(t, resources.Resolved{}, got, "on error Resolved is the zero value")
			} else {
				assert.NoError(t, err)
			}
		})
	}
}

// Messages name the pool and what its nodes offer.
func TestResolveFitMessagesNameThePool(t *testing.T) {
	_, err := resources.Resolve(resources.Profile{Memory: "100Gi", NodePool: "cpu"}, testPools())
	require.Error(t, err)
	assert.Contains(t, err.Error(), `pool "cpu"`)
	assert.Contains(t, err.Error(), "64Gi")

	_, err = resources.Resolve(resources.Profile{GPUs: 16}, testPools())
	require.Error(t, err)
	assert.Contains(t, err.Error(), `pool "gke-a100"`, "names the largest pool")

	_, err = resources.Resolve(resources.Profile{NodePool: "gke-a10"}, testPools())
	require.Error(t, err)
	assert.Contains(t, err.Error(), `did you mean "gke-a100"?`)
	assert.Contains(t, err.Error(), `"cpu", "gke-a100"`, "lists the declared pools")
}

func TestResolveIsDeterministic(t *testing.T) {
	p := resources.Profile{
		CPU: "4", Memory: "16Gi", MIG: "3g.40gb", MIGCount: 2, NodePool: "gke-a100", Preemptible: true,
		NodeSelector: map[string]string{"z": "1", "a": "2", "m": "3"},
		Tolerations: []corev1.Toleration{
			{Key: "zz", Operator: corev1.TolerationOpExists},
			{Key: "aa", Operator: corev1.TolerationOpEqual, Value: "2"},
			{Key: "aa", Operator: corev1.TolerationOpEqual, Value: "1"},
			{Key: "aa", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: seconds(5)},
			{Key: "aa", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
		},
		Affinity: nodeAffinity("zone"),
	}
	first, err := resources.Resolve(p, testPools())
	require.NoError(t, err)
	for range 20 {
		again, err := resources.Resolve(p, testPools())
		require.NoError(t, err)
		require.Equal(t, first, again)
	}
	for _, pl := range []resources.Placement{first.Placement, *first.OnDemand} {
		assert.True(t, slices.IsSortedFunc(pl.Tolerations, func(a, b corev1.Toleration) int {
			return strings.Compare(a.Key+"/"+string(a.Operator)+"/"+a.Value+"/"+string(a.Effect),
				b.Key+"/"+string(b.Operator)+"/"+b.Value+"/"+string(b.Effect))
		}), "tolerations are sorted: %v", pl.Tolerations)
	}
	// "aa Exists NoExecute" (forever) covers the 5-second one.
	assert.Equal(t, []corev1.Toleration{
		{Key: "aa", Operator: corev1.TolerationOpEqual, Value: "1"},
		{Key: "aa", Operator: corev1.TolerationOpEqual, Value: "2"},
		{Key: "aa", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
		gkeSpotToleration(),
		{Key: "nvidia.com/gpu", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
		{Key: "zz", Operator: corev1.TolerationOpExists},
	}, first.Placement.Tolerations)
}

// A toleration implied by another is dropped.
func TestResolveDropsCoveredTolerations(t *testing.T) {
	exists := corev1.TolerationOpExists
	equal := corev1.TolerationOpEqual
	tests := []struct {
		name string
		in   []corev1.Toleration
		want []corev1.Toleration
	}{
		{"ExistsCoversEqual",
			[]corev1.Toleration{{Key: "a", Operator: equal, Value: "x"}, {Key: "a", Operator: exists}},
			[]corev1.Toleration{{Key: "a", Operator: exists}}},
		{"EmptyOperatorIsEqual",
			[]corev1.Toleration{{Key: "a", Value: "x"}, {Key: "a", Operator: equal, Value: "x"}},
			[]corev1.Toleration{{Key: "a", Value: "x"}}},
		{"AnyEffectCoversOne",
			[]corev1.Toleration{{Key: "a", Operator: exists, Effect: corev1.TaintEffectNoSchedule}, {Key: "a", Operator: exists}},
			[]corev1.Toleration{{Key: "a", Operator: exists}}},
		{"EmptyKeyExistsCoversAll",
			[]corev1.Toleration{{Key: "a", Operator: exists}, {Key: "b", Value: "v"}, {Operator: exists}},
			[]corev1.Toleration{{Operator: exists}}},
		{"LongerCoversShorter",
			[]corev1.Toleration{
				{Key: "a", Operator: exists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: seconds(10)},
				{Key: "a", Operator: exists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: seconds(60)}},
			[]corev1.Toleration{{Key: "a", Operator: exists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: seconds(60)}}},
		{"EqualDoesNotCoverOtherValueOrEffect",
			[]corev1.Toleration{
				{Key: "a", Operator: equal, Value: "x", Effect: corev1.TaintEffectNoSchedule},
				{Key: "a", Operator: equal, Value: "y"},
				{Key: "a", Operator: exists, Effect: corev1.TaintEffectNoExecute}},
			[]corev1.Toleration{
				{Key: "a", Operator: equal, Value: "x", Effect: corev1.TaintEffectNoSchedule},
				{Key: "a", Operator: equal, Value: "y"},
				{Key: "a", Operator: exists, Effect: corev1.TaintEffectNoExecute}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := resources.Resolve(resources.Profile{Tolerations: tc.in}, nil)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got.Placement.Tolerations)
		})
	}
}

func TestResolveDoesNotAlias(t *testing.T) {
	pools := testPools()
	p := resources.Profile{
		Memory: "1Gi", SharedMemory: "512Mi", NodePool: "onprem", Preemptible: true,
		NodeSelector: map[string]string{"team": "ml"},
		Tolerations:  []corev1.Toleration{{Key: "t", Operator: corev1.TolerationOpExists, TolerationSeconds: seconds(1), Effect: corev1.TaintEffectNoExecute}},
		Affinity:     nodeAffinity("zone"),
	}
	got, err := resources.Resolve(p, pools)
	require.NoError(t, err)

	got.Placement.NodeSelector["rack"] = "changed"
	got.Placement.NodeSelector["team"] = "changed"
	got.OnDemand.NodeSelector["rack"] = "changed"
	for i := range got.Placement.Tolerations {
		got.Placement.Tolerations[i].Key = "changed"
		if s := got.Placement.Tolerations[i].TolerationSeconds; s != nil {
			*s = 99
		}
	}
	got.Placement.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchExpressions[0].Values[0] = "changed"
	got.SharedMemory.Set(1)

	assert.Equal(t, testPools(), pools)
	assert.Equal(t, map[string]string{"team": "ml"}, p.NodeSelector)
	assert.Equal(t, int64(1), *p.Tolerations[0].TolerationSeconds)
	assert.Equal(t, "t", p.Tolerations[0].Key)
	assert.Equal(t, nodeAffinity("zone"), p.Affinity)
	again, err := resources.Resolve(p, pools)
	require.NoError(t, err)
	assert.Equal(t, "512Mi", again.SharedMemory.String())
	assert.Equal(t, "r1", again.Placement.NodeSelector["rack"])
}

func TestResolveConcurrentSafe(t *testing.T) {
	pools := testPools()
	p := resources.Profile{CPU: "2", MIG: "3g.40gb", NodePool: "gke-a100", Preemptible: true}
	want, err := resources.Resolve(p, pools)
	require.NoError(t, err)
	done := make(chan resources.Resolved)
	for range 8 {
		go func() {
			got, _ := resources.Resolve(p, pools)
			done <- got
		}()
	}
	for range 8 {
		assert.Equal(t, want, <-done)
	}
}
