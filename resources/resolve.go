package resources

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/sluice-ml/sluice/internal/field"
)

// Node labels and taints of spot/preemptible capacity, by provider.
const (
	// LabelGKESpot is set to "true" on GKE Spot VMs.
	LabelGKESpot = "cloud.google.com/gke-spot"
	// LabelGKEPreemptible is set to "true" on legacy GKE preemptible VMs.
	LabelGKEPreemptible = "cloud.google.com/gke-preemptible"
	// LabelEKSCapacityType is "SPOT" or "ON_DEMAND" on nodes of EKS managed
	// node groups.
	LabelEKSCapacityType = "eks.amazonaws.com/capacityType"
	// LabelAKSScaleSetPriority is "spot" on AKS spot nodes, which also carry
	// a taint of the same key, value "spot", effect NoSchedule.
	LabelAKSScaleSetPriority = "kubernetes.azure.com/scalesetpriority"
)

// Placement is where a pod may run.
type Placement struct {
	// NodeSelector is the pod's nodeSelector; nil when empty.
	NodeSelector map[string]string
	// Tolerations are the pod's tolerations, sorted by key, operator,
	// value, effect and seconds, without any that another one implies; nil
	// when empty.
	Tolerations []corev1.Toleration
	// Affinity is the pod's affinity; nil when none is needed.
	Affinity *corev1.Affinity
}

// Resolved is a profile turned into pod-level requirements. All of it is
// freshly allocated: it shares nothing with the profile or the pools.
type Resolved struct {
	// Requests are the container's resource requests; nil when empty.
	Requests corev1.ResourceList
	// Limits are the container's limits: GPUs and MIG slices (Kubernetes
	// requires limits equal to requests for extended resources) and a memory
	// limit equal to the memory request. CPU and ephemeral storage get no
	// limit. Nil when empty.
	Limits corev1.ResourceList
	// SharedMemory is the size of the memory-backed /dev/shm volume to
	// mount; nil when not set.
	SharedMemory *resource.Quantity
	// GPUModel is the catalog name, canonically spelt, of the model of the
	// GPUs or MIG slices the pod gets: the profile's GPUModel, else the
	// pool's Node.GPUModel. It is empty when the profile asks for no GPU or
	// the model is unknown.
	GPUModel string
	// Placement is where the pod may run.
	Placement Placement
	// OnDemand is the placement with spot/preemptible removed, for the
	// fall-back to on-demand nodes on the last attempt; nil unless the
	// profile is Preemptible. It is the placement the same profile gets
	// without Preemptible, so it keeps off the pool's spot nodes; it only
	// finds nodes if the pool also has on-demand capacity.
	OnDemand *Placement
}

