package testcluster

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

func TestMapContainerPath(t *testing.T) {
	mounts := map[string]string{
		"/tmp/sluice":          "/host/pod/volumes/outputs",
		"/tmp":                 "/host/pod/tmp",
		"/dev/termination-log": "/host/pod/containers/main/termination-log",
	}
	for in, want := range map[string]string{
		"/tmp/sluice/output.json": "/host/pod/volumes/outputs/output.json", // the longest mount wins
		"/tmp/sluice":             "/host/pod/volumes/outputs",
		"/tmp/x":                  "/host/pod/tmp/x",
		"/tmp/sluicex":            "/host/pod/tmp/sluicex", // a prefix of a name is not a mount
		"/dev/termination-log":    "/host/pod/containers/main/termination-log",
		"/etc/passwd":             "/etc/passwd",
		"task":                    "task",
		`{"a":"/tmp/x"}`:          `{"a":"/tmp/x"}`, // only whole arguments are paths
	} {
		assert.Equal(t, want, mapContainerPath(mounts, in), in)
	}
}

func TestTerminationMessage(t *testing.T) {
	dir := t.TempDir()
	c := &container{
		spec:     corev1.Container{TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError},
		termPath: filepath.Join(dir, "termination-log"),
		logPath:  filepath.Join(dir, "log"),
	}
	// Longer than 4096 bytes: the kubelet keeps the last 4096.
	long := strings.Repeat("a", 5000) + strings.Repeat("z", 96)
	require.NoError(t, os.WriteFile(c.termPath, []byte(long), 0o644))
	got := terminationMessage(c)
	assert.Len(t, got, MaxTerminationMessage)
	assert.True(t, strings.HasSuffix(got, strings.Repeat("z", 96)), "keeps the end")

	// An empty file on failure falls back to the log's last 80 lines.
	require.NoError(t, os.WriteFile(c.termPath, nil, 0o644))
	var log strings.Builder
	for i := range 100 {
		log.WriteString(strings.Repeat("x", 3) + string(rune('0'+i%10)) + "\n")
	}
	require.NoError(t, os.WriteFile(c.logPath, []byte(log.String()), 0o644))
	c.exitCode = 1
	got = terminationMessage(c)
	assert.Equal(t, 80, strings.Count(got, "\n"))
	// On success, no fallback.
	c.exitCode = 0
	assert.Empty(t, terminationMessage(c))
	// Nor with the File policy.
	c.exitCode, c.spec.TerminationMessagePolicy = 1, corev1.TerminationMessageReadFile
	assert.Empty(t, terminationMessage(c))
}

func TestLogTailBytes(t *testing.T) {
	p := filepath.Join(t.TempDir(), "log")
	require.NoError(t, os.WriteFile(p, []byte(strings.Repeat("y", 3000)), 0o644))
	assert.Len(t, logTail(p), fallbackLogBytes)
}

func TestExcludeSluicePods(t *testing.T) {
	stage := []byte(`apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-ready
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:
    - {key: .status.phase, operator: In, values: [Pending]}
`)
	out, err := excludeSluicePods(stage)
	require.NoError(t, err)
	var s struct {
		Spec struct {
			Selector struct {
				MatchExpressions []struct {
					Key, Operator string
				}
			}
		}
	}
	require.NoError(t, yaml.Unmarshal(out, &s))
	exprs := s.Spec.Selector.MatchExpressions
	require.Len(t, exprs, 3)
	assert.Equal(t, ".status.phase", exprs[0].Key, "the stage's own selector stays")
	assert.Equal(t, `.metadata.labels["sluice.dev/run"]`, exprs[1].Key)
	assert.Equal(t, "DoesNotExist", exprs[1].Operator)
	assert.Equal(t, `.metadata.labels["workflows.argoproj.io/workflow"]`, exprs[2].Key)
}

func TestClaims(t *testing.T) {
	pod := func(labels map[string]string) *corev1.Pod {
		p := &corev1.Pod{}
		p.Labels = labels
		return p
	}
	assert.True(t, Claims(pod(map[string]string{LabelSluiceRun: "r"})))
	assert.True(t, Claims(pod(map[string]string{LabelArgoWorkflow: "wf"})))
	assert.False(t, Claims(pod(map[string]string{"app": "other"})))
}
