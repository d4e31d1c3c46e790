// Package resources describes what a task needs from a Kubernetes node —
// compute, GPUs and MIG slices, node pool and spot placement — as plain
// data, checks it, and turns it into pod requirements.
//
// The package depends on no other Sluice package: backends and the pipeline
// layer use it, and a program can use it on its own to check a profile.
// Its functions are pure and safe for concurrent use.
//
// # Profiles
//
// A [Profile] is a struct literal:
//
//	resources.Profile{
//		CPU:          "8",
//		Memory:       "64Gi",
//		SharedMemory: "16Gi", // /dev/shm for data loaders and NCCL
//		GPUModel:     "A100-80GB",
//		GPUs:         2,
//	}
//
// Quantities are strings in Kubernetes notation ("500m", "16Gi"). CPU,
// Memory and EphemeralStorage become container requests; memory also gets
// an equal limit, so that a task that outgrows it is killed for it rather
// than starving its neighbours. SharedMemory is the size of a
// memory-backed /dev/shm and counts against Memory. The zero Profile asks
// for nothing.
//
// Every number has a range that every backend represents, and Validate
// reports a value outside it at the field: quantities 1n to 8Ei (CPU 1n
// to 8Pi cores, so that millicores fit in 64 bits), GPUs 0 to [MaxGPUs],
// MIGCount up to what 8 GPUs of the model hold.
//
// # GPUs and MIG
//
// GPUs asks for whole GPUs, requested as nvidia.com/gpu. MIG asks for
// Multi-Instance GPU slices instead: MIG "3g.40gb" with MIGCount 2 is two
// slices, each with 3 of the GPU's 7 compute slices and 40 GB of memory.
// The two cannot be combined. [Models] is the catalog of GPU models and the
// MIG profiles each one really offers, after NVIDIA's MIG user guide; a
// profile naming a MIG profile its model does not have is an error that
// suggests the closest one.
//
// # GPU stacks: what each platform schedules on
//
// What a pod must ask for, and which node labels it must select, depends on
// the software that exposes a pool's GPUs to Kubernetes: its [GPUStack]
// ([NodePool.GPUStack], defaulting by provider; see [NodePool.Stack]).
// Resolve emits, per platform and stack:
//
//   - GKE, GKE's managed stack ([GPUStackGKE], the default on GKE): whole
//     GPUs and MIG partitions alike are nvidia.com/gpu. A pod selects the
//     pool's labels, cloud.google.com/gke-accelerator=<type>
//     ([GPUModel.GKEAccelerator]) when the model is known, and, for MIG,
//     cloud.google.com/gke-gpu-partition-size=<profile>: a GKE MIG pool
//     cuts every GPU into one partition size, and each partition is one
//     nvidia.com/gpu. GKE taints GPU nodes nvidia.com/gpu=present
//     (NoSchedule). There is no MIG strategy. See
//     https://cloud.google.com/kubernetes-engine/docs/how-to/gpus and
//     https://cloud.google.com/kubernetes-engine/docs/how-to/gpus-multi.
//   - GKE with the NVIDIA GPU Operator (pools created with
//     gpu-driver-version=disabled and labelled
//     gke-no-default-nvidia-gpu-device-plugin=true, see
//     https://cloud.google.com/kubernetes-engine/docs/how-to/gpu-operator):
//     declare gpuStack: nvidia, or just the pool's migStrategy, and the
//     pool places as the NVIDIA device plugin below.
//   - EKS, on premises, and any cluster running the NVIDIA device plugin
//     with GPU Feature Discovery, as the GPU Operator deploys them
//     ([GPUStackNVIDIA], the default on EKS and generic pools; the
//     EKS-optimized accelerated AMIs carry the driver and the device plugin
//     is installed with Helm or the GPU Operator, or ships with
//     Bottlerocket: https://docs.aws.amazon.com/eks/latest/userguide/ml-eks-optimized-ami.html,
//     https://docs.aws.amazon.com/eks/latest/userguide/ml-eks-k8s-device-plugin.html).
//     Whole GPUs are nvidia.com/gpu. MIG slices follow the strategy the
//     plugin runs with ([Profile.MIGStrategy], else the pool's, else mixed;
//     https://docs.nvidia.com/datacenter/cloud-native/kubernetes/latest/index.html,
//     https://docs.nvidia.com/datacenter/cloud-native/gpu-operator/latest/gpu-operator-mig.html):
//     mixed makes each slice size its own resource,
//     nvidia.com/mig-3g.40gb ([MIGResourceName]); single cuts every GPU of
//     a node the same way and makes slices nvidia.com/gpu, the size being
//     chosen with GPU Feature Discovery's label
//     nvidia.com/gpu.product=<product>-MIG-3g.40gb ([GPUModel.MIGProduct]),
//     so the GPU model must be known.
//   - AKS GPU node pools ([GPUStackAKS], the default on AKS): AKS installs
//     the driver and cuts every GPU of a MIG node pool with the pool's GPU
//     instance profile (--gpu-instance-profile MIG1g…MIG7g, fixed when the
//     pool is created: [GPUModel.AKSInstanceProfile]); the NVIDIA device
//     plugin exposes the slices with the pool's strategy, as
//     nvidia.com/mig-<profile> (mixed) or nvidia.com/gpu (single). AKS runs
//     no GPU Feature Discovery, so pods select the pool by its labels only.
//     AKS does not taint GPU nodes; declare the taint the pool was created
//     with (the documentation suggests sku=gpu:NoSchedule). See
//     https://learn.microsoft.com/en-us/azure/aks/gpu-cluster,
//     https://learn.microsoft.com/en-us/azure/aks/gpu-multi-instance and
//     https://learn.microsoft.com/en-us/azure/aks/aks-managed-gpu-nodes.
//
// With no pool named the stack is unknown and the NVIDIA device plugin's
// names are used; a known GPU model then selects its nodes through the
// nvidia.com/gpu.product label that GPU Feature Discovery sets. Pods that
// ask for GPUs or slices tolerate the nvidia.com/gpu taint ([TaintGPU])
// on every stack.
//
// A profile that the named pool's stack cannot give is an error of
// [Resolve] naming the pool and why: a MIG profile that is not the pool's
// partition size or that AKS's instance profiles cannot cut, a GPU model
// the pool lacks or GKE does not offer, more GPUs or slices than a node
// has, whole GPUs from a pool whose GPUs are all partitioned, or a MIG
// strategy on GKE's managed stack. [NodePool.Validate] reports pools that
// contradict their stack: GKE's stack off GKE or with a MIG strategy, a
// GPU model GKE does not offer, several slice sizes on a node whose GPUs
// are all cut one way.
//
// # Node pools and spot capacity
//
// A [NodePool] is a named group of identical nodes, declared once per
// pipeline: the labels that select it, its taints, what one node offers
// ([Capacity]) and its cloud [Provider]. A profile that names a pool is
// placed on it (its labels in the pod's node selector, its taints
// tolerated), so a cluster autoscaler grows exactly that pool, and must fit
// one of its nodes.
//
// Preemptible places a task on the spot capacity of its pool, which must
// be declared with Spot, following the provider's convention: the cloud.google.com/gke-spot label on GKE,
// eks.amazonaws.com/capacityType=SPOT on EKS, the
// kubernetes.azure.com/scalesetpriority=spot label and taint on AKS, and
// the pool's own SpotLabels and SpotTaints elsewhere. A pool with Spot
// keeps tasks that are not preemptible off its spot nodes. [Resolved]
// carries, next to the spot placement, the on-demand placement a retry can
// fall back to on its last attempt.
//
// # Inheritance
//
// A pipeline's default profile is combined with each task's profile by
// [Merge]: quantities one by one, the accelerator fields (GPUModel, GPUs,
// MIG, MIGCount, MIGStrategy) as one group, the placement fields (NodePool,
// Preemptible) as one group, node selectors and tolerations as unions, and
// affinity as a whole. A value the task sets wins; a zero value never
// overrides. So with defaults {CPU: "2", Memory: "8Gi", NodePool: "cpu",
// Preemptible: true} a task {GPUs: 1, NodePool: "gpu"} runs with 2 CPUs,
// 8Gi and one GPU on the on-demand capacity of the gpu pool: naming its own
// pool, it inherits neither the pool nor the spot placement meant for it.
// A task that only sets Preemptible must name its pool too. See [Merge] for
// the exact rule.
//
// # Validation
//
// [Profile.Validate], [NodePool.Validate] and [ValidatePools] report every
// problem at once, each as a *field.Error with a type (Required, Invalid,
// NotSupported, …) and a path relative to the value checked, using the
// JSON names: "mig", "nodeSelector[team]", "tolerations[0].effect",
// "[1].taints[0].key". The pipeline layer re-roots them
// ("pipeline.tasks[train].resources.mig"). [Resolve] reports what Validate
// does plus what needs the pools: an undeclared pool, a request larger than
// the pool's nodes, a MIG profile the pool's GPUs lack, spot placement on a
// pool without spot capacity. Messages say what is wrong and how to fix it;
// tests should match the Type and Field of errors, not their text.
package resources