// Resolve checks p against the pipeline's node pools and turns it into what
// a Kubernetes pod needs. It reports everything [Profile.Validate] reports
// and, with paths relative to the profile:
//
//   - nodePool (NotFound): the named pool is not declared;
//   - nodePool (Required): Preemptible without a pool, since spot placement
//     follows the pool's provider convention;
//   - preemptible (Invalid): the pool has no spot capacity (Spot is false);
//   - gpuModel (Invalid): it differs from the pool's Node.GPUModel;
//   - gpuModel (Required): the single MIG strategy needs a GPU model, from
//     the profile or the pool, to build the product label;
//   - mig (Invalid): the pool's GPU model does not offer the MIG profile;
//   - migStrategy (Invalid): it differs from the pool's strategy, or the
//     pool runs GKE's managed GPU stack, which has none;
//   - nodePool (Invalid): the pool's provider, GPU stack or MIG strategy is
//     not supported, so the profile cannot be placed on it;
//   - gpuModel (Invalid): the pool is on GKE's managed stack and GKE does
//     not offer the model;
//   - mig (Invalid): the pool's stack cannot cut its GPUs into the profile
//     (no media-extension partitions on GKE, only the profiles of AKS's
//     GPU instance profiles on AKS);
//   - gpus (Invalid): the pool's GPUs are all cut into MIG slices (GKE's and
//     AKS's stacks and the single strategy, with node.mig known), so whole
//     GPUs cannot be had there;
//   - cpu, memory, ephemeralStorage, gpus, mig (Invalid): the request does
//     not fit one node of the named pool, where the pool's Node says what a
//     node offers (unknown capacities are not checked). When no pool is
//     named but pools are declared, each request must fit a node of some
//     pool whose capacity for it is known (the error names the largest),
//     and some pool must fit all requests together (else nodePool, Invalid).
//
// Resolve does not report problems of the pools themselves; check them with
// [ValidatePools]. It never panics, whatever the input. On error the
// Resolved is the zero value. The output is deterministic: maps aside,
// every list is in a fixed order.
//
// Placement follows these rules. The pool's Labels go into the node
// selector and its Taints are tolerated (operator Equal, or Exists for a
// taint without value). Spot capacity, by provider:
//
//   - gke: preemptible selects cloud.google.com/gke-spot=true and tolerates
//     the taint of that key (value "true", NoSchedule); on a pool with Spot,
//     a non-preemptible pod gets a required node affinity that the
//     gke-spot and gke-preemptible labels do not exist.
//   - eks: eks.amazonaws.com/capacityType=SPOT when preemptible, ON_DEMAND
//     when not and the pool has Spot.
//   - aks: kubernetes.azure.com/scalesetpriority=spot, and the toleration
//     of that taint (value "spot", NoSchedule); spot nodes are tainted, so
//     other pods keep off them anyway.
//   - generic: SpotLabels are selected and SpotTaints tolerated; on a pool
//     with Spot but no SpotTaints, a non-preemptible pod gets a required
//     node affinity that keeps it off nodes carrying all SpotLabels.
//
// GPUs are requested (and limited) as nvidia.com/gpu. MIG slices depend on
// the pool's GPU stack (see the package documentation): on GKE's managed
// stack they are nvidia.com/gpu with the node selector
// cloud.google.com/gke-gpu-partition-size=<profile>, and GPU pods of a known
// model also select cloud.google.com/gke-accelerator=<type> unless the
// pool's labels set it; under the NVIDIA device plugin they are
// nvidia.com/mig-<profile> under the mixed strategy, and nvidia.com/gpu plus
// the node selector nvidia.com/gpu.product=<Product>-MIG-<profile> under the
// single strategy; on AKS MIG pools they are named as under the device
// plugin, without the product label (the pool is one slice size). With a
// known GPU model and no pool, the pod selects
// nvidia.com/gpu.product=<Product>. A pod asking for GPUs or MIG slices
// also tolerates the common GPU node taint nvidia.com/gpu (operator Exists,
// NoSchedule; see [TaintGPU]). Last, the profile's own NodeSelector (which
// wins over any key set above), Tolerations and Affinity are merged in;
// required node affinity terms are combined with those placement needs so
// that both hold. Tolerations implied by another one are dropped: the
// Exists toleration of nvidia.com/gpu also covers a pool taint
// nvidia.com/gpu=present.
func Resolve(p Profile, pools []NodePool) (Resolved, error) {
	var l field.List
	c := p.check(&l)
	pool := namedPool(&l, p.NodePool, pools)
	model := effectiveModel(&l, p, &c, pool)
	stack := effectiveStack(&l, p, pool)
	strategy := effectiveStrategy(&l, p, c, pool, model, stack)
	checkStack(&l, p, c, pool, model, stack)
	checkPreemptible(&l, p, pool)
	ds := demands(p, c)
	switch {
	case pool != nil:
		fitPool(&l, *pool, ds)
	case p.NodePool == "" && len(pools) > 0:
		fitAny(&l, pools, ds)
	}
	if l.Len() > 0 {
		return Resolved{}, l.Err()
	}
	return resolved(p, c, pool, model, strategy, stack), nil
}

// namedPool returns the pool p names, or nil when it names none or one
// that is not declared (reported as nodePool, NotFound).
func namedPool(l *field.List, name string, pools []NodePool) *NodePool {
	if name == "" {
		return nil
	}
	pool := findPool(pools, name)
	if pool == nil {
		l.Add(poolNotFound(name, pools))
	}
	return pool
}

