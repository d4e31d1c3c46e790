package resources

import (
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/sluice-ml/sluice/internal/field"
)

// Validate reports every problem of p at once, without looking at node
// pools (see [Resolve] for the checks that need them). Paths are relative to
// the profile and use its JSON names ("mig", "nodeSelector[team]",
// "tolerations[0].effect"), so a caller can re-root them under the owning
// field. A non-nil error wraps one *field.Error per problem; it is nil when
// p is valid. The zero Profile is valid.
func (p Profile) Validate() error {
	var l field.List
	p.check(&l)
	return l.Err()
}

// checked is what Profile.check learnt on the way, for Resolve.
type checked struct {
	// Parsed quantities; nil when unset or invalid.
	cpu, memory, ephemeralStorage, sharedMemory *resource.Quantity
	// model is the profile's GPU model; nil when unset or unknown.
	model *GPUModel
	// migOK: MIG is unset, or a profile of model (or of some catalog model
	// when the profile names no known model).
	migOK bool
}

func (p Profile) check(l *field.List) checked {
	c := checkQuantities(l, p)
	c.model = checkGPUs(l, p)
	c.migOK = checkMIG(l, p, c.model)
	checkMIGCount(l, p, c)
	switch p.MIGStrategy {
	case "", MIGMixed, MIGSingle:
	default:
		l.Add(field.NotSupported(field.NewPath("migStrategy"), p.MIGStrategy, []MIGStrategy{MIGMixed, MIGSingle}))
	}
	checkLabels(l, field.NewPath("nodeSelector"), p.NodeSelector)
	for i, t := range p.Tolerations {
		checkToleration(l, field.NewPath("tolerations").Index(i), t)
	}
	return c
}

// checkQuantities parses p's cpu, memory, ephemeralStorage and
// sharedMemory, and reports shared memory larger than memory.
func checkQuantities(l *field.List, p Profile) checked {
	var c checked
	c.cpu = checkCPU(l, field.NewPath("cpu"), p.CPU, checkQuantity(l, field.NewPath("cpu"), p.CPU))
	c.memory = checkQuantity(l, field.NewPath("memory"), p.Memory)
	c.ephemeralStorage = checkQuantity(l, field.NewPath("ephemeralStorage"), p.EphemeralStorage)
	c.sharedMemory = checkQuantity(l, field.NewPath("sharedMemory"), p.SharedMemory)
	if c.sharedMemory != nil && c.memory != nil && c.sharedMemory.Cmp(*c.memory) > 0 {
		l.Add(field.Invalid(field.NewPath("sharedMemory"), p.SharedMemory,
			"must not exceed memory (%s): /dev/shm is memory-backed and counts against the memory request; raise memory or lower sharedMemory", p.Memory))
	}
	return c
}

// checkGPUs checks p's gpuModel and gpus, and that mig does not come with
// gpus. It returns a copy of p's GPU model; nil when unset or unknown.
func checkGPUs(l *field.List, p Profile) *GPUModel {
	var model *GPUModel
	if p.GPUModel != "" {
		if m := lookupModel(p.GPUModel); m != nil {
			mm := m.clone()
			model = &mm
		} else {
			l.Add(unknownModel(field.NewPath("gpuModel"), p.GPUModel))
		}
	}
	checkGPUCount(l, field.NewPath("gpus"), p.GPUs, "zero asks for no GPU")
	if p.GPUModel != "" && p.GPUs == 0 && p.MIG == "" {
		l.Add(field.Invalid(field.NewPath("gpuModel"), p.GPUModel,
			"names a GPU model but the profile asks for no GPU; set gpus or mig (a task that sets gpus or mig replaces the inherited gpuModel too), or remove gpuModel"))
	}
	if p.MIG != "" && p.GPUs > 0 {
		l.Add(field.Forbidden(field.NewPath("mig"),
			"cannot be combined with gpus (%d): ask for whole GPUs with gpus or for MIG slices with mig and migCount, not both", p.GPUs))
	}
	return model
}

// checkMIG reports a MIG profile that model (nil: no known model) does
// not offer, or that no catalog model offers. It returns checked.migOK.
func checkMIG(l *field.List, p Profile, model *GPUModel) bool {
	switch {
	case p.MIG == "":
		return true
	case model != nil:
		if _, ok := model.LookupMIG(p.MIG); ok {
			return true
		}
		l.Add(migNotOffered(field.NewPath("mig"), p.MIG, *model, ""))
	default:
		if _, ok := maxMIGInstances(p.MIG); ok {
			// No model yet: the pool may name it. Resolve checks it then.
			return true
		}
		l.Add(unknownMIG(field.NewPath("mig"), p.MIG))
	}
	return false
}

