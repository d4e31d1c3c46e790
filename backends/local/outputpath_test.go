package local_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/backends/backendtest"
	"github.com/sluice-ml/sluice/backends/local"
	"github.com/sluice-ml/sluice/task"
)

// A real shell script writes its output to the path of its
// {{outputs.Field}} placeholder: on the host, the output's file under the
// attempt's output directory, in the arguments and in the environment.
func TestHostRunnerOutputPlaceholder(t *testing.T) {
	requireShell(t)
	var log syncBuffer
	st, err := run(t, backendtest.OutputPlaceholder("alpine:3"), &local.Options{Log: &log}, nil)
	require.NoError(t, err, log.String())
	assert.JSONEq(t, `{"greeting":"hello world x2"}`, string(stepOf(t, st, "greet").Output))

	m := regexp.MustCompile(`\[greet\] wrote (\S+)`).FindStringSubmatch(log.String())
	require.NotNil(t, m, log.String())
	wrote := m[1]
	assert.True(t, filepath.IsAbs(wrote), wrote)
	assert.True(t, strings.HasSuffix(wrote, filepath.FromSlash(task.OutputDir+"/greeting")), "under the attempt's directory: %s", wrote)
	assert.NotEqual(t, task.OutputDir+"/greeting", wrote, "a host path, not the container path")
	_, err = os.Stat(wrote)
	assert.ErrorIs(t, err, os.ErrNotExist, "the attempt's directory is removed after it")
}

// A Runner that does not implement OutputPather gets the container path.
func TestRunnerOutputPlaceholderContainerPath(t *testing.T) {
	stub := &stubRunner{fn: func(_ int, c local.Container) (map[string][]byte, error) {
		return map[string][]byte{"greeting": []byte(c.Args[2])}, nil
	}}
	st, err := run(t, backendtest.OutputPlaceholder("alpine:3"), &local.Options{Runner: stub}, nil)
	require.NoError(t, err)
	assert.JSONEq(t, `{"greeting":"/tmp/sluice/outputs/greeting"}`, string(stepOf(t, st, "greet").Output))
	require.Len(t, stub.got, 1)
	assert.Equal(t, []string{"world", "2", "/tmp/sluice/outputs/greeting"}, stub.got[0].Args)
	assert.Equal(t, "/tmp/sluice/outputs/greeting", stub.got[0].Env[0].Value)
	assert.Nil(t, stub.got[0].Security)
}

// The host runner ignores a security override (it runs as the current
// user); a Runner receives it.
func TestSecurityOverrideLocally(t *testing.T) {
	requireShell(t)
	st, err := run(t, backendtest.Security("alpine:3"), nil, nil)
	require.NoError(t, err)
	for _, s := range []string{"plain", "uid", "root"} {
		assert.JSONEq(t, `{"greeting":"hello `+s+` x1"}`, string(stepOf(t, st, s).Output), s)
	}

	stub := &stubRunner{fn: func(_ int, c local.Container) (map[string][]byte, error) {
		return map[string][]byte{"greeting": []byte("x")}, nil
	}}
	_, err = run(t, backendtest.Security("alpine:3"), &local.Options{Runner: stub, Parallelism: 1}, nil)
	require.NoError(t, err)
	got := map[string]*task.Security{}
	for _, c := range stub.got {
		got[c.Step] = c.Security
	}
	assert.Nil(t, got["plain"])
	require.NotNil(t, got["root"])
	assert.Equal(t, int64(0), *got["root"].RunAsUser)
	require.NotNil(t, got["uid"])
	assert.Equal(t, []int64{4000}, got["uid"].SupplementalGroups)
}
