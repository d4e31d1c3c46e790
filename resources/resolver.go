package resources

import (
	"maps"
	"sync"

	corev1 "k8s.io/api/core/v1"
)

// A Resolver resolves profiles against one list of node pools, each
// distinct profile once: a pipeline has thousands of steps and a handful
// of profiles, and resolving one parses and checks every quantity. It
// returns what [Resolve] returns, a copy of its own for each call. It is
// safe for concurrent use.
type Resolver struct {
	pools []NodePool
	mu    sync.Mutex
	done  map[profileKey]resolution
	// recent are the last few resolutions looked up, compared before the
	// map is hashed: steps in a row mostly use a handful of profiles.
	recent [4]recentResolution
	next   int
}

type resolution struct {
	r   Resolved
	err error
}

type recentResolution struct {
	k  profileKey
	ok bool
	resolution
}

// profileKey is a Profile without its map, slice and pointer fields: a
// profile that sets none of them is resolved once per key.
type profileKey struct {
	CPU, Memory, EphemeralStorage, SharedMemory string
	GPUModel                                    string
	GPUs                                        int
	MIG                                         string
	MIGCount                                    int
	MIGStrategy                                 MIGStrategy
	NodePool                                    string
	Preemptible                                 bool
}

// NewResolver returns a Resolver of profiles against pools, which must
// not change while the Resolver is in use.
func NewResolver(pools []NodePool) *Resolver {
	return &Resolver{pools: pools, done: map[profileKey]resolution{}}
}

// Resolve is [Resolve] of p against the Resolver's pools.
func (rv *Resolver) Resolve(p Profile) (Resolved, error) {
	r, err, shared := rv.resolve(p)
	if shared {
		r = r.DeepCopy()
	}
	return r, err
}

// ResolveShared is [Resolver.Resolve] without the copy: every call with
// an equal profile (one that sets no node selector, toleration or
// affinity of its own) returns the same Resolved, whose maps, slices and
// pointers the Resolver and every caller share, so no caller may modify
// it. It is for a caller that resolves the profiles of thousands of steps
// into data that is only read, such as a pipeline's plan.
func (rv *Resolver) ResolveShared(p Profile) (Resolved, error) {
	r, err, _ := rv.resolve(p)
	return r, err
}

// resolve returns the resolution of p, and whether it is the Resolver's
// own (shared) rather than made for this call.
func (rv *Resolver) resolve(p Profile) (Resolved, error, bool) {
	if p.NodeSelector != nil || p.Tolerations != nil || p.Affinity != nil {
		r, err := Resolve(p, rv.pools)
		return r, err, false
	}
	k := profileKey{p.CPU, p.Memory, p.EphemeralStorage, p.SharedMemory, p.GPUModel, p.GPUs, p.MIG, p.MIGCount, p.MIGStrategy, p.NodePool, p.Preemptible}
	rv.mu.Lock()
	got, ok := rv.lookup(k)
	rv.mu.Unlock()
	if !ok {
		got.r, got.err = Resolve(p, rv.pools)
		rv.mu.Lock()
		if prev, ok := rv.lookup(k); ok {
			got = prev // resolved meanwhile by another caller: share one
		} else {
			rv.done[k] = got
			rv.remember(k, got)
		}
		rv.mu.Unlock()
	}
	return got.r, got.err, true
}

// lookup returns the resolution of k, if there is one. rv.mu is held.
func (rv *Resolver) lookup(k profileKey) (resolution, bool) {
	for i := range rv.recent {
		if c := &rv.recent[i]; c.ok && c.k == k {
			return c.resolution, true
		}
	}
	got, ok := rv.done[k]
	if ok {
		rv.remember(k, got)
	}
	return got, ok
}

// remember makes k's resolution one of the recent ones. rv.mu is held.
func (rv *Resolver) remember(k profileKey, got resolution) {
	rv.recent[rv.next] = recentResolution{k: k, ok: true, resolution: got}
	rv.next = (rv.next + 1) % len(rv.recent)
}

// DeepCopy returns a copy of r that shares nothing with it.
func (r Resolved) DeepCopy() Resolved {
	out := r
	out.Requests = r.Requests.DeepCopy()
	out.Limits = r.Limits.DeepCopy()
	if r.SharedMemory != nil {
		q := r.SharedMemory.DeepCopy()
		out.SharedMemory = &q
	}
	out.Placement = r.Placement.DeepCopy()
	if r.OnDemand != nil {
		p := r.OnDemand.DeepCopy()
		out.OnDemand = &p
	}
	return out
}

// DeepCopy returns a copy of p that shares nothing with it.
func (p Placement) DeepCopy() Placement {
	out := Placement{Affinity: p.Affinity.DeepCopy()}
	if p.NodeSelector != nil {
		out.NodeSelector = maps.Clone(p.NodeSelector)
	}
	if p.Tolerations != nil {
		out.Tolerations = make([]corev1.Toleration, len(p.Tolerations))
		for i := range p.Tolerations {
			p.Tolerations[i].DeepCopyInto(&out.Tolerations[i])
		}
	}
	return out
}
