package resources_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/resources"
)

func TestNodePoolStack(t *testing.T) {
	tests := []struct {
		pool resources.NodePool
		want resources.GPUStack
	}{
		{resources.NodePool{Provider: resources.ProviderGKE}, resources.GPUStackGKE},
		{resources.NodePool{Provider: resources.ProviderGKE, MIGStrategy: resources.MIGMixed}, resources.GPUStackNVIDIA},
		{resources.NodePool{Provider: resources.ProviderGKE, GPUStack: resources.GPUStackNVIDIA}, resources.GPUStackNVIDIA},
		{resources.NodePool{Provider: resources.ProviderEKS}, resources.GPUStackNVIDIA},
		{resources.NodePool{Provider: resources.ProviderAKS}, resources.GPUStackAKS},
		{resources.NodePool{Provider: resources.ProviderAKS, MIGStrategy: resources.MIGSingle}, resources.GPUStackAKS},
		{resources.NodePool{Provider: resources.ProviderAKS, GPUStack: resources.GPUStackNVIDIA}, resources.GPUStackNVIDIA},
		{resources.NodePool{}, resources.GPUStackNVIDIA},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, tc.pool.Stack(), "%+v", tc.pool)
	}
}

func TestAKSInstanceProfile(t *testing.T) {
	a100, _ := resources.LookupModel("A100-40GB")
	for n, want := range map[int]string{1: "1g.5gb", 2: "2g.10gb", 3: "3g.20gb", 4: "4g.20gb", 7: "7g.40gb"} {
		p, ok := a100.AKSInstanceProfile(n)
		require.True(t, ok)
		assert.Equal(t, want, p.Name)
	}
	a30, _ := resources.LookupModel("A30-24GB")
	_, ok := a30.AKSInstanceProfile(3)
	assert.False(t, ok)
	h100, _ := resources.LookupModel("H100-80GB")
	p, _ := h100.AKSInstanceProfile(1)
	assert.Equal(t, "1g.10gb", p.Name, "the least memory, not 1g.20gb or 1g.10gb+me")
}

// A pool whose GPU stack contradicts its provider, strategy or nodes.
func TestNodePoolValidateGPUStack(t *testing.T) {
	tests := []struct {
		name string
		pool resources.NodePool
		want []key
	}{
		{"GKEDefault", resources.NodePool{Name: "p", Provider: resources.ProviderGKE,
			Node: resources.Capacity{GPUModel: "A100-80GB", GPUs: 1, MIG: map[string]int{"1g.10gb": 7}}}, nil},
		{"GKEOperator", resources.NodePool{Name: "p", Provider: resources.ProviderGKE, GPUStack: resources.GPUStackNVIDIA,
			Node: resources.Capacity{GPUModel: "A100-80GB", GPUs: 1, MIG: map[string]int{"1g.10gb": 3, "3g.40gb": 1}}}, nil},
		{"UnknownStack", resources.NodePool{Name: "p", GPUStack: "operator"}, []key{k("gpuStack", notSupported)}},
		{"GKEStackOffGKE", resources.NodePool{Name: "p", Provider: resources.ProviderEKS, GPUStack: resources.GPUStackGKE},
			[]key{k("gpuStack", invalid)}},
		{"AKSStackOffAKS", resources.NodePool{Name: "p", GPUStack: resources.GPUStackAKS}, []key{k("gpuStack", invalid)}},
		{"GKEStackWithStrategy", resources.NodePool{Name: "p", Provider: resources.ProviderGKE, GPUStack: resources.GPUStackGKE,
			MIGStrategy: resources.MIGMixed}, []key{k("migStrategy", forbidden)}},
		{"GKEModelNotOnGKE", resources.NodePool{Name: "p", Provider: resources.ProviderGKE,
			Node: resources.Capacity{GPUModel: "A10G", GPUs: 1}}, []key{k("node.gpuModel", invalid)}},
		{"GKEOperatorModelNotChecked", resources.NodePool{Name: "p", Provider: resources.ProviderGKE, MIGStrategy: resources.MIGMixed,
			Node: resources.Capacity{GPUModel: "A10G", GPUs: 1}}, nil},
		{"GKETwoPartitionSizes", resources.NodePool{Name: "p", Provider: resources.ProviderGKE,
			Node: resources.Capacity{GPUModel: "A100-80GB", GPUs: 2, MIG: map[string]int{"1g.10gb": 7, "3g.40gb": 2}}},
			[]key{k("node.mig", invalid)}},
		{"SingleTwoProfiles", resources.NodePool{Name: "p", MIGStrategy: resources.MIGSingle,
			Node: resources.Capacity{GPUModel: "A100-80GB", GPUs: 2, MIG: map[string]int{"1g.10gb": 7, "3g.40gb": 2}}},
			[]key{k("node.mig", invalid)}},
		{"MixedTwoProfiles", resources.NodePool{Name: "p", MIGStrategy: resources.MIGMixed,
			Node: resources.Capacity{GPUModel: "A100-80GB", GPUs: 2, MIG: map[string]int{"1g.10gb": 7, "3g.40gb": 2}}}, nil},
		{"AKSInstanceProfile", resources.NodePool{Name: "p", Provider: resources.ProviderAKS,
			Node: resources.Capacity{GPUModel: "A100-80GB", GPUs: 1, MIG: map[string]int{"2g.20gb": 3}}}, nil},
		{"AKSNoSuchInstanceProfile", resources.NodePool{Name: "p", Provider: resources.ProviderAKS,
			Node: resources.Capacity{GPUModel: "A100-80GB", GPUs: 1, MIG: map[string]int{"1g.20gb": 4}}},
			[]key{k("node.mig[1g.20gb]", invalid)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, keys(tc.pool.Validate()))
		})
	}
}

