package resources

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/sluice-ml/sluice/internal/field"
)

// GPUStack is the software that exposes a node pool's GPUs to Kubernetes:
// the driver, the device plugin and what labels the nodes. It decides what
// a pod must ask for and select to land on the pool. [NodePool.Stack]
// returns a pool's stack, defaults included.
type GPUStack string

const (
	// GPUStackGKE is Google Kubernetes Engine's managed GPU stack, the
	// default of GKE GPU node pools: GKE installs the driver and runs its
	// own device plugin. Whole GPUs and MIG partitions alike are
	// nvidia.com/gpu. GPU nodes carry cloud.google.com/gke-accelerator
	// ([LabelGKEAccelerator], for example nvidia-a100-80gb; see
	// [GPUModel.GKEAccelerator]) and, on pools created with a
	// gpu-partition-size, cloud.google.com/gke-gpu-partition-size
	// ([LabelGKEGPUPartitionSize], for example 1g.10gb): every GPU of such a
	// node is cut into partitions of that one size, and each partition
	// counts as one nvidia.com/gpu. GKE taints GPU nodes nvidia.com/gpu
	// (NoSchedule) when the cluster also has non-GPU nodes. See
	// https://cloud.google.com/kubernetes-engine/docs/how-to/gpus and
	// https://cloud.google.com/kubernetes-engine/docs/how-to/gpus-multi.
	//
	// There is no MIG strategy on this stack: a pool or profile that sets
	// one is rejected. A GKE pool whose nodes run the NVIDIA GPU Operator
	// instead (node pools created with gpu-driver-version=disabled and the
	// node label gke-no-default-nvidia-gpu-device-plugin=true, see
	// https://cloud.google.com/kubernetes-engine/docs/how-to/gpu-operator)
	// declares [GPUStackNVIDIA], or just its MIGStrategy.
	GPUStackGKE GPUStack = "gke"
	// GPUStackNVIDIA is NVIDIA's device plugin with GPU Feature Discovery,
	// as the NVIDIA GPU Operator deploys them: on EKS (the EKS-optimized
	// accelerated AMIs carry the driver; the device plugin is installed
	// with Helm or the GPU Operator, or ships in the Bottlerocket AMIs:
	// https://docs.aws.amazon.com/eks/latest/userguide/ml-eks-optimized-ami.html,
	// https://docs.aws.amazon.com/eks/latest/userguide/ml-eks-k8s-device-plugin.html),
	// on premises, and on GKE or AKS when the user installs it. It is the
	// default of EKS and generic pools. Whole GPUs are nvidia.com/gpu; MIG
	// slices follow the pool's [MIGStrategy]: under mixed each size is its
	// own resource, nvidia.com/mig-<profile> ([MIGResourceName]); under
	// single they are nvidia.com/gpu and the slice size is chosen with GPU
	// Feature Discovery's label nvidia.com/gpu.product=<product>-MIG-<profile>
	// ([GPUModel.MIGProduct]); GPU Feature Discovery also labels nodes
	// nvidia.com/mig.strategy. See
	// https://docs.nvidia.com/datacenter/cloud-native/kubernetes/latest/index.html
	// and https://docs.nvidia.com/datacenter/cloud-native/gpu-operator/latest/gpu-operator-mig.html.
	GPUStackNVIDIA GPUStack = "nvidia"
	// GPUStackAKS is Azure Kubernetes Service's GPU node pools, the default
	// of AKS pools: AKS installs the driver and, for a MIG node pool,
	// partitions every GPU with the pool's GPU instance profile
	// (--gpu-instance-profile MIG1g, MIG2g, MIG3g, MIG4g or MIG7g, fixed at
	// creation; see https://learn.microsoft.com/en-us/azure/aks/gpu-multi-instance),
	// and the NVIDIA device plugin (installed by the user, or by AKS on
	// managed GPU node pools, see
	// https://learn.microsoft.com/en-us/azure/aks/aks-managed-gpu-nodes)
	// exposes the slices with the pool's [MIGStrategy]: nvidia.com/mig-<profile>
	// under mixed, nvidia.com/gpu under single. AKS does not install GPU
	// Feature Discovery, so pods select the pool by its labels (its
	// kubernetes.azure.com/agentpool) rather than by nvidia.com/gpu.product:
	// a MIG pool is one slice size anyway. GPU node pools are not tainted by
	// AKS; the documentation suggests a taint such as sku=gpu:NoSchedule
	// (https://learn.microsoft.com/en-us/azure/aks/gpu-cluster), which the
	// pool then declares in Taints.
	GPUStackAKS GPUStack = "aks"
)

var gpuStacks = []GPUStack{GPUStackGKE, GPUStackNVIDIA, GPUStackAKS}

