package resources_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/sluice-ml/sluice/resources"
)

// The MIG profiles of each model and how many instances of each one GPU
// holds, per NVIDIA's MIG user guide and mig-parted's default config.
func TestCatalogMIGProfiles(t *testing.T) {
	seven := func(small, double, three, four, seven string) map[string]int {
		return map[string]int{
			"1g." + small: 7, "1g." + small + "+me": 1, "1g." + double: 4,
			"2g." + double: 3, "3g." + three: 2, "4g." + four: 1, "7g." + seven: 1,
		}
	}
	want := map[string]map[string]int{
		"A30-24GB":   {"1g.6gb": 4, "1g.6gb+me": 1, "2g.12gb": 2, "2g.12gb+me": 1, "4g.24gb": 1},
		"A100-40GB":  {"1g.5gb": 7, "1g.5gb+me": 1, "1g.10gb": 4, "2g.10gb": 3, "3g.20gb": 2, "4g.20gb": 1, "7g.40gb": 1},
		"A100-80GB":  seven("10gb", "20gb", "40gb", "40gb", "80gb"),
		"H100-80GB":  seven("10gb", "20gb", "40gb", "40gb", "80gb"),
		"H100-94GB":  seven("12gb", "24gb", "47gb", "47gb", "94gb"),
		"H200-141GB": seven("18gb", "35gb", "71gb", "71gb", "141gb"),
		"T4":         {},
		"L4":         {},
		"A10G":       {},
		"V100-16GB":  {},
		"L40S":       {},
	}
	models := resources.Models()
	require.Len(t, models, len(want))
	for _, m := range models {
		t.Run(m.Name, func(t *testing.T) {
			got := map[string]int{}
			for _, p := range m.MIG {
				got[p.Name] = p.MaxInstances
				// The name states compute slices and memory.
				slices, mem, ok := strings.Cut(strings.TrimSuffix(p.Name, "+me"), "g.")
				require.True(t, ok)
				assert.Equal(t, slices, strconv.Itoa(p.ComputeSlices), "compute slices of %s", p.Name)
				assert.Equal(t, mem, strconv.Itoa(p.MemoryGB)+"gb", "memory of %s", p.Name)
				assert.LessOrEqual(t, p.ComputeSlices*p.MaxInstances, 7)
				assert.LessOrEqual(t, p.MemoryGB, m.MemoryGiB)
				// The resource and label built from it are valid.
				assert.Empty(t, validation.IsQualifiedName(string(resources.MIGResourceName(p.Name))))
				assert.Empty(t, validation.IsValidLabelValue(m.MIGProduct(p.Name)))
			}
			assert.Equal(t, want[m.Name], got)
			assert.NotEmpty(t, m.Product)
			assert.Empty(t, validation.IsValidLabelValue(m.Product))
			assert.Positive(t, m.MemoryGiB)
		})
	}
}

func TestModelsIsStableAndACopy(t *testing.T) {
	a := resources.Models()
	a[5].Name = "changed"
	a[5].MIG[0].Name = "changed"
	b := resources.Models()
	assert.NotEqual(t, "changed", b[5].Name)
	assert.NotEqual(t, "changed", b[5].MIG[0].Name)
	assert.Equal(t, resources.Models(), b)

	m, ok := resources.LookupModel("A30-24GB")
	require.True(t, ok)
	m.MIG[0].MaxInstances = 99
	m2, _ := resources.LookupModel("A30-24GB")
	assert.Equal(t, 4, m2.MIG[0].MaxInstances)
}

func TestLookupModel(t *testing.T) {
	for _, name := range []string{"A100-80GB", "a100-80gb", "A100-80gb"} {
		m, ok := resources.LookupModel(name)
		require.True(t, ok, name)
		assert.Equal(t, "A100-80GB", m.Name)
		assert.Equal(t, "NVIDIA-A100-SXM4-80GB", m.Product)
	}
	for _, name := range []string{"", "A100", "A100-80GB ", "B200"} {
		_, ok := resources.LookupModel(name)
		assert.False(t, ok, name)
	}
}

func TestLookupMIG(t *testing.T) {
	m, _ := resources.LookupModel("A100-40GB")
	p, ok := m.LookupMIG("3g.20gb")
	require.True(t, ok)
	assert.Equal(t, resources.MIGProfile{Name: "3g.20gb", ComputeSlices: 3, MemoryGB: 20, MaxInstances: 2}, p)
	_, ok = m.LookupMIG("3g.40gb")
	assert.False(t, ok)
	_, ok = m.LookupMIG("3G.20GB")
	assert.False(t, ok, "MIG profile names are exact")
}

func TestResourceNamesAndLabels(t *testing.T) {
	assert.Equal(t, corev1.ResourceName("nvidia.com/gpu"), resources.GPUResource)
	assert.Equal(t, "nvidia.com/gpu.product", resources.LabelGPUProduct)
	assert.Equal(t, corev1.ResourceName("nvidia.com/mig-3g.20gb"), resources.MIGResourceName("3g.20gb"))
	assert.Equal(t, corev1.ResourceName("nvidia.com/mig-1g.10gb.me"), resources.MIGResourceName("1g.10gb+me"))

	m, _ := resources.LookupModel("A100-40GB")
	assert.Equal(t, "NVIDIA-A100-SXM4-40GB-MIG-3g.20gb", m.MIGProduct("3g.20gb"))
	assert.Equal(t, "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb.me", m.MIGProduct("1g.5gb+me"))
}
