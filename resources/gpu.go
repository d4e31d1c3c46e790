package resources

import (
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// GPUModel is one GPU model of the catalog returned by [Models].
type GPUModel struct {
	// Name is how a [Profile] or [Capacity] names the model, for example
	// "A100-80GB". [LookupModel] matches it case-insensitively.
	Name string
	// Product is the value NVIDIA GPU Feature Discovery puts in the node
	// label nvidia.com/gpu.product ([LabelGPUProduct]) for this model, for
	// example "NVIDIA-A100-SXM4-40GB". It is the GPU's name as nvidia-smi
	// reports it with spaces turned into '-'. Where a model comes in several
	// form factors (SXM, PCIe) this is the SXM variant; select another one
	// with [Profile.NodeSelector] or a [NodePool].
	Product string
	// MemoryGiB is the GPU's memory.
	MemoryGiB int
	// GKEAccelerator is the GPU type as GKE names it in the node label
	// cloud.google.com/gke-accelerator ([LabelGKEAccelerator]), for example
	// "nvidia-a100-80gb" (see
	// https://cloud.google.com/kubernetes-engine/docs/how-to/gpus); empty
	// for models GKE does not offer. For the H100 80GB it is the A3 High
	// type, nvidia-h100-80gb; an A3 Mega pool (nvidia-h100-mega-80gb) sets
	// the label in its Labels, which win.
	GKEAccelerator string
	// MIG lists the Multi-Instance GPU profiles the model offers, smallest
	// first; it is empty for models without MIG.
	MIG []MIGProfile
}

// MIGProfile is one Multi-Instance GPU profile of a [GPUModel]: a GPU
// instance with a fixed share of the GPU's compute and memory.
type MIGProfile struct {
	// Name is NVIDIA's profile name, for example "3g.20gb" (3 compute
	// slices, 20 GB). A "+me" suffix marks the variant that also owns the
	// GPU's media engines (video decoders, JPEG, OFA).
	Name string
	// ComputeSlices is the number of compute slices of the GPU instance
	// (the "3g" of "3g.20gb"); a whole A100 or H100 has 7, an A30 has 4.
	ComputeSlices int
	// MemoryGB is the instance's memory as the profile name states it.
	MemoryGB int
	// MaxInstances is how many instances of this profile one GPU holds when
	// it is cut into this profile only.
	MaxInstances int
}

// GPUResource is the extended resource the NVIDIA device plugin advertises
// for whole GPUs, and for MIG slices under the [MIGSingle] strategy.
const GPUResource corev1.ResourceName = "nvidia.com/gpu"

// Well-known node labels and taints for GPUs.
const (
	// LabelGPUProduct is the node label NVIDIA GPU Feature Discovery sets to
	// the GPU product ([GPUModel.Product]); under the [MIGSingle] strategy
	// it is <Product>-MIG-<profile> instead (see [GPUModel.MIGProduct]).
	LabelGPUProduct = "nvidia.com/gpu.product"
	// TaintGPU is the key of the taint GPU nodes commonly carry
	// (nvidia.com/gpu, effect NoSchedule; GKE and AKS GPU pools add it), so
	// that only pods asking for GPUs land there. [Resolve] tolerates it,
	// with operator Exists, for every pod that asks for GPUs or MIG slices.
	TaintGPU = "nvidia.com/gpu"
)

// MIGResourceName returns the extended resource the NVIDIA device plugin
// advertises under the [MIGMixed] strategy for a MIG profile, for example
// "nvidia.com/mig-3g.20gb". The plugin spells a profile's '+' as '.', so
// "1g.10gb+me" becomes "nvidia.com/mig-1g.10gb.me".
func MIGResourceName(profile string) corev1.ResourceName {
	return corev1.ResourceName("nvidia.com/mig-" + pluginProfileName(profile))
}

// MIGProduct returns the value of [LabelGPUProduct] on nodes whose GPUs of
// model m are all cut into the given MIG profile and whose device plugin
// uses the [MIGSingle] strategy: <Product>-MIG-<profile>, for example
// "NVIDIA-A100-SXM4-40GB-MIG-3g.20gb" (a '+' in the profile becomes '.').
func (m GPUModel) MIGProduct(profile string) string {
	return m.Product + "-MIG-" + pluginProfileName(profile)
}

// LookupMIG returns the MIG profile of m with exactly the given name.
func (m GPUModel) LookupMIG(profile string) (MIGProfile, bool) {
	for _, p := range m.MIG {
		if p.Name == profile {
			return p, true
		}
	}
	return MIGProfile{}, false
}

// migNames returns the names of m's MIG profiles in catalog order.
func (m GPUModel) migNames() []string {
	names := make([]string, len(m.MIG))
	for i, p := range m.MIG {
		names[i] = p.Name
	}
	return names
}

// pluginProfileName is how the NVIDIA device plugin spells a MIG profile in
// resource names and product labels: '+' is not allowed there, so it
// becomes '.'.
func pluginProfileName(profile string) string {
	return strings.ReplaceAll(profile, "+", ".")
}

// Models returns the GPU catalog in a stable order: whole-GPU-only models
// first, then MIG-capable ones, older generations first. The result is a
// copy; changing it does not change the catalog.
func Models() []GPUModel {
	out := make([]GPUModel, len(catalog))
	for i, m := range catalog {
		out[i] = m.clone()
	}
	return out
}

// LookupModel returns the catalog model with the given name, matched
// case-insensitively ("a100-80gb" finds "A100-80GB"). The result is a copy.
func LookupModel(name string) (GPUModel, bool) {
	if m := lookupModel(name); m != nil {
		return m.clone(), true
	}
	return GPUModel{}, false
}

func lookupModel(name string) *GPUModel {
	for i := range catalog {
		if strings.EqualFold(catalog[i].Name, name) {
			return &catalog[i]
		}
	}
	return nil
}

func (m GPUModel) clone() GPUModel {
	m.MIG = slices.Clone(m.MIG)
	return m
}

// modelNames returns the catalog's model names in catalog order.
func modelNames() []string {
	names := make([]string, len(catalog))
	for i, m := range catalog {
		names[i] = m.Name
	}
	return names
}

// migModels returns the names of the models offering MIG.
func migModels() []string {
	var names []string
	for _, m := range catalog {
		if len(m.MIG) > 0 {
			names = append(names, m.Name)
		}
	}
	return names
}

// allMIGNames returns every MIG profile name of the catalog, once each, in
// catalog order.
func allMIGNames() []string {
	var names []string
	for _, m := range catalog {
		for _, p := range m.MIG {
			if !slices.Contains(names, p.Name) {
				names = append(names, p.Name)
			}
		}
	}
	return names
}

// maxMIGInstances returns the largest MaxInstances of the profile across
// the catalog, and whether any model offers it.
func maxMIGInstances(profile string) (int, bool) {
	best, found := 0, false
	for _, m := range catalog {
		if p, ok := m.LookupMIG(profile); ok {
			found = true
			best = max(best, p.MaxInstances)
		}
	}
	return best, found
}

// maxGPUsPerNode bounds MIGCount: a node rarely holds more than 8 GPUs
// (DGX/HGX systems, p4d/p5, a3), so more slices than 8 GPUs can hold cannot
// be scheduled as one pod.
const maxGPUsPerNode = 8

// mig builds a MIGProfile.
// mig80GB is the MIG table of the 80 GB A100 and H100: the same seven
// profiles, sizes and instance counts.
var mig80GB = []MIGProfile{
	mig("1g.10gb", 1, 10, 7),
	mig("1g.10gb+me", 1, 10, 1),
	mig("1g.20gb", 1, 20, 4),
	mig("2g.20gb", 2, 20, 3),
	mig("3g.40gb", 3, 40, 2),
	mig("4g.40gb", 4, 40, 1),
	mig("7g.80gb", 7, 80, 1),
}

func mig(name string, computeSlices, memoryGB, maxInstances int) MIGProfile {
	return MIGProfile{Name: name, ComputeSlices: computeSlices, MemoryGB: memoryGB, MaxInstances: maxInstances}
}

// catalog is the GPU catalog. The MIG profiles and their instance counts are
// those of NVIDIA's Multi-Instance GPU User Guide ("Supported MIG Profiles")
// and of the default configuration of NVIDIA's mig-parted / GPU operator
// (deployments/systemd/config-default.yaml): on the 7-slice GPUs (A100,
// H100, H200) 1g×7, 1g+me×1, 1g with double memory×4, 2g×3, 3g×2, 4g×1,
// 7g×1; on the A30 1g×4, 1g+me×1, 2g×2, 2g+me×1, 4g×1.
var catalog = []GPUModel{
	// Whole GPUs only: these models have no MIG.
	{Name: "T4", Product: "Tesla-T4", MemoryGiB: 16, GKEAccelerator: "nvidia-tesla-t4"},
	{Name: "V100-16GB", Product: "Tesla-V100-SXM2-16GB", MemoryGiB: 16, GKEAccelerator: "nvidia-tesla-v100"},
	{Name: "A10G", Product: "NVIDIA-A10G", MemoryGiB: 24},
	{Name: "L4", Product: "NVIDIA-L4", MemoryGiB: 24, GKEAccelerator: "nvidia-l4"},
	{Name: "L40S", Product: "NVIDIA-L40S", MemoryGiB: 48},

	// MIG-capable.
	{Name: "A30-24GB", Product: "NVIDIA-A30", MemoryGiB: 24, MIG: []MIGProfile{
		mig("1g.6gb", 1, 6, 4),
		mig("1g.6gb+me", 1, 6, 1),
		mig("2g.12gb", 2, 12, 2),
		mig("2g.12gb+me", 2, 12, 1),
		mig("4g.24gb", 4, 24, 1),
	}},
	{Name: "A100-40GB", Product: "NVIDIA-A100-SXM4-40GB", MemoryGiB: 40, GKEAccelerator: "nvidia-tesla-a100", MIG: []MIGProfile{
		mig("1g.5gb", 1, 5, 7),
		mig("1g.5gb+me", 1, 5, 1),
		mig("1g.10gb", 1, 10, 4),
		mig("2g.10gb", 2, 10, 3),
		mig("3g.20gb", 3, 20, 2),
		mig("4g.20gb", 4, 20, 1),
		mig("7g.40gb", 7, 40, 1),
	}},
	{Name: "A100-80GB", Product: "NVIDIA-A100-SXM4-80GB", MemoryGiB: 80, GKEAccelerator: "nvidia-a100-80gb", MIG: mig80GB},
	{Name: "H100-80GB", Product: "NVIDIA-H100-80GB-HBM3", MemoryGiB: 80, GKEAccelerator: "nvidia-h100-80gb", MIG: mig80GB},
	// H100 NVL.
	{Name: "H100-94GB", Product: "NVIDIA-H100-NVL", MemoryGiB: 94, MIG: []MIGProfile{
		mig("1g.12gb", 1, 12, 7),
		mig("1g.12gb+me", 1, 12, 1),
		mig("1g.24gb", 1, 24, 4),
		mig("2g.24gb", 2, 24, 3),
		mig("3g.47gb", 3, 47, 2),
		mig("4g.47gb", 4, 47, 1),
		mig("7g.94gb", 7, 94, 1),
	}},
	{Name: "H200-141GB", Product: "NVIDIA-H200", MemoryGiB: 141, GKEAccelerator: "nvidia-h200-141gb", MIG: []MIGProfile{
		mig("1g.18gb", 1, 18, 7),
		mig("1g.18gb+me", 1, 18, 1),
		mig("1g.35gb", 1, 35, 4),
		mig("2g.35gb", 2, 35, 3),
		mig("3g.71gb", 3, 71, 2),
		mig("4g.71gb", 4, 71, 1),
		mig("7g.141gb", 7, 141, 1),
	}},
}
