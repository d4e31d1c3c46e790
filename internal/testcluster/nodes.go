package testcluster

import (
	"context"
	"fmt"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// kwokNodeAnnotation marks the nodes kwok manages.
const kwokNodeAnnotation = "kwok.x-k8s.io/node"

// Pool is a node pool: Nodes identical nodes named "<Name>-<i>".
type Pool struct {
	Name     string
	Nodes    int
	Labels   map[string]string
	Taints   []corev1.Taint
	Capacity corev1.ResourceList
}

// Labels of GKE node pools, which the pools below mirror.
const (
	LabelNodePool    = "cloud.google.com/gke-nodepool"
	LabelSpot        = "cloud.google.com/gke-spot"
	LabelAccelerator = "cloud.google.com/gke-accelerator"
	// LabelPartitionSize is the MIG partition size of every GPU of a GKE
	// node created with a gpu-partition-size.
	LabelPartitionSize = "cloud.google.com/gke-gpu-partition-size"
	// ResourceGPU is the extended resource of GKE's managed GPU stack for
	// whole GPUs and for MIG partitions alike: on a node whose A100 is cut
	// into 1g.10gb partitions, each partition is one nvidia.com/gpu.
	ResourceGPU = "nvidia.com/gpu"
)

// Pool names of [DefaultPools].
const (
	PoolCPU         = "cpu-pool"
	PoolCPUSpot     = "spot"
	PoolCPUOnDemand = "spot-ondemand"
	PoolScarce      = "scarce-ondemand"
	PoolGPUSpot     = "a100-mig-spot"
	PoolGPUOnDemand = "a100-mig-ondemand"
)

// DefaultPools returns the node pools of a GKE cluster as the quickstart
// and the tests expect it:
//
//   - cpu-pool: 2 on-demand n2-standard-8-like nodes (8 CPU, 32Gi),
//     labelled cloud.google.com/gke-nodepool=cpu-pool;
//   - spot: 1 such node on Spot VMs: label cloud.google.com/gke-spot=true
//     and GKE's taint of the same key (NoSchedule); pool label "spot", the
//     spot pool of the conformance suite;
//   - spot-ondemand: 1 such node on demand with the same pool label, where
//     the on-demand fall-back of a spot CPU step lands;
//   - scarce-ondemand: 1 such node on demand, pool label "scarce": a pool
//     whose spot capacity has run out (it has no spot nodes), for the
//     pending timeout and its on-demand fall-back;
//   - a100-mig-spot: 2 A100 80GB nodes on Spot VMs whose GPU GKE's
//     managed GPU stack cuts into seven 1g.10gb MIG partitions (capacity
//     nvidia.com/gpu: 7, labels cloud.google.com/gke-accelerator=nvidia-a100-80gb
//     and cloud.google.com/gke-gpu-partition-size=1g.10gb; no NVIDIA GPU
//     Feature Discovery labels, which stock GKE does not run), tainted
//     nvidia.com/gpu=present:NoSchedule as GKE taints GPU nodes, and with
//     the spot label and taint; their pool label is a100-mig;
//   - a100-mig-ondemand: 1 such node on demand (pool label a100-mig, no
//     spot label or taint), where an on-demand fall-back lands.
func DefaultPools() []Pool {
	cpu := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("8"),
		corev1.ResourceMemory: resource.MustParse("32Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	gpu := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("12"),
		corev1.ResourceMemory: resource.MustParse("170Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
		ResourceGPU:           resource.MustParse("7"),
	}
	spotTaint := corev1.Taint{Key: LabelSpot, Value: "true", Effect: corev1.TaintEffectNoSchedule}
	gpuTaint := corev1.Taint{Key: "nvidia.com/gpu", Value: "present", Effect: corev1.TaintEffectNoSchedule}
	a100 := map[string]string{
		LabelNodePool:      "a100-mig",
		LabelAccelerator:   "nvidia-a100-80gb",
		LabelPartitionSize: "1g.10gb",
	}
	withSpot := func(m map[string]string) map[string]string {
		m = maps.Clone(m)
		m[LabelSpot] = "true"
		return m
	}
	return []Pool{
		{Name: PoolCPU, Nodes: 2, Labels: map[string]string{LabelNodePool: "cpu-pool"}, Capacity: cpu},
		{Name: PoolCPUSpot, Nodes: 1, Labels: withSpot(map[string]string{LabelNodePool: "spot"}), Taints: []corev1.Taint{spotTaint}, Capacity: cpu},
		{Name: PoolCPUOnDemand, Nodes: 1, Labels: map[string]string{LabelNodePool: "spot"}, Capacity: cpu},
		{Name: PoolScarce, Nodes: 1, Labels: map[string]string{LabelNodePool: "scarce"}, Capacity: cpu},
		{Name: PoolGPUSpot, Nodes: 2, Labels: withSpot(a100), Taints: []corev1.Taint{gpuTaint, spotTaint}, Capacity: gpu},
		{Name: PoolGPUOnDemand, Nodes: 1, Labels: maps.Clone(a100), Taints: []corev1.Taint{gpuTaint}, Capacity: gpu},
	}
}

// PoolOf returns the pool a node of the cluster belongs to, by name.
func (c *Cluster) PoolOf(node string) string {
	for _, p := range c.Pools {
		for i := range p.Nodes {
			if node == fmt.Sprintf("%s-%d", p.Name, i) {
				return p.Name
			}
		}
	}
	return ""
}

func (c *Cluster) createNodes(ctx context.Context) error {
	var names []string
	for _, p := range c.Pools {
		for i := range p.Nodes {
			name := fmt.Sprintf("%s-%d", p.Name, i)
			labels := maps.Clone(p.Labels)
			if labels == nil {
				labels = map[string]string{}
			}
			labels["kubernetes.io/hostname"] = name
			labels["kubernetes.io/os"] = "linux"
			labels["kubernetes.io/arch"] = "amd64"
			labels["type"] = "kwok"
			labels["sluice.test/pool"] = p.Name
			n := &corev1.Node{
				ObjectMeta: metav1.ObjectMeta{
					Name:        name,
					Labels:      labels,
					Annotations: map[string]string{kwokNodeAnnotation: "fake", "node.alpha.kubernetes.io/ttl": "0"},
				},
				Spec: corev1.NodeSpec{Taints: append([]corev1.Taint(nil), p.Taints...)},
				Status: corev1.NodeStatus{
					Capacity:    p.Capacity.DeepCopy(),
					Allocatable: p.Capacity.DeepCopy(),
				},
			}
			if _, err := c.Client.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("creating node %s: %w", name, err)
			}
			names = append(names, name)
		}
	}
	// kwok makes them Ready; kube-controller-manager then lifts the
	// not-ready taint the node lifecycle puts on new nodes.
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		for _, name := range names {
			n, err := c.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			if !nodeReady(n) {
				return false, nil
			}
			for _, t := range n.Spec.Taints {
				if t.Key == corev1.TaintNodeNotReady {
					return false, nil
				}
			}
		}
		return true, nil
	})
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
