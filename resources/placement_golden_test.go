package resources_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/sluice-ml/sluice/internal/golden"
	"github.com/sluice-ml/sluice/resources"
)

// podRequirements is what a pod gets from a Resolved, as YAML.
type podRequirements struct {
	GPUModel     string                 `json:"gpuModel,omitempty"`
	Requests     corev1.ResourceList    `json:"requests,omitempty"`
	Limits       corev1.ResourceList    `json:"limits,omitempty"`
	NodeSelector map[string]string      `json:"nodeSelector,omitempty"`
	Tolerations  []corev1.Toleration    `json:"tolerations,omitempty"`
	Affinity     *corev1.Affinity       `json:"affinity,omitempty"`
	OnDemand     *placementRequirements `json:"onDemand,omitempty"`
}

type placementRequirements struct {
	NodeSelector map[string]string   `json:"nodeSelector,omitempty"`
	Tolerations  []corev1.Toleration `json:"tolerations,omitempty"`
	Affinity     *corev1.Affinity    `json:"affinity,omitempty"`
}

// The pools of the golden placements, one per platform and GPU stack.
var (
	// GKE, GKE's managed stack (the default).
	gkeL4 = resources.NodePool{
		Name: "gke-l4", Provider: resources.ProviderGKE,
		Labels: map[string]string{"cloud.google.com/gke-nodepool": "l4"},
		Taints: []corev1.Taint{{Key: "nvidia.com/gpu", Value: "present", Effect: corev1.TaintEffectNoSchedule}},
		Node:   resources.Capacity{CPU: "8", Memory: "32Gi", GPUModel: "L4", GPUs: 1},
	}
	// GKE, a2-ultragpu-1g whose A100 is cut into 1g.10gb partitions
	// (gpu-partition-size=1g.10gb), on Spot VMs.
	gkeMIG = resources.NodePool{
		Name: "gke-a100-mig", Provider: resources.ProviderGKE, Spot: true,
		Labels: map[string]string{"cloud.google.com/gke-nodepool": "a100-mig"},
		Taints: []corev1.Taint{{Key: "nvidia.com/gpu", Value: "present", Effect: corev1.TaintEffectNoSchedule}},
		Node:   resources.Capacity{CPU: "12", Memory: "170Gi", GPUModel: "A100-80GB", GPUs: 1, MIG: map[string]int{"1g.10gb": 7}},
	}
	// GKE with the NVIDIA GPU Operator instead of GKE's device plugin.
	gkeOperatorMixed = resources.NodePool{
		Name: "gke-operator-mixed", Provider: resources.ProviderGKE, GPUStack: resources.GPUStackNVIDIA,
		MIGStrategy: resources.MIGMixed,
		Labels:      map[string]string{"cloud.google.com/gke-nodepool": "a100-operator"},
		Node:        resources.Capacity{GPUModel: "A100-40GB", GPUs: 8, MIG: map[string]int{"3g.20gb": 8, "1g.5gb": 14}},
	}
	gkeOperatorSingle = resources.NodePool{
		Name: "gke-operator-single", Provider: resources.ProviderGKE, MIGStrategy: resources.MIGSingle, // implies gpuStack nvidia
		Labels: map[string]string{"cloud.google.com/gke-nodepool": "h100-operator"},
		Node:   resources.Capacity{GPUModel: "H100-80GB", GPUs: 8, MIG: map[string]int{"2g.20gb": 24}},
	}
	// EKS, EKS-optimized accelerated AMI with the NVIDIA device plugin.
	eksH100 = resources.NodePool{
		Name: "eks-p5", Provider: resources.ProviderEKS, Spot: true,
		Labels: map[string]string{"eks.amazonaws.com/nodegroup": "p5"},
		Node:   resources.Capacity{CPU: "192", Memory: "2000Gi", GPUModel: "H100-80GB", GPUs: 8},
	}
	eksMixed = resources.NodePool{
		Name: "eks-p4d-mixed", Provider: resources.ProviderEKS, MIGStrategy: resources.MIGMixed,
		Labels: map[string]string{"eks.amazonaws.com/nodegroup": "p4d-mig"},
		Node:   resources.Capacity{GPUModel: "A100-40GB", GPUs: 8, MIG: map[string]int{"1g.5gb": 28, "3g.20gb": 8}},
	}
	eksSingle = resources.NodePool{
		Name: "eks-p4d-single", Provider: resources.ProviderEKS, MIGStrategy: resources.MIGSingle,
		Labels: map[string]string{"eks.amazonaws.com/nodegroup": "p4d-single"},
		Node:   resources.Capacity{GPUModel: "A100-40GB", GPUs: 8, MIG: map[string]int{"3g.20gb": 16}},
	}
	// AKS GPU node pools, tainted as the AKS documentation suggests.
	aksWhole = resources.NodePool{
		Name: "aks-nc24", Provider: resources.ProviderAKS,
		Labels: map[string]string{"kubernetes.azure.com/agentpool": "gpu"},
		Taints: []corev1.Taint{{Key: "sku", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}},
		Node:   resources.Capacity{GPUModel: "A100-80GB", GPUs: 1},
	}
	// AKS MIG node pools: --gpu-instance-profile MIG1g on NC A100 v4.
	aksMixed = resources.NodePool{
		Name: "aks-mig-mixed", Provider: resources.ProviderAKS, Spot: true,
		Labels: map[string]string{"kubernetes.azure.com/agentpool": "migmixed"},
		Node:   resources.Capacity{GPUModel: "A100-80GB", GPUs: 1, MIG: map[string]int{"1g.10gb": 7}},
	}
	aksSingle = resources.NodePool{
		Name: "aks-mig-single", Provider: resources.ProviderAKS, MIGStrategy: resources.MIGSingle,
		Labels: map[string]string{"kubernetes.azure.com/agentpool": "migsingle"},
		Node:   resources.Capacity{GPUModel: "A100-80GB", GPUs: 2, MIG: map[string]int{"3g.40gb": 4}},
	}
	// On premises: the GPU Operator, GPU Feature Discovery's labels.
	onpremMixed = resources.NodePool{
		Name: "onprem-mixed", MIGStrategy: resources.MIGMixed,
		Labels: map[string]string{"rack": "dgx"},
		Node:   resources.Capacity{GPUModel: "H100-80GB", GPUs: 8},
	}
	onpremSingle = resources.NodePool{
		Name: "onprem-single", MIGStrategy: resources.MIGSingle,
		Labels: map[string]string{"rack": "dgx-single"},
		Node:   resources.Capacity{GPUModel: "H200-141GB", GPUs: 8, MIG: map[string]int{"1g.18gb": 56}},
	}
)

