package kubejob

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/pod-security-admission/api"

	"github.com/sluice-ml/sluice/backends/kubepod"
)

// checkPodSecurity fails, before anything is created, when namespace ns
// enforces a Pod Security level that the pod of a task with a security
// override fails (a task running as root in a "restricted" namespace):
// the API server accepts such a Job but refuses its pods, and the step
// would wait for a pod that never comes. A namespace it cannot read (no
// permission: namespaces are cluster-scoped) is not checked.
func (b *Backend) checkPodSecurity(ctx context.Context, client kubernetes.Interface, ns string, art *compiled) error {
	if !hasSecurityOverride(art) {
		return nil
	}
	n, err := client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	if err := kubepod.CheckSecurityLevel(&b.opts.Pod, art.plan, ns, api.Level(n.Labels[api.EnforceLevelLabel])); err != nil {
		return fmt.Errorf("kubejob: %w", err)
	}
	return nil
}

func hasSecurityOverride(art *compiled) bool {
	for _, s := range art.plan.Steps {
		if s.Task.Security != nil {
			return true
		}
	}
	return art.plan.Exit != nil && art.plan.Exit.Task.Security != nil
}