// Node labels of the platforms' GPU stacks.
const (
	// LabelGKEAccelerator is the GKE node label naming the GPU type of a
	// node, for example nvidia-l4 ([GPUModel.GKEAccelerator]).
	LabelGKEAccelerator = "cloud.google.com/gke-accelerator"
	// LabelGKEGPUPartitionSize is the GKE node label naming the MIG
	// partition size of every GPU of a node, for example 1g.10gb.
	LabelGKEGPUPartitionSize = "cloud.google.com/gke-gpu-partition-size"
	// LabelMIGStrategy is the node label GPU Feature Discovery sets to the
	// device plugin's MIG strategy (none, single or mixed).
	LabelMIGStrategy = "nvidia.com/mig.strategy"
)

// Stack returns the pool's GPU stack: GPUStack when set, else the
// provider's default: [GPUStackGKE] on GKE (but [GPUStackNVIDIA] when the
// pool sets MIGStrategy, which only the NVIDIA device plugin has),
// [GPUStackAKS] on AKS, [GPUStackNVIDIA] on EKS and generic pools.
func (n NodePool) Stack() GPUStack {
	if n.GPUStack != "" {
		return n.GPUStack
	}
	switch {
	case n.Provider == ProviderGKE && n.MIGStrategy == "":
		return GPUStackGKE
	case n.Provider == ProviderAKS:
		return GPUStackAKS
	}
	return GPUStackNVIDIA
}

// uniformMIG reports whether every GPU of a node of the pool is cut into
// one MIG profile, so that a node exposes one slice size only.
func (n NodePool) uniformMIG() bool {
	return n.Stack() != GPUStackNVIDIA || n.MIGStrategy == MIGSingle
}

// AKSInstanceProfile returns the MIG profile of m that an AKS node pool
// created with --gpu-instance-profile MIG<n>g cuts its GPUs into: the one
// with n compute slices and the least memory, without media extensions
// (on an A100 40GB, MIG1g is 1g.5gb and MIG3g is 3g.20gb, see
// https://learn.microsoft.com/en-us/azure/aks/gpu-multi-instance). It
// returns false when m has no such profile.
func (m GPUModel) AKSInstanceProfile(computeSlices int) (MIGProfile, bool) {
	var best MIGProfile
	found := false
	for _, p := range m.MIG {
		if p.ComputeSlices != computeSlices || strings.Contains(p.Name, "+") {
			continue
		}
		if !found || p.MemoryGB < best.MemoryGB {
			best, found = p, true
		}
	}
	return best, found
}

// aksProfiles returns the names of the MIG profiles of m that AKS GPU
// instance profiles produce.
func aksProfiles(m GPUModel) []string {
	var names []string
	for _, n := range []int{1, 2, 3, 4, 7} {
		if p, ok := m.AKSInstanceProfile(n); ok {
			names = append(names, p.Name)
		}
	}
	return names
}

// checkGPUStack checks the pool's GPU stack against its provider, MIG
// strategy and nodes.
func checkGPUStack(l *field.List, n NodePool) {
	if n.GPUStack != "" && !slices.Contains(gpuStacks, n.GPUStack) {
		l.Add(field.NotSupported(field.NewPath("gpuStack"), n.GPUStack, gpuStacks))
		return
	}
	stack := n.Stack()
	switch {
	case stack == GPUStackGKE && n.Provider != ProviderGKE:
		l.Add(field.Invalid(field.NewPath("gpuStack"), string(n.GPUStack),
			"GKE's managed GPU stack only runs on GKE (provider %q); use %q for the NVIDIA device plugin", n.Provider, GPUStackNVIDIA))
	case stack == GPUStackAKS && n.Provider != ProviderAKS:
		l.Add(field.Invalid(field.NewPath("gpuStack"), string(n.GPUStack),
			"AKS GPU node pools only exist on AKS (provider %q); use %q for the NVIDIA device plugin", n.Provider, GPUStackNVIDIA))
	case stack == GPUStackGKE && n.MIGStrategy != "":
		l.Add(field.Forbidden(field.NewPath("migStrategy"),
			"GKE's managed GPU stack has no MIG strategy: it exposes MIG partitions as nvidia.com/gpu on nodes labelled %s; remove migStrategy, or set gpuStack: %q if the pool runs the NVIDIA GPU Operator",
			LabelGKEGPUPartitionSize, GPUStackNVIDIA))
	}
	model := lookupModel(n.Node.GPUModel)
	if model == nil {
		return
	}
	node := field.NewPath("node")
	if stack == GPUStackGKE && n.Provider == ProviderGKE && model.GKEAccelerator == "" {
		l.Add(field.Invalid(node.Child("gpuModel"), n.Node.GPUModel,
			"GKE offers no %s GPUs (GKE offers %s); name the pool's GPU model", model.Name, strings.Join(gkeModels(), ", ")))
		return
	}
	if len(n.Node.MIG) > 1 && n.uniformMIG() {
		names := slices.Sorted(maps.Keys(n.Node.MIG))
		l.Add(field.Invalid(node.Child("mig"), strings.Join(names, ", "),
			"%s cuts every GPU of a node into one MIG profile, so a node exposes one slice size; list the pool's profile only", stackName(n)))
	}
	if stack == GPUStackAKS {
		allowed := aksProfiles(*model)
		for _, name := range slices.Sorted(maps.Keys(n.Node.MIG)) {
			if _, ok := model.LookupMIG(name); ok && !slices.Contains(allowed, name) {
				l.Add(field.Invalid(node.Child("mig").Key(name), name,
					"no AKS GPU instance profile cuts %s GPUs into %s (MIG1g…MIG7g give %s)", model.Name, name, strings.Join(allowed, ", ")))
			}
		}
	}
}

