package resources_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"

	"github.com/sluice-ml/sluice/resources"
)

func nodeAffinity(key string) *corev1.Affinity {
	return &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
			NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{
				{Key: key, Operator: corev1.NodeSelectorOpIn, Values: []string{"a", "b"}},
			}}},
		},
	}}
}

func TestMerge(t *testing.T) {
	tolA := corev1.Toleration{Key: "a", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}
	tolB := corev1.Toleration{Key: "b", Operator: corev1.TolerationOpEqual, Value: "x"}
	tolC := corev1.Toleration{Key: "c", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: seconds(60)}

	tests := []struct {
		name           string
		base, override resources.Profile
		want           resources.Profile
	}{
		{name: "ZeroZero"},
		{
			name:     "QuantitiesOneByOne",
			base:     resources.Profile{CPU: "2", Memory: "8Gi", EphemeralStorage: "10Gi", SharedMemory: "1Gi"},
			override: resources.Profile{Memory: "64Gi", SharedMemory: "16Gi"},
			want:     resources.Profile{CPU: "2", Memory: "64Gi", EphemeralStorage: "10Gi", SharedMemory: "16Gi"},
		},
		{
			name:     "AcceleratorsFromBase",
			base:     resources.Profile{GPUModel: "A100-80GB", MIG: "3g.40gb", MIGCount: 2, MIGStrategy: resources.MIGSingle},
			override: resources.Profile{CPU: "4"},
			want:     resources.Profile{CPU: "4", GPUModel: "A100-80GB", MIG: "3g.40gb", MIGCount: 2, MIGStrategy: resources.MIGSingle},
		},
		{
			name:     "AcceleratorsAsOneUnitWhenOverrideSetsGPUs",
			base:     resources.Profile{GPUModel: "A100-80GB", MIG: "3g.40gb", MIGCount: 2, MIGStrategy: resources.MIGSingle},
			override: resources.Profile{GPUs: 1},
			want:     resources.Profile{GPUs: 1},
		},
		{
			name:     "AcceleratorsAsOneUnitWhenOverrideSetsMIG",
			base:     resources.Profile{GPUModel: "H100-80GB", GPUs: 8},
			override: resources.Profile{MIG: "1g.10gb"},
			want:     resources.Profile{MIG: "1g.10gb"},
		},
		{
			name:     "AcceleratorsAsOneUnitWhenOverrideSetsModel",
			base:     resources.Profile{GPUModel: "A100-80GB", GPUs: 2, MIGStrategy: resources.MIGMixed},
			override: resources.Profile{GPUModel: "H100-80GB"},
			want:     resources.Profile{GPUModel: "H100-80GB"},
		},
		{
			name:     "MIGCountAndStrategyRefineInheritedMIG",
			base:     resources.Profile{GPUModel: "A100-80GB", MIG: "1g.10gb", MIGStrategy: resources.MIGMixed},
			override: resources.Profile{MIGCount: 3, MIGStrategy: resources.MIGSingle},
			want:     resources.Profile{GPUModel: "A100-80GB", MIG: "1g.10gb", MIGCount: 3, MIGStrategy: resources.MIGSingle},
		},
		{
			name:     "PlacementFromBase",
			base:     resources.Profile{NodePool: "spot", Preemptible: true},
			override: resources.Profile{CPU: "1"},
			want:     resources.Profile{CPU: "1", NodePool: "spot", Preemptible: true},
		},
		{
			name:     "PlacementAsOneUnitWhenOverrideNamesPool",
			base:     resources.Profile{NodePool: "spot", Preemptible: true},
			override: resources.Profile{NodePool: "on-demand"},
			want:     resources.Profile{NodePool: "on-demand"},
		},
		{
			name:     "PlacementAsOneUnitWhenOverrideIsPreemptible",
			base:     resources.Profile{NodePool: "cpu"},
			override: resources.Profile{Preemptible: true},
			want:     resources.Profile{Preemptible: true},
		},
		{
			name:     "NodeSelectorUnionOverrideWins",
			base:     resources.Profile{NodeSelector: map[string]string{"team": "ml", "zone": "a"}},
			override: resources.Profile{NodeSelector: map[string]string{"zone": "b", "disk": "ssd"}},
			want:     resources.Profile{NodeSelector: map[string]string{"team": "ml", "zone": "b", "disk": "ssd"}},
		},
		{
			name:     "TolerationsBaseThenOverrideWithoutDuplicates",
			base:     resources.Profile{Tolerations: []corev1.Toleration{tolA, tolC, tolA}},
			override: resources.Profile{Tolerations: []corev1.Toleration{tolB, tolA, {Key: "c", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: seconds(60)}}},
			want:     resources.Profile{Tolerations: []corev1.Toleration{tolA, tolC, tolB}},
		},
		{
			name:     "TolerationSecondsMakeADifference",
			base:     resources.Profile{Tolerations: []corev1.Toleration{tolC}},
			override: resources.Profile{Tolerations: []corev1.Toleration{{Key: "c", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: seconds(120)}}},
			want: resources.Profile{Tolerations: []corev1.Toleration{tolC,
				{Key: "c", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: seconds(120)}}},
		},
		{
			name:     "AffinityFromOverride",
			base:     resources.Profile{Affinity: nodeAffinity("base")},
			override: resources.Profile{Affinity: nodeAffinity("override")},
			want:     resources.Profile{Affinity: nodeAffinity("override")},
		},
		{
			name: "AffinityFromBase",
			base: resources.Profile{Affinity: nodeAffinity("base")},
			want: resources.Profile{Affinity: nodeAffinity("base")},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, resources.Merge(tc.base, tc.override))
		})
	}
}

