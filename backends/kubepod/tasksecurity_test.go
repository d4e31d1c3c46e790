package kubepod_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/pod-security-admission/api"

	"github.com/sluice-ml/sluice/backends/backendtest"
	"github.com/sluice-ml/sluice/backends/kubepod"
)

// A namespace's enforce level refuses the pods of tasks whose override
// fails it, named with the level they need; a level they pass, none and
// an unknown one do not.
func TestCheckSecurityLevel(t *testing.T) {
	plan, err := backendtest.Security("registry.example/sh:1").Plan(nil)
	require.NoError(t, err)

	err = kubepod.CheckSecurityLevel(nil, plan, "ml", api.LevelRestricted)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `namespace "ml" enforces Pod Security "restricted"`)
	assert.Contains(t, err.Error(), `step "root" needs "baseline" (runAsNonRoot != true`)
	assert.Contains(t, err.Error(), "pod-security.kubernetes.io/enforce=baseline")
	assert.NotContains(t, err.Error(), `"uid"`)

	for _, l := range []api.Level{api.LevelBaseline, api.LevelPrivileged, "", "bogus"} {
		assert.NoError(t, kubepod.CheckSecurityLevel(nil, plan, "ml", l), l)
	}

	warn := kubepod.SecurityWarnings(nil, plan)
	require.Len(t, warn, 1)
	assert.Contains(t, warn[0], `step "root"`)
}
