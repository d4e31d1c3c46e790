package resources_test

import (
	"fmt"
	"log"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/resources"
)

// A MIG slice on the spot capacity of a GKE node pool whose A100 is cut
// into 3g.40gb partitions by GKE's managed GPU stack: the slice is an
// nvidia.com/gpu on a node labelled with that partition size.
func ExampleResolve() {
	pools := []resources.NodePool{{
		Name:     "a100",
		Provider: resources.ProviderGKE,
		Spot:     true,
		Labels:   map[string]string{"cloud.google.com/gke-nodepool": "a100"},
		Node: resources.Capacity{
			CPU: "12", Memory: "85Gi", GPUModel: "A100-80GB", GPUs: 1,
			MIG: map[string]int{"3g.40gb": 2},
		},
	}}
	profile := resources.Profile{
		CPU:         "4",
		Memory:      "32Gi",
		MIG:         "3g.40gb",
		NodePool:    "a100",
		Preemptible: true,
	}

	r, err := resources.Resolve(profile, pools)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("gpu model:", r.GPUModel)
	fmt.Println("requests:", resourceList(r.Requests))
	fmt.Println("limits:  ", resourceList(r.Limits))
	printPlacement(r.Placement)
	fmt.Println("on-demand fall-back:")
	printPlacement(*r.OnDemand)
	// Output:
	// gpu model: A100-80GB
	// requests: cpu=4 memory=32Gi nvidia.com/gpu=1
	// limits:   memory=32Gi nvidia.com/gpu=1
	//   select cloud.google.com/gke-accelerator=nvidia-a100-80gb
	//   select cloud.google.com/gke-gpu-partition-size=3g.40gb
	//   select cloud.google.com/gke-nodepool=a100
	//   select cloud.google.com/gke-spot=true
	//   tolerate cloud.google.com/gke-spot Equal true NoSchedule
	//   tolerate nvidia.com/gpu Exists  NoSchedule
	// on-demand fall-back:
	//   select cloud.google.com/gke-accelerator=nvidia-a100-80gb
	//   select cloud.google.com/gke-gpu-partition-size=3g.40gb
	//   select cloud.google.com/gke-nodepool=a100
	//   tolerate nvidia.com/gpu Exists  NoSchedule
	//   require cloud.google.com/gke-spot DoesNotExist
	//   require cloud.google.com/gke-preemptible DoesNotExist
}

func resourceList(l corev1.ResourceList) string {
	var s string
	for _, name := range slices.Sorted(maps.Keys(l)) {
		q := l[name]
		if s != "" {
			s += " "
		}
		s += fmt.Sprintf("%s=%s", name, q.String())
	}
	return s
}

func printPlacement(p resources.Placement) {
	for _, k := range slices.Sorted(maps.Keys(p.NodeSelector)) {
		fmt.Printf("  select %s=%s\n", k, p.NodeSelector[k])
	}
	for _, t := range p.Tolerations { // already sorted
		fmt.Printf("  tolerate %s %s %s %s\n", t.Key, t.Operator, t.Value, t.Effect)
	}
	if p.Affinity != nil && p.Affinity.NodeAffinity != nil {
		for _, term := range p.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
			for _, e := range term.MatchExpressions {
				fmt.Printf("  require %s %s\n", e.Key, e.Operator)
			}
		}
	}
}

// Validate reports every problem at once, each with a field path and type;
// a misspelt MIG profile comes with a suggestion.
func ExampleProfile_Validate() {
	p := resources.Profile{
		Memory:   "16 GiB",
		GPUModel: "A100-80GB",
		MIG:      "3g.20gb", // an A100-40GB profile
	}
	errs := pipeline.FieldErrors(p.Validate())
	for _, fe := range errs {
		fmt.Println(fe.Field, fe.Type)
	}
	fmt.Println(errs[1])
	// Output:
	// memory Invalid
	// mig Invalid
	// mig: Invalid "3g.20gb": not a MIG profile of A100-80GB, which offers 1g.10gb, 1g.10gb+me, 1g.20gb, 2g.20gb, 3g.40gb, 4g.40gb, 7g.80gb; did you mean "3g.40gb"?
}

// Pipeline defaults merged with a task's own profile.
func ExampleMerge() {
	defaults := resources.Profile{CPU: "2", Memory: "8Gi", NodePool: "cpu"}
	train := resources.Profile{Memory: "64Gi", GPUModel: "H100-80GB", GPUs: 4, NodePool: "h100"}

	m := resources.Merge(defaults, train)
	fmt.Println(m.CPU, m.Memory, m.GPUs, m.GPUModel, m.NodePool)
	// Output:
	// 2 64Gi 4 H100-80GB h100
}

func ExampleLookupModel() {
	m, ok := resources.LookupModel("h100-94gb")
	if !ok {
		log.Fatal("not in the catalog")
	}
	fmt.Println(m.Name, m.Product, m.MemoryGiB)
	for _, p := range m.MIG {
		fmt.Printf("%s: %d per GPU, %s\n", p.Name, p.MaxInstances, resources.MIGResourceName(p.Name))
	}
	fmt.Println(m.MIGProduct("3g.47gb"))
	// Output:
	// H100-94GB NVIDIA-H100-NVL 94
	// 1g.12gb: 7 per GPU, nvidia.com/mig-1g.12gb
	// 1g.12gb+me: 1 per GPU, nvidia.com/mig-1g.12gb.me
	// 1g.24gb: 4 per GPU, nvidia.com/mig-1g.24gb
	// 2g.24gb: 3 per GPU, nvidia.com/mig-2g.24gb
	// 3g.47gb: 2 per GPU, nvidia.com/mig-3g.47gb
	// 4g.47gb: 1 per GPU, nvidia.com/mig-4g.47gb
	// 7g.94gb: 1 per GPU, nvidia.com/mig-7g.94gb
	// NVIDIA-H100-NVL-MIG-3g.47gb
}