// effectiveModel returns the GPU model the pod gets: the profile's, else
// the pool's Node.GPUModel (nil when neither is known). It reports a
// profile model that differs from the pool's, and, when the model comes
// from the pool, a MIG profile that model does not offer (then c.migOK
// becomes false).
func effectiveModel(l *field.List, p Profile, c *checked, pool *NodePool) *GPUModel {
	model := c.model
	if pool == nil || pool.Node.GPUModel == "" {
		return model
	}
	pm := lookupModel(pool.Node.GPUModel)
	if pm == nil {
		return model
	}
	switch {
	case model != nil && model.Name != pm.Name:
		l.Add(field.Invalid(field.NewPath("gpuModel"), p.GPUModel,
			"pool %q has %s GPUs (its node.gpuModel); remove gpuModel to use them, or name a pool of %s",
			pool.Name, pm.Name, model.Name))
	case model == nil && p.GPUModel == "":
		mm := pm.clone()
		model = &mm
		if p.MIG != "" && c.migOK {
			if _, ok := pm.LookupMIG(p.MIG); !ok {
				c.migOK = false
				l.Add(migNotOffered(field.NewPath("mig"), p.MIG, *pm, fmt.Sprintf("the GPUs of pool %q", pool.Name)))
			}
		}
	}
	return model
}

// effectiveStrategy returns the MIG strategy the pod is placed under: the
// profile's, else the pool's, else mixed. It reports a profile strategy
// that differs from the pool's, a pool strategy that is not supported, and
// a single strategy without a GPU model to build the product label from.
func effectiveStrategy(l *field.List, p Profile, c checked, pool *NodePool, model *GPUModel, stack GPUStack) MIGStrategy {
	strategy := p.MIGStrategy
	if stack == GPUStackGKE {
		if p.MIGStrategy != "" && p.MIG != "" {
			l.Add(field.Invalid(field.NewPath("migStrategy"), string(p.MIGStrategy),
				"pool %q runs GKE's managed GPU stack, which has no MIG strategy: it exposes MIG partitions as %s on nodes labelled %s; remove migStrategy",
				pool.Name, GPUResource, LabelGKEGPUPartitionSize))
		}
		return ""
	}
	if pool != nil && pool.MIGStrategy != "" {
		switch {
		case strategy == "":
			strategy = pool.MIGStrategy
		case strategy != pool.MIGStrategy && p.MIG != "":
			l.Add(field.Invalid(field.NewPath("migStrategy"), string(p.MIGStrategy),
				"pool %q runs the NVIDIA device plugin with the %q strategy; remove migStrategy to follow the pool", pool.Name, pool.MIGStrategy))
		}
	}
	if strategy == "" {
		strategy = MIGMixed
	}
	if p.MIG == "" || !c.migOK {
		return strategy
	}
	if p.MIGStrategy == "" && strategy != MIGMixed && strategy != MIGSingle {
		l.Add(field.Invalid(field.NewPath("nodePool"), p.NodePool,
			"the pool's migStrategy %q is not supported (use mixed or single); check the pools with ValidatePools", strategy))
	}
	if strategy == MIGSingle && stack == GPUStackNVIDIA && model == nil && p.GPUModel == "" {
		l.Add(field.Required(field.NewPath("gpuModel"),
			"the single MIG strategy selects nodes by %s=<product>-MIG-%s, which needs the GPU model; set gpuModel, or node.gpuModel on the pool",
			LabelGPUProduct, p.MIG))
	}
	return strategy
}

// checkPreemptible reports a preemptible profile that cannot be placed on
// spot capacity: no pool named, a pool of an unsupported provider, or a
// pool without spot capacity.
func checkPreemptible(l *field.List, p Profile, pool *NodePool) {
	if !p.Preemptible {
		return
	}
	switch {
	case p.NodePool == "":
		l.Add(field.Required(field.NewPath("nodePool"),
			"preemptible placement follows the spot convention of a node pool; name a pool declared with spot: true"))
	case pool != nil && !slices.Contains(providers, pool.Provider):
		l.Add(field.Invalid(field.NewPath("nodePool"), p.NodePool,
			"the pool's provider %q is not supported, so its spot convention is unknown; check the pools with ValidatePools", pool.Provider))
	case pool != nil && !pool.Spot:
		l.Add(field.Invalid(field.NewPath("preemptible"), true,
			"pool %q has no spot capacity (its spot is false); set spot: true on the pool if it has spot nodes, or drop preemptible", pool.Name))
	}
}

