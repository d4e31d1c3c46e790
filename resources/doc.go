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
// The NVIDIA device plugin exposes MIG slices in one of two ways, and a
// profile must match what the nodes run ([Profile.MIGStrategy], else the
// pool's, else mixed):
//
//   - mixed: each slice size is its own resource,
//     nvidia.com/mig-3g.40gb ([MIGResourceName]);
//   - single: every GPU of a node is cut the same way and slices are
//     nvidia.com/gpu; the size is chosen with the node label
//     nvidia.com/gpu.product=<product>-MIG-3g.40gb ([GPUModel.MIGProduct]),
//     so the GPU model must be known.
//
// GPUModel picks a catalog model. With no node pool named it also selects
// the model's nodes through the nvidia.com/gpu.product label that NVIDIA GPU
// Feature Discovery sets. Pods that ask for GPUs or slices tolerate the
// nvidia.com/gpu taint ([TaintGPU]) that GPU node pools commonly carry.
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
