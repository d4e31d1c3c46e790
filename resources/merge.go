package resources

import (
	"maps"

	corev1 "k8s.io/api/core/v1"
)

// Merge returns the profile a task runs with when the pipeline's defaults
// (base) are overridden by the task's own profile (override). The rule,
// field group by field group:
//
//   - CPU, Memory, EphemeralStorage, SharedMemory: each one separately; a
//     non-empty override wins.
//   - The accelerator group (GPUModel, GPUs, MIG, MIGCount, MIGStrategy) is
//     one unit: if override sets GPUs, MIG or GPUModel, all five come from
//     override; otherwise all five come from base, except that a MIGCount or
//     MIGStrategy set in override still wins (so a task can ask for more
//     slices of the inherited MIG profile).
//   - The placement group (NodePool, Preemptible) is one unit: from
//     override if it sets NodePool or Preemptible, otherwise from base.
//   - NodeSelector: the union; override's value wins for a key in both.
//   - Tolerations: base's, then override's, exact duplicates dropped.
//   - Affinity: override's if set, otherwise base's.
//
// Groups keep a task from inheriting half a request: a task asking for
// whole GPUs does not also inherit the pipeline's MIG profile, and a task
// naming its own pool does not inherit spot placement meant for another.
// Because zero values never override, a task cannot switch off what the
// defaults ask for: to run one task on-demand under preemptible defaults,
// name the pool in the task without Preemptible.
//
// The result shares no map, slice or pointer with base or override, so
// Merge(Profile{}, p) is a deep copy of p.
func Merge(base, override Profile) Profile {
	out := Profile{
		CPU:              pick(override.CPU, base.CPU),
		Memory:           pick(override.Memory, base.Memory),
		EphemeralStorage: pick(override.EphemeralStorage, base.EphemeralStorage),
		SharedMemory:     pick(override.SharedMemory, base.SharedMemory),
	}

	if override.GPUs != 0 || override.MIG != "" || override.GPUModel != "" {
		out.GPUModel, out.GPUs, out.MIG = override.GPUModel, override.GPUs, override.MIG
		out.MIGCount, out.MIGStrategy = override.MIGCount, override.MIGStrategy
	} else {
		out.GPUModel, out.GPUs, out.MIG = base.GPUModel, base.GPUs, base.MIG
		out.MIGCount, out.MIGStrategy = base.MIGCount, base.MIGStrategy
		if override.MIGCount != 0 {
			out.MIGCount = override.MIGCount
		}
		if override.MIGStrategy != "" {
			out.MIGStrategy = override.MIGStrategy
		}
	}

	if override.NodePool != "" || override.Preemptible {
		out.NodePool, out.Preemptible = override.NodePool, override.Preemptible
	} else {
		out.NodePool, out.Preemptible = base.NodePool, base.Preemptible
	}

	if len(base.NodeSelector)+len(override.NodeSelector) > 0 {
		out.NodeSelector = make(map[string]string, len(base.NodeSelector)+len(override.NodeSelector))
		maps.Copy(out.NodeSelector, base.NodeSelector)
		maps.Copy(out.NodeSelector, override.NodeSelector)
	}
	out.Tolerations = appendTolerations(nil, base.Tolerations...)
	out.Tolerations = appendTolerations(out.Tolerations, override.Tolerations...)
	if override.Affinity != nil {
		out.Affinity = override.Affinity.DeepCopy()
	} else if base.Affinity != nil {
		out.Affinity = base.Affinity.DeepCopy()
	}
	return out
}

func pick(override, base string) string {
	if override != "" {
		return override
	}
	return base
}

// appendTolerations appends deep copies of ts to dst, skipping any that is
// already in dst.
func appendTolerations(dst []corev1.Toleration, ts ...corev1.Toleration) []corev1.Toleration {
	for _, t := range ts {
		dup := false
		for _, d := range dst {
			if tolerationEqual(d, t) {
				dup = true
				break
			}
		}
		if !dup {
			dst = append(dst, *t.DeepCopy())
		}
	}
	return dst
}

func tolerationEqual(a, b corev1.Toleration) bool {
	if a.Key != b.Key || a.Operator != b.Operator || a.Value != b.Value || a.Effect != b.Effect {
		return false
	}
	if a.TolerationSeconds == nil || b.TolerationSeconds == nil {
		return a.TolerationSeconds == nil && b.TolerationSeconds == nil
	}
	return *a.TolerationSeconds == *b.TolerationSeconds
}