// checkMIGCount reports a negative migCount, one without mig, and one
// larger than a node can hold.
func checkMIGCount(l *field.List, p Profile, c checked) {
	switch {
	case p.MIGCount < 0:
		l.Add(field.Invalid(field.NewPath("migCount"), p.MIGCount, "must not be negative; zero means one slice"))
	case p.MIGCount > 0 && p.MIG == "":
		l.Add(field.Forbidden(field.NewPath("migCount"), "counts MIG slices; set mig to the profile to count"))
	case p.MIGCount > 0 && c.migOK:
		per, _ := maxMIGInstances(p.MIG)
		holder := "any catalog GPU"
		if c.model != nil {
			mp, _ := c.model.LookupMIG(p.MIG)
			per, holder = mp.MaxInstances, c.model.Name
		}
		if limit := per * maxGPUsPerNode; p.MIGCount > limit {
			l.Add(field.Invalid(field.NewPath("migCount"), p.MIGCount,
				"must be at most %d: %s holds at most %d %s slices per GPU and a node at most %d GPUs; split the work or use whole GPUs",
				limit, holder, per, p.MIG, maxGPUsPerNode))
		}
	}
}

// Validate reports every problem of the pool at once. Paths are relative to
// the pool and use its JSON names ("name", "node.mig[3g.40gb]",
// "taints[0].effect"). A non-nil error wraps one *field.Error per problem.
// Use [ValidatePools] for a pipeline's list, which also checks that names are
// unique.
func (n NodePool) Validate() error {
	var l field.List
	n.check(&l)
	return l.Err()
}

func (n NodePool) check(l *field.List) {
	if n.Name == "" {
		l.Add(field.Required(field.NewPath("name"), "every node pool needs a name; profiles refer to it with nodePool"))
	} else if msgs := validation.IsDNS1123Label(n.Name); len(msgs) > 0 {
		l.Add(field.Invalid(field.NewPath("name"), n.Name, "%s", strings.Join(msgs, "; ")))
	}
	if !slices.Contains(providers, n.Provider) {
		l.Add(field.NotSupported(field.NewPath("provider"), n.Provider, providers))
	}
	checkLabels(l, field.NewPath("labels"), n.Labels)
	for i, t := range n.Taints {
		checkTaint(l, field.NewPath("taints").Index(i), t)
	}
	checkNode(l, field.NewPath("node"), n.Node)
	switch n.MIGStrategy {
	case "", MIGMixed, MIGSingle:
	default:
		l.Add(field.NotSupported(field.NewPath("migStrategy"), n.MIGStrategy, []MIGStrategy{MIGMixed, MIGSingle}))
	}
	checkSpotConfig(l, n)
	checkGPUStack(l, n)
}

// checkNode checks what a node of a pool offers, at path node.
func checkNode(l *field.List, node *field.Path, n Capacity) {
	checkCPU(l, node.Child("cpu"), n.CPU, checkQuantity(l, node.Child("cpu"), n.CPU))
	checkQuantity(l, node.Child("memory"), n.Memory)
	checkQuantity(l, node.Child("ephemeralStorage"), n.EphemeralStorage)
	var model *GPUModel
	if n.GPUModel != "" {
		if model = lookupModel(n.GPUModel); model == nil {
			l.Add(unknownModel(node.Child("gpuModel"), n.GPUModel))
		}
	}
	checkGPUCount(l, node.Child("gpus"), n.GPUs, "zero means unknown")
	for _, name := range slices.Sorted(maps.Keys(n.MIG)) {
		checkNodeMIG(l, node.Child("mig").Key(name), name, n.MIG[name], model, n.GPUs)
	}
}

// checkNodeMIG checks that a node exposes count slices of MIG profile name
// at path: a profile its GPU model (nil: unknown) offers, and no more than
// its gpus GPUs (0: unknown) hold.
func checkNodeMIG(l *field.List, path *field.Path, name string, count int, model *GPUModel, gpus int) {
	per, known := 0, false
	switch {
	case model != nil:
		var mp MIGProfile
		if mp, known = model.LookupMIG(name); known {
			per = mp.MaxInstances
		} else {
			l.Add(migNotOffered(path, name, *model, "node.gpuModel"))
		}
	default:
		if per, known = maxMIGInstances(name); !known {
			l.Add(unknownMIG(path, name))
		}
	}
	switch {
	case count < 0:
		l.Add(field.Invalid(path, count, "must not be negative"))
	case known && model != nil && gpus > 0 && count > per*gpus:
		l.Add(field.Invalid(path, count, "a node with %d %s GPUs holds at most %d %s slices (%d per GPU)",
			gpus, model.Name, per*gpus, name, per))
	}
}

