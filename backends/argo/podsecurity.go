package argo

import (
	"context"
	"fmt"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"sigs.k8s.io/yaml"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/kubepod"
)

// Argo's workflow controller adds an init and a wait container (the
// executor) to every pod of a workflow, with the security context of the
// "executor" entry of its ConfigMap. In a namespace that enforces Pod
// Security "restricted" the API server refuses the pods unless that
// security context passes too.
const (
	// ControllerConfigMap is the name of the workflow controller's
	// ConfigMap, in Options.ControllerNamespace.
	ControllerConfigMap = "workflow-controller-configmap"
	// DefaultControllerNamespace is where Argo's manifests install the
	// controller; the default of Options.ControllerNamespace.
	DefaultControllerNamespace = "argo"
	// RestrictedExecutorConfig is the entry of the workflow controller's
	// ConfigMap data that makes Argo's init and wait containers pass Pod
	// Security "restricted" (8737 is the user of the argoexec image).
	RestrictedExecutorConfig = `executor:
  securityContext:
    runAsNonRoot: true
    runAsUser: 8737
    allowPrivilegeEscalation: false
    capabilities: {drop: [ALL]}
    seccompProfile: {type: RuntimeDefault}
`

	labelEnforce = api.EnforceLevelLabel // pod-security.kubernetes.io/enforce
)

// CheckExecutorConfig reports whether the executor settings in data, the
// data of Argo's workflow-controller ConfigMap (either the keys of Argo's
// configuration, or one key "config" holding all of it), let the init and
// wait containers Argo adds to a workflow's pods pass Pod Security
// "restricted". pod is the workflow's pod security context (the one
// Compile sets, or Options.Pod.PodSecurityContext); nil checks the executor's
// own settings alone. It returns nil when they pass, else an error that
// says what fails and the entry to add ([RestrictedExecutorConfig]).
func CheckExecutorConfig(data map[string]string, pod *corev1.PodSecurityContext) error {
	if err := checkExecutor(data, pod, "the workflow controller's ConfigMap"); err != nil {
		return fmt.Errorf("argo: %w", err)
	}
	return nil
}

// checkExecutor is CheckExecutorConfig; cm names the ConfigMap in errors.
func checkExecutor(data map[string]string, pod *corev1.PodSecurityContext, cm string) error {
	exec, err := executorOf(data)
	if err != nil {
		return fmt.Errorf("%s: %w", cm, err)
	}
	add, replace := "add this entry to its data", "replace its executor entry with this one"
	if _, ok := data["config"]; ok {
		add, replace = `add this to the YAML of its key "config"`, `replace the executor in the YAML of its key "config" with this`
	}
	if exec == nil || exec.SecurityContext == nil {
		return fmt.Errorf("%s sets no security context for the executor (Argo's init and wait containers), "+
			"so the API server refuses every pod; %s:\n%s", cm, add, RestrictedExecutorConfig)
	}
	spec := &corev1.PodSpec{
		SecurityContext: pod,
		InitContainers:  []corev1.Container{{Name: "init", SecurityContext: exec.SecurityContext}},
		Containers:      []corev1.Container{{Name: "wait", SecurityContext: exec.SecurityContext}},
	}
	ev, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		return fmt.Errorf("pod security checks: %w", err)
	}
	res := policy.AggregateCheckResults(ev.EvaluatePod(api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()}, &metav1.ObjectMeta{}, spec))
	if !res.Allowed {
		return fmt.Errorf("the executor security context in %s fails Pod Security \"restricted\" (%s), "+
			"so the API server refuses every pod; %s:\n%s", cm, res.ForbiddenDetail(), replace, RestrictedExecutorConfig)
	}
	return nil
}

// executorOf reads the executor container from the controller ConfigMap's
// data as Argo does: one key "config" holding the whole configuration in
// YAML, or one key per top-level field. It reads only the executor, so
// fields it does not know are not an error.
func executorOf(data map[string]string) (*corev1.Container, error) {
	var cfg struct {
		Executor *corev1.Container `json:"executor"`
	}
	if raw, ok := data["config"]; ok {
		if err := yaml.Unmarshal([]byte(raw), &cfg); err != nil {
			return nil, fmt.Errorf("key config: %w", err)
		}
		return cfg.Executor, nil
	}
	raw, ok := data["executor"]
	if !ok {
		return nil, nil
	}
	var c corev1.Container
	if err := yaml.Unmarshal([]byte(raw), &c); err != nil {
		return nil, fmt.Errorf("key executor: %w", err)
	}
	return &c, nil
}

// checkPodSecurity fails when the run's namespace enforces a Pod
// Security level that the pod of a task of plan (nil: none) with a
// security override fails (kubepod.CheckSecurityLevel), or enforces
// "restricted" and the workflow controller's executor would not pass it,
// before anything is created. What it cannot read (no Kubernetes client,
// a Forbidden or NotFound namespace or ConfigMap) it does not check.
func (b *Backend) checkPodSecurity(ctx context.Context, spec *wfv1.WorkflowSpec, plan *backends.Plan) error {
	kc := b.kubeClient()
	if kc == nil {
		return nil
	}
	ns := b.namespace()
	var level string
	err := retryAPI(ctx, func() error {
		n, err := kc.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err == nil {
			level = n.Labels[labelEnforce]
		}
		return err
	})
	switch {
	case apierrors.IsForbidden(err) || apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("argo: read namespace %q for its Pod Security level: %w", ns, err)
	}
	if plan != nil {
		if err := kubepod.CheckSecurityLevel(&b.opts.Pod, plan, ns, api.Level(level)); err != nil {
			return fmt.Errorf("argo: %w", err)
		}
	}
	switch {
	case level != string(api.LevelRestricted):
		return nil
	}
	cns := b.opts.ControllerNamespace
	if cns == "" {
		cns = DefaultControllerNamespace
	}
	var data map[string]string
	err = retryAPI(ctx, func() error {
		cm, err := kc.CoreV1().ConfigMaps(cns).Get(ctx, ControllerConfigMap, metav1.GetOptions{})
		if err == nil {
			data = cm.Data
		}
		return err
	})
	switch {
	case apierrors.IsForbidden(err) || apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("argo: read the workflow controller's ConfigMap %s/%s: %w", cns, ControllerConfigMap, err)
	}
	if err := checkExecutor(data, spec.SecurityContext, "ConfigMap "+cns+"/"+ControllerConfigMap); err != nil {
		return fmt.Errorf("argo: namespace %q enforces Pod Security \"restricted\", and %w", ns, err)
	}
	return nil
}