// resolved builds the Resolved of a profile that passed every check.
func resolved(p Profile, c checked, pool *NodePool, model *GPUModel, strategy MIGStrategy, stack GPUStack) Resolved {
	var res Resolved
	res.Requests, res.Limits = requestsAndLimits(p, c, strategy, stack)
	if c.sharedMemory != nil {
		shm := c.sharedMemory.DeepCopy()
		res.SharedMemory = &shm
	}
	if model != nil && (p.GPUs > 0 || p.MIG != "") {
		res.GPUModel = model.Name
	}
	res.Placement = place(p, pool, model, strategy, stack, p.Preemptible)
	if p.Preemptible {
		od := place(p, pool, model, strategy, stack, false)
		res.OnDemand = &od
	}
	return res
}

// requestsAndLimits returns the container's resource requests and limits,
// each nil when empty: see [Resolved.Limits] for what is limited.
func requestsAndLimits(p Profile, c checked, strategy MIGStrategy, stack GPUStack) (req, lim corev1.ResourceList) {
	req, lim = corev1.ResourceList{}, corev1.ResourceList{}
	if c.cpu != nil {
		req[corev1.ResourceCPU] = c.cpu.DeepCopy()
	}
	if c.memory != nil {
		req[corev1.ResourceMemory] = c.memory.DeepCopy()
		lim[corev1.ResourceMemory] = c.memory.DeepCopy()
	}
	if c.ephemeralStorage != nil {
		req[corev1.ResourceEphemeralStorage] = c.ephemeralStorage.DeepCopy()
	}
	if p.GPUs > 0 {
		req[GPUResource] = *resource.NewQuantity(int64(p.GPUs), resource.DecimalSI)
		lim[GPUResource] = *resource.NewQuantity(int64(p.GPUs), resource.DecimalSI)
	}
	if p.MIG != "" {
		name := MIGResourceName(p.MIG)
		if strategy == MIGSingle || stack == GPUStackGKE {
			name = GPUResource
		}
		req[name] = *resource.NewQuantity(int64(migCount(p)), resource.DecimalSI)
		lim[name] = *resource.NewQuantity(int64(migCount(p)), resource.DecimalSI)
	}
	return nilIfEmpty(req), nilIfEmpty(lim)
}

func nilIfEmpty(l corev1.ResourceList) corev1.ResourceList {
	if len(l) == 0 {
		return nil
	}
	return l
}

// migCount is the number of MIG slices p asks for.
func migCount(p Profile) int {
	return max(1, p.MIGCount)
}

func findPool(pools []NodePool, name string) *NodePool {
	for i := range pools {
		if pools[i].Name == name {
			return &pools[i]
		}
	}
	return nil
}

func poolNotFound(name string, pools []NodePool) *field.Error {
	if len(pools) == 0 {
		return field.NotFound(field.NewPath("nodePool"), name,
			"no node pools are declared; declare the pool with the pipeline's node pools, or remove nodePool")
	}
	names := make([]string, len(pools))
	for i, p := range pools {
		names[i] = p.Name
	}
	return field.NotFound(field.NewPath("nodePool"), name,
		"no node pool of that name is declared (declared: %s)%s", quoteList(names), didYouMean(name, names))
}

// demand is one thing a profile asks of a node, for the fit checks.
type demand struct {
	path *field.Path
	bad  any               // the profile's value, for the error
	want resource.Quantity // how much
	// prefix and unit surround amounts in messages: "cpu 4", "2 GPUs".
	prefix, unit string
	// capacity is what one node of the pool offers; false when unknown.
	capacity func(Capacity) (resource.Quantity, bool)
}

func (d demand) amount(q resource.Quantity) string { return d.prefix + q.String() + d.unit }