// checkSpotConfig checks spotLabels and spotTaints: required on a generic
// pool with spot capacity, forbidden on other providers and on a generic
// pool without spot capacity.
func checkSpotConfig(l *field.List, n NodePool) {
	hasSpotConfig := len(n.SpotLabels) > 0 || len(n.SpotTaints) > 0
	switch {
	case n.Provider == ProviderGeneric && n.Spot && len(n.SpotLabels) == 0:
		l.Add(field.Required(field.NewPath("spotLabels"),
			"a generic pool with spot capacity needs the node labels that select its spot nodes (and spotTaints if they are tainted)"))
	case n.Provider != ProviderGeneric && hasSpotConfig:
		l.Add(field.Forbidden(spotConfigPath(n), "is only for the generic provider; %s spot nodes are found by the provider's own labels", n.Provider))
	case n.Provider == ProviderGeneric && !n.Spot && hasSpotConfig:
		l.Add(field.Forbidden(spotConfigPath(n), "is unused unless spot is true; set spot: true if the pool has spot capacity"))
	}
	checkLabels(l, field.NewPath("spotLabels"), n.SpotLabels)
	for i, t := range n.SpotTaints {
		checkTaint(l, field.NewPath("spotTaints").Index(i), t)
	}
}

func spotConfigPath(n NodePool) *field.Path {
	if len(n.SpotLabels) > 0 {
		return field.NewPath("spotLabels")
	}
	return field.NewPath("spotTaints")
}

// ValidatePools reports every problem of a pipeline's node pools at once:
// each pool's own (see [NodePool.Validate]) under "[i]", and duplicate
// names. Paths are relative to the list: "[0].name", "[1].taints[0].key".
func ValidatePools(pools []NodePool) error {
	var l field.List
	seen := map[string]int{}
	for i, p := range pools {
		root := (*field.Path)(nil).Index(i)
		l.AddUnder(root, p.Validate())
		if p.Name == "" {
			continue
		}
		if j, dup := seen[p.Name]; dup {
			l.Add(field.Duplicate(root.Child("name"), p.Name, "pool [%d] has the same name; pool names must be unique", j))
		} else {
			seen[p.Name] = i
		}
	}
	return l.Err()
}

// Quantities outside [minQuantity, maxQuantity] (in base units: cores,
// bytes) are rejected: nothing real is that large or small. Strings longer
// than maxQuantityLen, or with a decimal exponent of more than two digits,
// are rejected before parsing: resource.ParseQuantity and Quantity.Cmp take
// unbounded time on inputs such as "1e-999999999".
const (
	maxQuantityLen = 64 // minQuantity and maxQuantity: resources/bounds.go
	rangeDetail    = "is out of range: must be between 1n and 8Ei"
)

// extremeExponent reports whether s has a decimal exponent ("e-12", "E+5")
// of more than two digits. A bare "E" is the exa suffix.
func extremeExponent(s string) bool {
	i := strings.LastIndexAny(s, "eE")
	if i < 0 {
		return false
	}
	exp := s[i+1:]
	if exp != "" && (exp[0] == '+' || exp[0] == '-') {
		exp = exp[1:]
	}
	return len(exp) > 2
}

// checkQuantity parses s, reporting a malformed, non-positive or
// out-of-range value. It returns the quantity, or nil when s is empty or
// invalid.
func checkQuantity(l *field.List, p *field.Path, s string) *resource.Quantity {
	if s == "" {
		return nil
	}
	if len(s) > maxQuantityLen {
		l.Add(field.Invalid(p, s, "must be at most %d characters", maxQuantityLen))
		return nil
	}
	if extremeExponent(s) {
		l.Add(field.Invalid(p, s, rangeDetail))
		return nil
	}
	q, err := resource.ParseQuantity(s)
	switch {
	case err != nil:
		l.Add(field.Invalid(p, s, `must be a Kubernetes quantity such as "4", "500m", "16Gi" or "1.5G"`))
		return nil
	case q.Sign() <= 0:
		l.Add(field.Invalid(p, s, "must be positive; leave it empty to ask for nothing"))
		return nil
	case !inRange(q, s):
		l.Add(field.Invalid(p, s, rangeDetail))
		return nil
	}
	return &q
}

// parseQuantity parses a quantity that checkQuantity accepts.
func parseQuantity(s string) (resource.Quantity, bool) {
	if s == "" || len(s) > maxQuantityLen || extremeExponent(s) {
		return resource.Quantity{}, false
	}
	q, err := resource.ParseQuantity(s)
	return q, err == nil && q.Sign() > 0 && inRange(q, s)
}

