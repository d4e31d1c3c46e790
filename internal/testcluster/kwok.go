package testcluster

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"sigs.k8s.io/yaml"
)

// Labels by which the kubelet of this package claims a pod; kwok plays
// every other pod.
const (
	LabelSluiceRun    = "sluice.dev/run"
	LabelArgoWorkflow = "workflows.argoproj.io/workflow"
)

// kwokConfig writes kwok's configuration: its options (given explicitly,
// since a configuration file turns kwok's defaults off), the node stages
// of kwok's "fast" set, and its pod stages restricted to pods that are not
// Sluice's.
func (c *Cluster) kwokConfig() (string, error) {
	var buf bytes.Buffer
	buf.WriteString(`apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokConfiguration
options:
  nodePlayStageParallelism: 4
  podPlayStageParallelism: 4
  nodeLeaseParallelism: 4
  podsOnNodeSyncParallelism: 1
  nodeLeaseDurationSeconds: 40
`)
	stages := filepath.Join(c.bin, "kwok-stages")
	for _, f := range []string{"node-initialize.yaml", "node-heartbeat-with-lease.yaml"} {
		b, err := os.ReadFile(filepath.Join(stages, f))
		if err != nil {
			return "", fmt.Errorf("kwok stages (rebuild with tools/e2e/build): %w", err)
		}
		buf.WriteString("---\n")
		buf.Write(b)
	}
	for _, f := range []string{"pod-ready.yaml", "pod-complete.yaml", "pod-delete.yaml"} {
		b, err := os.ReadFile(filepath.Join(stages, f))
		if err != nil {
			return "", fmt.Errorf("kwok stages (rebuild with tools/e2e/build): %w", err)
		}
		b, err = excludeSluicePods(b)
		if err != nil {
			return "", fmt.Errorf("kwok stage %s: %w", f, err)
		}
		buf.WriteString("---\n")
		buf.Write(b)
	}
	path := filepath.Join(c.Dir, "kwok.yaml")
	return path, os.WriteFile(path, buf.Bytes(), 0o644)
}

// excludeSluicePods adds to a pod stage's selector that the pod has
// neither label the kubelet of this package claims pods by.
func excludeSluicePods(stage []byte) ([]byte, error) {
	var s map[string]any
	if err := yaml.Unmarshal(stage, &s); err != nil {
		return nil, err
	}
	spec, _ := s["spec"].(map[string]any)
	if spec == nil {
		return nil, fmt.Errorf("no spec")
	}
	sel, _ := spec["selector"].(map[string]any)
	if sel == nil {
		sel = map[string]any{}
		spec["selector"] = sel
	}
	exprs, _ := sel["matchExpressions"].([]any)
	for _, l := range []string{LabelSluiceRun, LabelArgoWorkflow} {
		exprs = append(exprs, map[string]any{
			"key":      fmt.Sprintf(".metadata.labels[%q]", l),
			"operator": "DoesNotExist",
		})
	}
	sel["matchExpressions"] = exprs
	return yaml.Marshal(s)
}