// stackName describes the pool's stack in messages.
func stackName(n NodePool) string {
	switch n.Stack() {
	case GPUStackGKE:
		return "GKE's managed GPU stack"
	case GPUStackAKS:
		return "an AKS MIG node pool"
	}
	return fmt.Sprintf("the NVIDIA device plugin's %s strategy", n.MIGStrategy)
}

// gkeModels returns the catalog models GKE offers.
func gkeModels() []string {
	var names []string
	for _, m := range catalog {
		if m.GKEAccelerator != "" {
			names = append(names, m.Name)
		}
	}
	return names
}

// effectiveStack returns the GPU stack a pod asking for GPUs is placed
// under: its pool's, or, with no pool named, the NVIDIA device plugin's
// (GPU Feature Discovery's product label selects the model). It reports a
// pool whose stack is not supported.
func effectiveStack(l *field.List, p Profile, pool *NodePool) GPUStack {
	if pool == nil {
		return GPUStackNVIDIA
	}
	if !slices.Contains(gpuStacks, pool.Stack()) {
		if p.GPUs > 0 || p.MIG != "" {
			l.Add(field.Invalid(field.NewPath("nodePool"), p.NodePool,
				"the pool's gpuStack %q is not supported (use %s); check the pools with ValidatePools", pool.GPUStack, quoteList(stackNames())))
		}
		return GPUStackNVIDIA
	}
	return pool.Stack()
}

func stackNames() []string {
	names := make([]string, len(gpuStacks))
	for i, s := range gpuStacks {
		names[i] = string(s)
	}
	return names
}

// checkStack reports GPUs or MIG slices that the named pool's GPU stack
// cannot give: a model GKE does not offer, a MIG profile GKE or AKS cannot
// cut, whole GPUs from a pool whose GPUs are all partitioned. Problems of
// the pool itself are left to ValidatePools.
func checkStack(l *field.List, p Profile, c checked, pool *NodePool, model *GPUModel, stack GPUStack) {
	if pool == nil || (p.GPUs <= 0 && p.MIG == "") {
		return
	}
	switch stack {
	case GPUStackGKE:
		if pool.Node.GPUModel == "" && model != nil && model.GKEAccelerator == "" {
			l.Add(field.Invalid(field.NewPath("gpuModel"), p.GPUModel,
				"pool %q is a GKE pool and GKE offers no %s GPUs (it offers %s); name another model or pool",
				pool.Name, model.Name, strings.Join(gkeModels(), ", ")))
		}
		if p.MIG != "" && c.migOK && strings.Contains(p.MIG, "+") {
			l.Add(field.Invalid(field.NewPath("mig"), p.MIG,
				"pool %q runs GKE's managed GPU stack, whose partition sizes (the %s node label) have no media-extension profiles; ask for %s",
				pool.Name, LabelGKEGPUPartitionSize, strings.SplitN(p.MIG, "+", 2)[0]))
		}
	case GPUStackAKS:
		if p.MIG != "" && c.migOK && model != nil {
			if allowed := aksProfiles(*model); len(allowed) > 0 && !slices.Contains(allowed, p.MIG) {
				if _, offered := model.LookupMIG(p.MIG); offered {
					l.Add(field.Invalid(field.NewPath("mig"), p.MIG,
						"pool %q is an AKS node pool, and no AKS GPU instance profile cuts %s GPUs into %s (MIG1g…MIG7g give %s)%s",
						pool.Name, model.Name, p.MIG, strings.Join(allowed, ", "), didYouMean(p.MIG, allowed)))
				}
			}
		}
	}
	if p.GPUs > 0 && pool.uniformMIG() && len(pool.Node.MIG) > 0 {
		names := slices.Sorted(maps.Keys(pool.Node.MIG))
		l.Add(field.Invalid(field.NewPath("gpus"), p.GPUs,
			"the GPUs of pool %q are all cut into %s MIG slices (%s), which stand in for whole GPUs; ask for mig: %q, or name a pool of whole GPUs",
			pool.Name, strings.Join(names, ", "), stackName(*pool), names[0]))
	}
}