func goldenPools() []resources.NodePool {
	return []resources.NodePool{gkeL4, gkeMIG, gkeOperatorMixed, gkeOperatorSingle, eksH100, eksMixed, eksSingle,
		aksWhole, aksMixed, aksSingle, onpremMixed, onpremSingle}
}

// TestGoldenPlacement records the pod requirements of each platform and
// GPU stack: whole GPUs, the device plugin's mixed and single MIG
// strategies, GKE's managed MIG partitions and AKS MIG node pools.
func TestGoldenPlacement(t *testing.T) {
	require.NoError(t, resources.ValidatePools(goldenPools()))
	tests := []struct {
		name string
		p    resources.Profile
	}{
		{"GKE/WholeGPU", resources.Profile{CPU: "4", Memory: "16Gi", GPUs: 1, NodePool: "gke-l4"}},
		{"GKE/ManagedMIGPartitions", resources.Profile{CPU: "2", Memory: "8Gi", MIG: "1g.10gb", NodePool: "gke-a100-mig", Preemptible: true}},
		{"GKE/OperatorMIGMixed", resources.Profile{MIG: "3g.20gb", MIGCount: 2, NodePool: "gke-operator-mixed"}},
		{"GKE/OperatorMIGSingle", resources.Profile{MIG: "2g.20gb", NodePool: "gke-operator-single"}},
		{"EKS/WholeGPU", resources.Profile{GPUs: 8, NodePool: "eks-p5", Preemptible: true}},
		{"EKS/MIGMixed", resources.Profile{MIG: "1g.5gb", MIGCount: 4, NodePool: "eks-p4d-mixed"}},
		{"EKS/MIGSingle", resources.Profile{MIG: "3g.20gb", NodePool: "eks-p4d-single"}},
		{"AKS/WholeGPU", resources.Profile{GPUs: 1, NodePool: "aks-nc24"}},
		{"AKS/MIGMixed", resources.Profile{MIG: "1g.10gb", NodePool: "aks-mig-mixed", Preemptible: true}},
		{"AKS/MIGSingle", resources.Profile{MIG: "3g.40gb", MIGCount: 2, NodePool: "aks-mig-single"}},
		{"OnPrem/MIGMixed", resources.Profile{MIG: "3g.40gb", NodePool: "onprem-mixed"}},
		{"OnPrem/MIGSingle", resources.Profile{MIG: "1g.18gb", MIGCount: 8, NodePool: "onprem-single"}},
		{"NoPool/MIGMixed", resources.Profile{GPUModel: "A100-80GB", MIG: "2g.20gb"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := resources.Resolve(tc.p, goldenPools())
			require.NoError(t, err)
			out := podRequirements{
				GPUModel: r.GPUModel, Requests: r.Requests, Limits: r.Limits,
				NodeSelector: r.Placement.NodeSelector, Tolerations: r.Placement.Tolerations, Affinity: r.Placement.Affinity,
			}
			if r.OnDemand != nil {
				out.OnDemand = &placementRequirements{r.OnDemand.NodeSelector, r.OnDemand.Tolerations, r.OnDemand.Affinity}
			}
			b, err := yaml.Marshal(out)
			require.NoError(t, err)
			golden.Assert(t, b)
		})
	}
}