func demands(p Profile, c checked) []demand {
	var ds []demand
	quantity := func(name, prefix, value string, want *resource.Quantity, capacity func(Capacity) string) {
		if want == nil {
			return
		}
		ds = append(ds, demand{
			path: field.NewPath(name), bad: value, want: *want, prefix: prefix,
			capacity: func(n Capacity) (resource.Quantity, bool) {
				return parseQuantity(capacity(n))
			},
		})
	}
	quantity("cpu", "cpu ", p.CPU, c.cpu, func(n Capacity) string { return n.CPU })
	quantity("memory", "memory ", p.Memory, c.memory, func(n Capacity) string { return n.Memory })
	quantity("ephemeralStorage", "ephemeral storage ", p.EphemeralStorage, c.ephemeralStorage, func(n Capacity) string { return n.EphemeralStorage })
	if p.GPUs > 0 {
		ds = append(ds, demand{
			path: field.NewPath("gpus"), bad: p.GPUs, unit: " GPUs",
			want: *resource.NewQuantity(int64(p.GPUs), resource.DecimalSI),
			capacity: func(n Capacity) (resource.Quantity, bool) {
				return *resource.NewQuantity(int64(n.GPUs), resource.DecimalSI), n.GPUs > 0
			},
		})
	}
	if p.MIG != "" && c.migOK && p.GPUs <= 0 && p.MIGCount >= 0 {
		ds = append(ds, demand{
			path: field.NewPath("mig"), bad: p.MIG, unit: " " + p.MIG + " slices",
			want: *resource.NewQuantity(int64(migCount(p)), resource.DecimalSI),
			capacity: func(n Capacity) (resource.Quantity, bool) {
				return *resource.NewQuantity(int64(n.MIG[p.MIG]), resource.DecimalSI), len(n.MIG) > 0
			},
		})
	}
	return ds
}

// fitPool checks each demand against one node of the named pool.
func fitPool(l *field.List, pool NodePool, ds []demand) {
	for _, d := range ds {
		have, known := d.capacity(pool.Node)
		switch {
		case !known || d.want.Cmp(have) <= 0:
		case d.path.String() == "mig" && have.IsZero():
			l.Add(field.Invalid(d.path, d.bad,
				"the nodes of pool %q expose no %s slices (they expose %s); ask for one of those, or name another pool",
				pool.Name, d.bad, exposedMIG(pool.Node)))
		case d.path.String() == "mig":
			l.Add(field.Invalid(d.path, d.bad,
				"asks for %s but a node of pool %q offers %s (it exposes %s); ask for fewer, or name a pool with more",
				d.amount(d.want), pool.Name, d.amount(have), exposedMIG(pool.Node)))
		default:
			l.Add(field.Invalid(d.path, d.bad,
				"asks for %s but a node of pool %q offers %s; ask for less, or name a pool with larger nodes",
				d.amount(d.want), pool.Name, d.amount(have)))
		}
	}
}

// exposedMIG lists the MIG slices a node exposes: "1g.10gb: 14, 3g.40gb: 4".
func exposedMIG(n Capacity) string {
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(n.MIG)) {
		parts = append(parts, fmt.Sprintf("%s: %d", name, n.MIG[name]))
	}
	return strings.Join(parts, ", ")
}

// fitAny checks a profile that names no pool against all declared pools:
// each demand must fit some pool whose capacity for it is known, and some
// pool must fit every demand.
func fitAny(l *field.List, pools []NodePool, ds []demand) {
	failed := false
	for _, d := range ds {
		var best *NodePool
		var bestHave resource.Quantity
		fits := false
		for i := range pools {
			have, known := d.capacity(pools[i].Node)
			if !known {
				continue
			}
			if d.want.Cmp(have) <= 0 {
				fits = true
				break
			}
			if best == nil || have.Cmp(bestHave) > 0 {
				best, bestHave = &pools[i], have
			}
		}
		if !fits && best != nil {
			failed = true
			l.Add(field.Invalid(d.path, d.bad,
				"asks for %s but no declared node pool has nodes that large: the largest, pool %q, offers %s; ask for less, or declare a pool with larger nodes",
				d.amount(d.want), best.Name, d.amount(bestHave)))
		}
	}
	if failed || len(ds) == 0 {
		return
	}
	var reasons []string
	for _, pool := range pools {
		var short []string
		for _, d := range ds {
			if have, known := d.capacity(pool.Node); known && d.want.Cmp(have) > 0 {
				short = append(short, d.amount(have))
			}
		}
		if len(short) == 0 {
			return // this pool fits every demand
		}
		reasons = append(reasons, fmt.Sprintf("pool %q offers only %s", pool.Name, strings.Join(short, ", ")))
	}
	l.Add(field.Invalid(field.NewPath("nodePool"), nil,
		"no declared node pool fits the whole profile (%s); adjust the profile, or declare a pool that fits",
		strings.Join(reasons, "; ")))
}

