package pipeline

import "github.com/sluice-ml/sluice/resources"

// A pipeline's steps have a handful of resource profiles among thousands
// of steps. The builder merges each profile over the default and resolves
// it once (resolveProfile), when the profile is plain: a Profile without
// a node selector, tolerations or affinity, whose merge over a plain
// default is plain too, so that steps can share it by value.

// plainProfile is a resources.Profile without its map, slice and pointer
// fields: comparable. TestPlainProfileHasEveryField checks that it has
// every other field of Profile.
type plainProfile struct {
	CPU, Memory, EphemeralStorage, SharedMemory string
	GPUModel                                    string
	GPUs                                        int
	MIG                                         string
	MIGCount                                    int
	MIGStrategy                                 resources.MIGStrategy
	NodePool                                    string
	Preemptible                                 bool
}

// plainOf returns p as a plainProfile, and whether p is plain.
func plainOf(p *resources.Profile) (plainProfile, bool) {
	if p.NodeSelector != nil || p.Tolerations != nil || p.Affinity != nil {
		return plainProfile{}, false
	}
	return plainProfile{p.CPU, p.Memory, p.EphemeralStorage, p.SharedMemory, p.GPUModel, p.GPUs, p.MIG, p.MIGCount, p.MIGStrategy, p.NodePool, p.Preemptible}, true
}

// profileMemo is what resolveProfile found for a plain profile.
type profileMemo struct {
	key      plainProfile
	merged   resources.Profile
	resolved resources.Resolved
	err      error
}

// maxProfileMemos bounds the profiles a builder remembers, which it
// compares one by one.
const maxProfileMemos = 8

// resolveProfile returns p merged over the pipeline's default profile,
// and its resolution (shared, as Resolver.ResolveShared's).
func (b *builder) resolveProfile(p *resources.Profile) (resources.Profile, resources.Resolved, error) {
	key, plain := plainOf(p)
	if plain {
		for i := range b.profiles {
			if m := &b.profiles[i]; m.key == key {
				return m.merged, m.resolved, m.err
			}
		}
	}
	merged := resources.Merge(b.p.defaults.Resources, *p)
	resolved, err := b.res.ResolveShared(merged)
	if _, mergedPlain := plainOf(&merged); plain && mergedPlain && len(b.profiles) < maxProfileMemos {
		b.profiles = append(b.profiles, profileMemo{key: key, merged: merged, resolved: resolved, err: err})
	}
	return merged, resolved, err
}
