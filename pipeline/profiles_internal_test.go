package pipeline

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/sluice-ml/sluice/resources"
)

// plainProfile has every field of resources.Profile but its map, slice
// and pointer fields, which plainOf checks: a field added to Profile
// must be added to plainProfile (and to plainOf), or profiles that
// differ in it would share a merged profile and a resolution.
func TestPlainProfileHasEveryField(t *testing.T) {
	plain := reflect.TypeFor[plainProfile]()
	checked := map[string]bool{"NodeSelector": true, "Tolerations": true, "Affinity": true}
	prof := reflect.TypeFor[resources.Profile]()
	for i := range prof.NumField() {
		f := prof.Field(i)
		if checked[f.Name] {
			continue
		}
		pf, ok := plain.FieldByName(f.Name)
		if !ok || pf.Type != f.Type {
			t.Errorf("resources.Profile.%s (%v) is not a field of plainProfile of that type", f.Name, f.Type)
		}
	}
	if plain.NumField()+len(checked) != prof.NumField() {
		t.Errorf("plainProfile has %d fields, resources.Profile %d with %d checked by plainOf", plain.NumField(), prof.NumField(), len(checked))
	}
	// plainOf copies each field to its own.
	p := resources.Profile{CPU: "1", Memory: "2", EphemeralStorage: "3", SharedMemory: "4", GPUModel: "5", GPUs: 6, MIG: "7",
		MIGCount: 8, MIGStrategy: "9", NodePool: "10", Preemptible: true}
	got, ok := plainOf(&p)
	want := plainProfile{"1", "2", "3", "4", "5", 6, "7", 8, "9", "10", true}
	if !ok || got != want {
		t.Errorf("plainOf(%+v) = %+v, %v", p, got, ok)
	}
}

// resolveProfile returns what Merge over the default and ResolveShared
// return, for plain profiles and others, with plain defaults and others.
func TestResolveProfileIsMergeAndResolve(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	pools := []resources.NodePool{{Name: "cpu", Provider: resources.ProviderGKE, Node: resources.Capacity{CPU: "32", Memory: "128Gi"}}}
	var profiles []resources.Profile
	for _, cpu := range []string{"", "1", "250m", "bad"} {
		for _, mem := range []string{"", "1Gi", "16Gi"} {
			profiles = append(profiles,
				resources.Profile{CPU: cpu, Memory: mem},
				resources.Profile{CPU: cpu, Memory: mem, NodePool: "cpu"},
				resources.Profile{CPU: cpu, Memory: mem, GPUs: 1},
				resources.Profile{CPU: cpu, Memory: mem, NodeSelector: map[string]string{"a": "b"}},
				resources.Profile{CPU: cpu, Memory: mem, Tolerations: []corev1.Toleration{{Key: "k", Operator: corev1.TolerationOpExists}}},
				resources.Profile{CPU: cpu, Memory: mem, Affinity: &corev1.Affinity{}})
		}
	}
	for _, def := range []resources.Profile{{}, {CPU: "500m", Memory: "1Gi"}, {CPU: "2", NodeSelector: map[string]string{"zone": "a"}}} {
		p := New("p", &Options{Defaults: Defaults{Resources: def}, NodePools: pools})
		b := &builder{p: p, res: resources.NewResolver(p.pools)}
		ref := resources.NewResolver(p.pools)
		for range 2000 {
			prof := profiles[r.IntN(len(profiles))]
			merged, resolved, err := b.resolveProfile(&prof)
			wantMerged := resources.Merge(p.defaults.Resources, prof)
			wantResolved, wantErr := ref.ResolveShared(wantMerged)
			if !reflect.DeepEqual(merged, wantMerged) || !reflect.DeepEqual(resolved, wantResolved) || fmt.Sprint(err) != fmt.Sprint(wantErr) {
				t.Fatalf("default %+v, profile %+v:\nresolveProfile: %+v, %+v, %v\nwant:           %+v, %+v, %v",
					def, prof, merged, resolved, err, wantMerged, wantResolved, wantErr)
			}
			if merged.NodeSelector != nil && len(b.profiles) > 0 {
				for _, m := range b.profiles {
					if m.merged.NodeSelector != nil {
						t.Fatal("a merged profile with a node selector is shared")
					}
				}
			}
		}
		if len(b.profiles) == 0 && def.NodeSelector == nil {
			t.Errorf("default %+v: no profile remembered", def)
		}
	}
}
