package resources

import (
	corev1 "k8s.io/api/core/v1"
)

// Profile is what one task needs from a node: compute, accelerators and
// placement. It is plain data, written as a struct literal; the zero value
// asks for nothing and lets the scheduler decide.
//
// Quantities are strings in Kubernetes notation ("500m", "16Gi") and are
// parsed with k8s.io/apimachinery's resource.Quantity by [Profile.Validate].
// Each is between 1n and 8Ei; CPU is at most 8Pi cores, so that its
// millicores fit in 64 bits.
type Profile struct {
	// CPU is the CPU request, for example "4" or "500m".
	CPU string `json:"cpu,omitempty"`
	// Memory is the memory request, for example "16Gi".
	Memory string `json:"memory,omitempty"`
	// EphemeralStorage is the local scratch disk request, for example "100Gi".
	EphemeralStorage string `json:"ephemeralStorage,omitempty"`
	// SharedMemory is the size of /dev/shm (a memory-backed volume), which
	// PyTorch data loaders and NCCL need well above the container default of
	// 64Mi. It counts against Memory.
	SharedMemory string `json:"sharedMemory,omitempty"`

	// GPUModel names a model from the catalog (see [Models]), matched
	// case-insensitively, for example "A100-80GB". It needs GPUs or MIG.
	// MIG profiles are checked against it (or against the pool's model);
	// the single MIG strategy needs it unless the pool declares its model.
	// With no pool named, it selects nodes of that model through the
	// nvidia.com/gpu.product label.
	GPUModel string `json:"gpuModel,omitempty"`
	// GPUs is the number of whole GPUs, requested as nvidia.com/gpu: 0 to
	// [MaxGPUs]. It cannot be combined with MIG.
	GPUs int `json:"gpus,omitempty"`
	// MIG is a Multi-Instance GPU profile of GPUModel, for example
	// "3g.40gb". It cannot be combined with GPUs.
	MIG string `json:"mig,omitempty"`
	// MIGCount is the number of MIG slices; zero means one when MIG is set.
	// It is at most what 8 GPUs hold of that profile.
	MIGCount int `json:"migCount,omitempty"`
	// MIGStrategy is how the NVIDIA device plugin exposes MIG slices on the
	// nodes. The zero value means the pool's strategy, else [MIGMixed]. It
	// must be empty on a pool of GKE's managed GPU stack ([GPUStackGKE]),
	// which has no strategy.
	MIGStrategy MIGStrategy `json:"migStrategy,omitempty"`

	// NodePool names a pool declared to the pipeline (see [NodePool]). The
	// task is placed on that pool's nodes and tolerates its taints, so a
	// cluster autoscaler grows exactly that pool.
	NodePool string `json:"nodePool,omitempty"`
	// Preemptible places the task on spot/preemptible capacity, using the
	// pool's provider convention; it needs a NodePool declared with Spot.
	// Retries then tell preemption from failure.
	Preemptible bool `json:"preemptible,omitempty"`

	// NodeSelector adds node labels the task requires.
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
	// Tolerations adds taints the task tolerates.
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`
	// Affinity adds node/pod (anti-)affinity; it is merged with the
	// affinity placement needs. It is passed through unchecked.
	Affinity *corev1.Affinity `json:"affinity,omitempty"`
}

// MIGStrategy is the NVIDIA device plugin's MIG strategy.
type MIGStrategy string

const (
	// MIGMixed exposes each slice size as its own resource,
	// nvidia.com/mig-<profile>, for example nvidia.com/mig-3g.40gb.
	MIGMixed MIGStrategy = "mixed"
	// MIGSingle exposes slices as nvidia.com/gpu on nodes where every GPU is
	// cut the same way; the slice size is chosen with the node label
	// nvidia.com/gpu.product=<product>-MIG-<profile>.
	MIGSingle MIGStrategy = "single"
)

// Provider is the cloud convention a node pool follows for pool labels and
// spot/preemptible capacity; it also picks the pool's default [GPUStack].
type Provider string

const (
	// ProviderGeneric: the pool's own Labels select it; spot capacity is
	// selected by SpotLabels and tolerated through SpotTaints.
	ProviderGeneric Provider = ""
	// ProviderGKE: Google Kubernetes Engine. Spot nodes carry
	// cloud.google.com/gke-spot=true (legacy preemptible VMs
	// cloud.google.com/gke-preemptible=true).
	ProviderGKE Provider = "gke"
	// ProviderEKS: Amazon EKS managed node groups. Spot nodes carry
	// eks.amazonaws.com/capacityType=SPOT, others ON_DEMAND.
	ProviderEKS Provider = "eks"
	// ProviderAKS: Azure Kubernetes Service. Spot nodes carry
	// kubernetes.azure.com/scalesetpriority=spot and the taint of the same
	// key, value spot, effect NoSchedule.
	ProviderAKS Provider = "aks"
)

// NodePool is a named group of identical nodes, declared once per pipeline
// (or shared across pipelines as a package-level variable) and named by
// [Profile.NodePool].
type NodePool struct {
	// Name is how profiles refer to the pool.
	Name string `json:"name"`
	// Provider picks the spot/preemptible convention.
	Provider Provider `json:"provider,omitempty"`
	// Labels select the pool's nodes, for example
	// {"cloud.google.com/gke-nodepool": "gpu-a100"}.
	Labels map[string]string `json:"labels,omitempty"`
	// Taints are the taints on the pool's nodes; tasks placed on the pool
	// tolerate them.
	Taints []corev1.Taint `json:"taints,omitempty"`
	// Node is what one node of the pool offers; the zero value is unknown
	// and disables the fit check for this pool.
	Node Capacity `json:"node,omitempty"`
	// GPUStack is the software that exposes the pool's GPUs to Kubernetes:
	// it decides the resource names, node labels and MIG layout a pod must
	// match. The zero value is the provider's default (see [GPUStack] and
	// [NodePool.Stack]): GKE's managed stack on GKE, unless MIGStrategy is
	// set; AKS's own on AKS; the NVIDIA device plugin elsewhere.
	GPUStack GPUStack `json:"gpuStack,omitempty"`
	// MIGStrategy is the NVIDIA device plugin strategy on this pool's
	// nodes. Setting it declares that the pool runs the NVIDIA device plugin
	// (so on GKE, with no GPUStack, it selects [GPUStackNVIDIA]); GKE's
	// managed stack has no strategy and rejects it.
	MIGStrategy MIGStrategy `json:"migStrategy,omitempty"`
	// Spot says the pool has spot/preemptible capacity; for
	// ProviderGeneric, SpotLabels and SpotTaints say how to reach it.
	Spot bool `json:"spot,omitempty"`
	// SpotLabels select the spot nodes of a generic pool.
	SpotLabels map[string]string `json:"spotLabels,omitempty"`
	// SpotTaints are the taints on the spot nodes of a generic pool.
	SpotTaints []corev1.Taint `json:"spotTaints,omitempty"`
}

// Capacity is what one node offers to pods. Quantities are strings as in
// [Profile]; empty means unknown (not checked).
type Capacity struct {
	CPU              string `json:"cpu,omitempty"`
	Memory           string `json:"memory,omitempty"`
	EphemeralStorage string `json:"ephemeralStorage,omitempty"`
	// GPUModel is the catalog model of the node's GPUs.
	GPUModel string `json:"gpuModel,omitempty"`
	// GPUs is the number of physical GPUs per node, 0 to [MaxGPUs]; zero
	// means unknown.
	GPUs int `json:"gpus,omitempty"`
	// MIG is how many slices of each MIG profile one node exposes, when its
	// GPUs are partitioned, for example {"3g.40gb": 16}. When it is set, a
	// profile not listed counts as zero slices; nil means unknown. Under
	// GKE's and AKS's stacks and the single strategy every GPU of a node is
	// cut the same way, so it names one profile: GKE's gpu-partition-size,
	// AKS's --gpu-instance-profile.
	MIG map[string]int `json:"mig,omitempty"`
}