func unknownModel(p *field.Path, name string) *field.Error {
	e := field.NotSupported(p, name, modelNames())
	e.Detail += didYouMean(name, modelNames())
	return e
}

func unknownMIG(p *field.Path, name string) *field.Error {
	return field.Invalid(p, name, "no GPU model of the catalog offers this MIG profile (known profiles: %s)%s",
		strings.Join(allMIGNames(), ", "), didYouMean(name, allMIGNames()))
}

// migNotOffered reports a MIG profile that model m does not offer; why says
// where the model comes from, when it is not the profile's gpuModel.
func migNotOffered(p *field.Path, name string, m GPUModel, why string) *field.Error {
	if why != "" {
		why = " (" + why + ")"
	}
	if len(m.MIG) == 0 {
		return field.Invalid(p, name, "%s%s has no MIG; ask for whole GPUs with gpus, or use a MIG-capable model: %s",
			m.Name, why, strings.Join(migModels(), ", "))
	}
	return field.Invalid(p, name, "not a MIG profile of %s%s, which offers %s%s",
		m.Name, why, strings.Join(m.migNames(), ", "), didYouMean(name, m.migNames()))
}

// checkLabels checks label keys and values, as in a node selector.
func checkLabels(l *field.List, p *field.Path, labels map[string]string) {
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		path := p.Key(k)
		if msgs := validation.IsQualifiedName(k); len(msgs) > 0 {
			l.Add(field.Invalid(path, k, "invalid label key: %s", strings.Join(msgs, "; ")))
		}
		if msgs := validation.IsValidLabelValue(labels[k]); len(msgs) > 0 {
			l.Add(field.Invalid(path, labels[k], "invalid label value: %s", strings.Join(msgs, "; ")))
		}
	}
}

var providers = []Provider{ProviderGeneric, ProviderGKE, ProviderEKS, ProviderAKS}

var taintEffects = []corev1.TaintEffect{corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute}

// checkToleration applies the API server's rules for pod tolerations.
func checkToleration(l *field.List, p *field.Path, t corev1.Toleration) {
	if t.Key != "" {
		if msgs := validation.IsQualifiedName(t.Key); len(msgs) > 0 {
			l.Add(field.Invalid(p.Child("key"), t.Key, "%s", strings.Join(msgs, "; ")))
		}
	}
	switch t.Operator {
	case "", corev1.TolerationOpEqual, corev1.TolerationOpExists:
	default:
		l.Add(field.NotSupported(p.Child("operator"), t.Operator,
			[]corev1.TolerationOperator{corev1.TolerationOpEqual, corev1.TolerationOpExists}))
	}
	if t.Key == "" && (t.Operator == "" || t.Operator == corev1.TolerationOpEqual) {
		l.Add(field.Invalid(p.Child("operator"), string(t.Operator),
			"must be Exists when key is empty (an empty key with Exists tolerates every taint)"))
	}
	switch {
	case t.Operator == corev1.TolerationOpExists && t.Value != "":
		l.Add(field.Invalid(p.Child("value"), t.Value, "must be empty when operator is Exists"))
	case t.Value != "":
		if msgs := validation.IsValidLabelValue(t.Value); len(msgs) > 0 {
			l.Add(field.Invalid(p.Child("value"), t.Value, "%s", strings.Join(msgs, "; ")))
		}
	}
	if t.Effect != "" && !slices.Contains(taintEffects, t.Effect) {
		l.Add(field.NotSupported(p.Child("effect"), t.Effect, taintEffects))
	}
	if t.TolerationSeconds != nil && t.Effect != corev1.TaintEffectNoExecute {
		l.Add(field.Invalid(p.Child("tolerationSeconds"), *t.TolerationSeconds, "only applies to effect NoExecute"))
	}
}

// checkTaint applies the API server's rules for node taints.
func checkTaint(l *field.List, p *field.Path, t corev1.Taint) {
	if t.Key == "" {
		l.Add(field.Required(p.Child("key"), "a taint needs a key"))
	} else if msgs := validation.IsQualifiedName(t.Key); len(msgs) > 0 {
		l.Add(field.Invalid(p.Child("key"), t.Key, "%s", strings.Join(msgs, "; ")))
	}
	if msgs := validation.IsValidLabelValue(t.Value); len(msgs) > 0 {
		l.Add(field.Invalid(p.Child("value"), t.Value, "%s", strings.Join(msgs, "; ")))
	}
	switch {
	case t.Effect == "":
		l.Add(field.Required(p.Child("effect"), "a taint needs an effect: NoSchedule, PreferNoSchedule or NoExecute"))
	case !slices.Contains(taintEffects, t.Effect):
		l.Add(field.NotSupported(p.Child("effect"), t.Effect, taintEffects))
	}
}