// place computes the placement of p on pool (nil: none named).
func place(p Profile, pool *NodePool, model *GPUModel, strategy MIGStrategy, stack GPUStack, preemptible bool) Placement {
	sel := map[string]string{}
	var tols []corev1.Toleration
	var terms []corev1.NodeSelectorTerm // required node affinity, ORed
	if pool != nil {
		tols, terms = poolPlacement(*pool, preemptible, sel)
	}

	if p.GPUs > 0 || p.MIG != "" {
		tols = appendTolerations(tols, corev1.Toleration{
			Key: TaintGPU, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule})
		switch {
		case stack == GPUStackGKE:
			// The pool's own labels win: an A3 Mega pool names its type.
			if _, set := sel[LabelGKEAccelerator]; !set && model != nil && model.GKEAccelerator != "" {
				sel[LabelGKEAccelerator] = model.GKEAccelerator
			}
			if p.MIG != "" {
				sel[LabelGKEGPUPartitionSize] = p.MIG
			}
		case p.MIG != "" && strategy == MIGSingle && stack == GPUStackNVIDIA && model != nil:
			sel[LabelGPUProduct] = model.MIGProduct(p.MIG)
		case model != nil && pool == nil:
			sel[LabelGPUProduct] = model.Product
		}
	}

	maps.Copy(sel, p.NodeSelector)
	tols = appendTolerations(tols, p.Tolerations...)
	slices.SortFunc(tols, compareTolerations)
	tols = dropCovered(tols)

	out := Placement{Tolerations: tols, Affinity: mergeAffinity(p.Affinity, terms)}
	if len(sel) > 0 {
		out.NodeSelector = sel
	}
	return out
}

// poolPlacement adds pool's labels to sel and returns the tolerations of
// its taints and the required node affinity terms (ORed) of its provider's
// spot convention: spot placement when preemptible, else, on a pool with
// spot capacity, whatever keeps the pod off the spot nodes.
func poolPlacement(pool NodePool, preemptible bool, sel map[string]string) (tols []corev1.Toleration, terms []corev1.NodeSelectorTerm) {
	maps.Copy(sel, pool.Labels)
	tols = appendTolerations(tols, tolerate(pool.Taints)...)
	switch pool.Provider {
	case ProviderGKE:
		switch {
		case preemptible:
			sel[LabelGKESpot] = "true"
			tols = appendTolerations(tols, corev1.Toleration{
				Key: LabelGKESpot, Operator: corev1.TolerationOpEqual, Value: "true", Effect: corev1.TaintEffectNoSchedule})
		case pool.Spot:
			terms = []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{
				{Key: LabelGKESpot, Operator: corev1.NodeSelectorOpDoesNotExist},
				{Key: LabelGKEPreemptible, Operator: corev1.NodeSelectorOpDoesNotExist},
			}}}
		}
	case ProviderEKS:
		switch {
		case preemptible:
			sel[LabelEKSCapacityType] = "SPOT"
		case pool.Spot:
			sel[LabelEKSCapacityType] = "ON_DEMAND"
		}
	case ProviderAKS:
		if preemptible {
			sel[LabelAKSScaleSetPriority] = "spot"
			tols = appendTolerations(tols, corev1.Toleration{
				Key: LabelAKSScaleSetPriority, Operator: corev1.TolerationOpEqual, Value: "spot", Effect: corev1.TaintEffectNoSchedule})
		}
	case ProviderGeneric:
		switch {
		case preemptible:
			maps.Copy(sel, pool.SpotLabels)
			tols = appendTolerations(tols, tolerate(pool.SpotTaints)...)
		case pool.Spot && len(pool.SpotTaints) == 0:
			terms = avoidLabels(pool.SpotLabels)
		}
	}
	return tols, terms
}

