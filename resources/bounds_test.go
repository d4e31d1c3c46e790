package resources_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/sluice-ml/sluice/resources"
)

// Quantities are compared with their bounds exactly, on the text:
// resource.Quantity clamps "9Ei" to 2⁶³−1, which used to pass.
func TestQuantityBoundsAreExact(t *testing.T) {
	for s, ok := range map[string]bool{
		"8Ei": true, "9223372036854775808": true, "8192Pi": true, "9.223372036854775808E": true, "1n": true, "0.5n": true,
		"9Ei": false, "8.1Ei": false, "100Ei": false, "9223372036854775809": false, "8193Pi": false, "1e19": false,
		"9.3E": false, "10E": false, "0.0000000009223372036854775809e28": false,
	} {
		err := resources.Profile{Memory: s}.Validate()
		assert.Equal(t, ok, err == nil, "%s: %v", s, err)
	}
	for s, ok := range map[string]bool{"8Pi": true, "9007199254740992": true, "9007199254740993": false, "9Pi": false, "8Ei": false} {
		err := resources.Profile{CPU: s}.Validate()
		assert.Equal(t, ok, err == nil, "cpu %s: %v", s, err)
	}
}

func TestGPUBounds(t *testing.T) {
	assert.NoError(t, resources.Profile{GPUs: resources.MaxGPUs}.Validate())
	assert.Error(t, resources.Profile{GPUs: resources.MaxGPUs + 1}.Validate())
	assert.NoError(t, resources.NodePool{Name: "a", Node: resources.Capacity{GPUs: resources.MaxGPUs}}.Validate())
	assert.Error(t, resources.NodePool{Name: "a", Node: resources.Capacity{GPUs: resources.MaxGPUs + 1}}.Validate())
}