// A profile that cannot be placed on the named pool's GPU stack.
func TestResolveErrorsOfGPUStack(t *testing.T) {
	pools := goldenPools()
	pools = append(pools,
		resources.NodePool{Name: "gke-any", Provider: resources.ProviderGKE},
		resources.NodePool{Name: "aks-any", Provider: resources.ProviderAKS},
		resources.NodePool{Name: "bad-stack", GPUStack: "operator"},
	)
	tests := []struct {
		name string
		p    resources.Profile
		want []key
	}{
		{"GKEStrategyOnManagedPool", resources.Profile{MIG: "1g.10gb", MIGStrategy: resources.MIGMixed, NodePool: "gke-a100-mig"},
			[]key{k("migStrategy", invalid)}},
		{"GKEPartitionSizeNotThePools", resources.Profile{MIG: "3g.40gb", NodePool: "gke-a100-mig"},
			[]key{k("mig", invalid)}},
		{"GKEMoreSlicesThanANode", resources.Profile{MIG: "1g.10gb", MIGCount: 8, NodePool: "gke-a100-mig"},
			[]key{k("mig", invalid)}},
		{"GKEWholeGPUOnPartitionedPool", resources.Profile{GPUs: 1, NodePool: "gke-a100-mig"},
			[]key{k("gpus", invalid)}},
		{"GKEModelNotOnGKE", resources.Profile{GPUModel: "L40S", GPUs: 1, NodePool: "gke-any"},
			[]key{k("gpuModel", invalid)}},
		{"GKEModelOnGKE", resources.Profile{GPUModel: "H100-80GB", GPUs: 8, NodePool: "gke-any"}, nil},
		{"GKEMediaExtensions", resources.Profile{GPUModel: "A100-80GB", MIG: "1g.10gb+me", NodePool: "gke-any"},
			[]key{k("mig", invalid)}},
		{"GKEModelThePoolLacks", resources.Profile{GPUModel: "H100-80GB", GPUs: 1, NodePool: "gke-l4"},
			[]key{k("gpuModel", invalid)}},
		{"GKEMoreGPUsThanANode", resources.Profile{GPUs: 2, NodePool: "gke-l4"}, []key{k("gpus", invalid)}},
		{"GKEMIGOnWholeGPUModel", resources.Profile{MIG: "1g.10gb", NodePool: "gke-l4"}, []key{k("mig", invalid)}},
		{"AKSProfileNoInstanceProfileGives", resources.Profile{GPUModel: "A100-80GB", MIG: "1g.20gb", NodePool: "aks-any"},
			[]key{k("mig", invalid)}},
		{"AKSProfileNotThePools", resources.Profile{MIG: "3g.40gb", NodePool: "aks-mig-mixed"}, []key{k("mig", invalid)}},
		{"AKSSingleNeedsNoModel", resources.Profile{MIG: "1g.10gb", MIGStrategy: resources.MIGSingle, NodePool: "aks-any"}, nil},
		{"AKSWholeGPUOnMIGPool", resources.Profile{GPUs: 1, NodePool: "aks-mig-single"}, []key{k("gpus", invalid)}},
		{"SingleWholeGPUOnMIGPool", resources.Profile{GPUs: 1, NodePool: "eks-p4d-single"}, []key{k("gpus", invalid)}},
		{"MixedWholeGPUOnMIGPool", resources.Profile{GPUs: 1, NodePool: "eks-p4d-mixed"}, nil},
		{"UnsupportedStack", resources.Profile{GPUs: 1, NodePool: "bad-stack"}, []key{k("nodePool", invalid)}},
		{"UnsupportedStackNoGPU", resources.Profile{CPU: "1", NodePool: "bad-stack"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := resources.Resolve(tc.p, pools)
			assert.Equal(t, tc.want, keys(err))
		})
	}
}

// Messages name the pool and say why.
func TestResolveGPUStackMessagesNameThePool(t *testing.T) {
	_, err := resources.Resolve(resources.Profile{GPUs: 1, NodePool: "gke-a100-mig"}, goldenPools())
	require.Error(t, err)
	assert.Contains(t, err.Error(), `pool "gke-a100-mig"`)
	assert.Contains(t, err.Error(), `mig: "1g.10gb"`)

	_, err = resources.Resolve(resources.Profile{MIG: "1g.10gb", MIGStrategy: resources.MIGSingle, NodePool: "gke-a100-mig"}, goldenPools())
	require.Error(t, err)
	assert.Contains(t, err.Error(), `pool "gke-a100-mig"`)
	assert.Contains(t, err.Error(), "cloud.google.com/gke-gpu-partition-size")
}