// tolerate returns the tolerations of taints: Equal for a taint with a
// value, Exists for one without.
func tolerate(taints []corev1.Taint) []corev1.Toleration {
	var out []corev1.Toleration
	for _, t := range taints {
		tol := corev1.Toleration{Key: t.Key, Operator: corev1.TolerationOpExists, Effect: t.Effect}
		if t.Value != "" {
			tol.Operator, tol.Value = corev1.TolerationOpEqual, t.Value
		}
		out = append(out, tol)
	}
	return out
}

// avoidLabels returns node selector terms (ORed) that match nodes lacking
// at least one of labels, that is, nodes that are not spot nodes.
func avoidLabels(labels map[string]string) []corev1.NodeSelectorTerm {
	var terms []corev1.NodeSelectorTerm
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		terms = append(terms, corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{
			{Key: k, Operator: corev1.NodeSelectorOpNotIn, Values: []string{labels[k]}},
		}})
	}
	return terms
}

// mergeAffinity returns a copy of user's affinity whose required node
// affinity also demands terms: (U1 or U2) and (T1 or T2) becomes
// U1T1 or U1T2 or U2T1 or U2T2.
func mergeAffinity(user *corev1.Affinity, terms []corev1.NodeSelectorTerm) *corev1.Affinity {
	if user == nil && len(terms) == 0 {
		return nil
	}
	a := &corev1.Affinity{}
	if user != nil {
		a = user.DeepCopy()
	}
	if len(terms) == 0 {
		return a
	}
	if a.NodeAffinity == nil {
		a.NodeAffinity = &corev1.NodeAffinity{}
	}
	req := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution
	if req == nil || len(req.NodeSelectorTerms) == 0 {
		ns := &corev1.NodeSelector{}
		for _, t := range terms {
			ns.NodeSelectorTerms = append(ns.NodeSelectorTerms, *t.DeepCopy())
		}
		a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution = ns
		return a
	}
	var combined []corev1.NodeSelectorTerm
	for _, u := range req.NodeSelectorTerms {
		for _, t := range terms {
			c := corev1.NodeSelectorTerm{
				MatchExpressions: slices.Concat(u.MatchExpressions, t.MatchExpressions),
				MatchFields:      slices.Concat(u.MatchFields, t.MatchFields),
			}
			combined = append(combined, *c.DeepCopy())
		}
	}
	req.NodeSelectorTerms = combined
	return a
}

// dropCovered removes the tolerations that another one in ts already
// implies, keeping the first of equivalent ones: an Exists toleration of a
// key covers Equal ones of that key, an empty effect covers every effect,
// an empty key with Exists covers everything.
func dropCovered(ts []corev1.Toleration) []corev1.Toleration {
	var out []corev1.Toleration
	for i, a := range ts {
		covered := false
		for j, b := range ts {
			if i != j && covers(b, a) && (!covers(a, b) || j < i) {
				covered = true
				break
			}
		}
		if !covered {
			out = append(out, a)
		}
	}
	return out
}

// covers reports whether toleration b tolerates every taint a tolerates,
// for at least as long.
func covers(b, a corev1.Toleration) bool {
	exists := func(t corev1.Toleration) bool { return t.Operator == corev1.TolerationOpExists }
	switch {
	case b.Key == "" && exists(b):
	case b.Key != a.Key:
		return false
	case exists(b):
	case exists(a) || b.Value != a.Value:
		return false
	}
	if b.Effect != "" && b.Effect != a.Effect {
		return false
	}
	return b.TolerationSeconds == nil ||
		(a.TolerationSeconds != nil && *a.TolerationSeconds <= *b.TolerationSeconds)
}

func compareTolerations(a, b corev1.Toleration) int {
	return cmp.Or(
		strings.Compare(a.Key, b.Key),
		strings.Compare(string(a.Operator), string(b.Operator)),
		strings.Compare(a.Value, b.Value),
		strings.Compare(string(a.Effect), string(b.Effect)),
		compareSeconds(a.TolerationSeconds, b.TolerationSeconds),
	)
}

func compareSeconds(a, b *int64) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	return cmp.Compare(*a, *b)
}
