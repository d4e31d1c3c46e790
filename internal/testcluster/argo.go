package testcluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/sluice-ml/sluice/backends/argo"
)

// Where Argo's controller runs and what it reads.
const (
	ArgoNamespace = argo.DefaultControllerNamespace
	ArgoConfigMap = argo.ControllerConfigMap
	// ArgoExecutorImage is the image of Argo's executor. The kubelet
	// plays the executor's init and wait containers itself; the main
	// container of a resource template (argoexec resource ACTION) runs
	// the real executor, built by tools/e2e/build.
	ArgoExecutorImage = "quay.io/argoproj/argoexec:v3.7.18"
)

// ArgoControllerConfig returns the data of the workflow-controller
// ConfigMap the harness runs Argo with: the executor entry the README tells
// users to set so that Argo's own init and wait containers pass Pod
// Security "restricted" (argo.RestrictedExecutorConfig, the same text),
// and the controller's metrics and telemetry listeners turned off, which
// the harness does not need.
func ArgoControllerConfig() map[string]string {
	return map[string]string{
		"config": argo.RestrictedExecutorConfig + "\nmetricsConfig: {enabled: false}\ntelemetryConfig: {enabled: false}\n",
	}
}

func (c *Cluster) startArgo(ctx, pctx context.Context) error {
	exec := filepath.Join(c.bin, "argoexec")
	if _, err := os.Stat(exec); err != nil {
		return fmt.Errorf("Argo's executor: %w (tools/e2e/build builds it)", err)
	}
	c.Kubelet.setImage(ArgoExecutorImage, Image{Program: exec, Entrypoint: []string{"argoexec"}})
	if err := c.Namespace(ctx, ArgoNamespace, false); err != nil {
		return err
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: ArgoConfigMap, Namespace: ArgoNamespace},
		Data:       ArgoControllerConfig(),
	}
	if _, err := c.Client.CoreV1().ConfigMaps(ArgoNamespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	args := []string{
		"--kubeconfig=" + c.Kubeconfig,
		"--namespace=" + ArgoNamespace,
		"--configmap=" + ArgoConfigMap,
		"--executor-image=" + ArgoExecutorImage,
		"--loglevel=info",
		"--qps=" + strconv.Itoa(c.qps()), "--burst=" + strconv.Itoa(c.qps()*3/2),
	}
	env := []string{
		"LEADER_ELECTION_DISABLE=true",
		// Pods keep a finalizer until the controller has read their final
		// status: without it, a pod that is evicted and removed at once
		// (as the kubelet does) can vanish before the controller saw it
		// fail, and the node is resubmitted or marked "pod deleted".
		"ARGO_POD_STATUS_CAPTURE_FINALIZER=true",
		// Argo's own e2e tests requeue at 1s; the default 10s makes every
		// step of a DAG wait that long for the next look.
		"DEFAULT_REQUEUE_TIME=200ms",
	}
	if err := c.startProc(pctx, "workflow-controller", args, env); err != nil {
		return err
	}
	// The controller is ready once it has taken the config and started its
	// workers; its log says so.
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(context.Context) (bool, error) {
		if err := c.exited("workflow-controller"); err != nil {
			return false, err
		}
		return strings.Contains(c.Log("workflow-controller", 1<<20), "Starting Workflow Controller"), nil
	})
}