func fullProfile() resources.Profile {
	return resources.Profile{
		CPU: "4", Memory: "16Gi", EphemeralStorage: "50Gi", SharedMemory: "2Gi",
		GPUModel: "A100-80GB", MIG: "3g.40gb", MIGCount: 2, MIGStrategy: resources.MIGSingle,
		NodePool: "a100", Preemptible: true,
		NodeSelector: map[string]string{"team": "ml"},
		Tolerations: []corev1.Toleration{{Key: "c", Operator: corev1.TolerationOpExists,
			Effect: corev1.TaintEffectNoExecute, TolerationSeconds: seconds(60)}},
		Affinity: nodeAffinity("zone"),
	}
}

func TestMergeWithZeroIsACopy(t *testing.T) {
	p := fullProfile()
	assert.Equal(t, p, resources.Merge(resources.Profile{}, p))
	assert.Equal(t, p, resources.Merge(p, resources.Profile{}))
}

// mutate changes every map, slice and pointer reachable from p.
func mutate(p *resources.Profile) {
	p.NodeSelector["team"] = "changed"
	p.NodeSelector["new"] = "key"
	p.Tolerations[0].Key = "changed"
	*p.Tolerations[0].TolerationSeconds = 1
	term := &p.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0]
	term.MatchExpressions[0].Values[0] = "changed"
	term.MatchExpressions = append(term.MatchExpressions, corev1.NodeSelectorRequirement{Key: "x"})
}

func TestMergeDoesNotAlias(t *testing.T) {
	for _, tc := range []struct {
		name           string
		base, override func() resources.Profile
	}{
		{"FromOverride", func() resources.Profile { return resources.Profile{} }, fullProfile},
		{"FromBase", fullProfile, func() resources.Profile { return resources.Profile{} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, override := tc.base(), tc.override()
			got := resources.Merge(base, override)

			mutate(&got)
			assert.Equal(t, tc.base(), base, "changing the result changed base")
			assert.Equal(t, tc.override(), override, "changing the result changed override")

			got = resources.Merge(base, override)
			if base.NodeSelector != nil {
				mutate(&base)
			} else {
				mutate(&override)
			}
			assert.Equal(t, fullProfile(), got, "changing an input changed the result")
		})
	}
}
