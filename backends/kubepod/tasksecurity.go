package kubepod

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"k8s.io/utils/ptr"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/task"
)

// applySecurity sets a task's security override (see [task.Security])
// over the pod and container security contexts, in place: the container
// settings on ctr, fsGroup and the supplemental groups on pod. Running as
// root lifts runAsNonRoot unless the override sets it: explicitly false
// on the container, unset on the pod, so the kubelet does not refuse the
// container.
func applySecurity(pod *corev1.PodSecurityContext, ctr *corev1.SecurityContext, sec *task.Security) {
	if sec == nil {
		return
	}
	if sec.RunAsUser != nil {
		ctr.RunAsUser = ptr.To(*sec.RunAsUser)
	}
	if sec.RunAsGroup != nil {
		ctr.RunAsGroup = ptr.To(*sec.RunAsGroup)
	}
	if sec.ReadOnlyRootFilesystem != nil {
		ctr.ReadOnlyRootFilesystem = ptr.To(*sec.ReadOnlyRootFilesystem)
	}
	switch {
	case sec.RunAsNonRoot != nil:
		ctr.RunAsNonRoot = ptr.To(*sec.RunAsNonRoot)
	case sec.RunsAsRoot():
		ctr.RunAsNonRoot = ptr.To(false)
	}
	if sec.RunsAsRoot() {
		pod.RunAsNonRoot = nil
	}
	if sec.FSGroup != nil {
		pod.FSGroup = ptr.To(*sec.FSGroup)
	}
	if sec.SupplementalGroups != nil {
		pod.SupplementalGroups = append([]int64(nil), sec.SupplementalGroups...)
	}
}

// PodSecurityLevel returns the strictest Pod Security level (restricted,
// baseline, privileged) that pod passes, as the API server's admission
// evaluates it at the latest policy version, and, when it is not
// "restricted", why it fails "restricted".
func PodSecurityLevel(pod *corev1.PodSpec) (level api.Level, why string, err error) {
	ev, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		return "", "", fmt.Errorf("pod security checks: %w", err)
	}
	for _, l := range []api.Level{api.LevelRestricted, api.LevelBaseline} {
		res := policy.AggregateCheckResults(ev.EvaluatePod(api.LevelVersion{Level: l, Version: api.LatestVersion()}, &metav1.ObjectMeta{}, pod))
		if res.Allowed {
			return l, why, nil
		}
		if why == "" {
			why = res.ForbiddenDetail()
		}
	}
	return api.LevelPrivileged, why, nil
}

// SecurityWarnings returns a warning for each step of plan (the exit
// handler included) whose task's
// security override ([task.Security]) makes its pod, as [Spec] renders it
// with opts, fail Pod Security "restricted": it names the level the
// namespace must enforce at most. Kubernetes backends return them from
// their compiled artifacts (backends.Warner). opts may be nil.
func SecurityWarnings(opts *Options, plan *backends.Plan) []string {
	var out []string
	for _, s := range stepsOf(plan) {
		if s.Task.Security == nil {
			continue
		}
		pod, err := Spec(opts, s, Invocation{ServiceAccount: AccessName(plan.Name, s.Name)})
		if err != nil {
			continue // compiling the step reports it
		}
		level, why, err := PodSecurityLevel(&pod)
		if err != nil {
			out = append(out, fmt.Sprintf("step %q: %v", s.Name, err))
			continue
		}
		if level == api.LevelRestricted {
			continue
		}
		out = append(out, fmt.Sprintf("step %q: its security override (task.WithSecurity) fails Pod Security \"restricted\" (%s): "+
			"the API server refuses its pod in a namespace that enforces \"restricted\"; run it in one labelled %s=%s",
			s.Name, why, api.EnforceLevelLabel, level))
	}
	return out
}

// CheckSecurityLevel returns an error naming every step of plan whose
// task's security override makes its pod fail level, the Pod Security
// level that namespace ns enforces (its label
// pod-security.kubernetes.io/enforce): the API server would refuse the
// pod, and a Job's pod is refused without failing the Job. nil when every
// such pod passes, and for an empty or unknown level (nothing enforced).
// Backends call it before they create anything. opts may be nil.
func CheckSecurityLevel(opts *Options, plan *backends.Plan, ns string, level api.Level) error {
	want, err := api.ParseLevel(string(level))
	if err != nil || want == api.LevelPrivileged {
		return nil
	}
	var bad []string
	need := want
	for _, s := range stepsOf(plan) {
		if s.Task.Security == nil {
			continue
		}
		pod, err := Spec(opts, s, Invocation{ServiceAccount: AccessName(plan.Name, s.Name)})
		if err != nil {
			continue
		}
		got, why, err := PodSecurityLevel(&pod)
		if err != nil {
			return err
		}
		if got == api.LevelPrivileged || (got == api.LevelBaseline && want == api.LevelRestricted) {
			bad = append(bad, fmt.Sprintf("step %q needs %q (%s)", s.Name, got, why))
			if got == api.LevelPrivileged || need == api.LevelRestricted {
				need = got
			}
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("namespace %q enforces Pod Security %q, and the API server would refuse the pods of tasks whose security override (task.WithSecurity) fails it: %s; "+
		"run in a namespace labelled %s=%s, or change the override", ns, want, strings.Join(bad, "; "), api.EnforceLevelLabel, need)
}

// stepsOf returns the steps of plan, the exit handler last.
func stepsOf(plan *backends.Plan) []*backends.Step {
	steps := make([]*backends.Step, 0, len(plan.Steps)+1)
	for i := range plan.Steps {
		steps = append(steps, &plan.Steps[i])
	}
	if plan.Exit != nil {
		steps = append(steps, plan.Exit)
	}
	return steps
}
