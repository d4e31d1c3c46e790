package task

import (
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/sluice-ml/sluice/internal/field"
)

// Security is a task's own security settings for its pod on the
// Kubernetes backends ([Task.WithSecurity]): the user, groups and root
// filesystem an image needs. Each field is the Kubernetes field of the
// same name and type, set over the backend's security context (by
// default Pod Security "restricted": non-root, no privilege escalation,
// every capability dropped, RuntimeDefault seccomp) one field at a time:
// a nil field keeps the backend's setting.
//
// Security holds the identity and filesystem settings only, not a whole
// corev1.SecurityContext: those fields are split between the pod's and
// the container's security context upstream (fsGroup exists only on the
// pod, readOnlyRootFilesystem only on the container), and the rest of
// them (privileged, added capabilities, privilege escalation, seccomp
// Unconfined) would weaken the pod beyond what running an image as its
// user needs; they stay as the backend sets them.
//
// # Pod Security levels
//
// A pod that runs as root (RunAsUser 0, or RunAsNonRoot false) fails Pod
// Security "restricted" and needs a namespace whose enforce level is
// "baseline" (label pod-security.kubernetes.io/enforce=baseline) or
// "privileged"; the API server refuses it in a "restricted" one. The
// backends' compile (and the program's lint) warn about every such task.
// Every other setting here (a non-root UID, groups, fsGroup, a read-only
// root filesystem) passes "restricted".
//
// # Backends
//
// kubejob and argo set RunAsUser, RunAsGroup, RunAsNonRoot and
// ReadOnlyRootFilesystem on the task's container and FSGroup and
// SupplementalGroups on its pod. Running as root (RunAsUser 0) also lifts
// the default runAsNonRoot, which the kubelet would otherwise hold
// against it. The output files of a container task stay writable with a
// read-only root filesystem (kubejob reads the output from the
// termination message file, argo mounts an emptyDir at /tmp/sluice).
// The local backend runs container tasks as host processes of the
// current user and ignores the override, as it ignores the image (see
// local.HostRunner); a custom local Runner receives it.
type Security struct {
	// RunAsUser is the UID the container's processes run as
	// (securityContext.runAsUser), 0 to 2147483647; 0 is root.
	RunAsUser *int64 `json:"runAsUser,omitempty"`
	// RunAsGroup is their primary GID (securityContext.runAsGroup), 0 to
	// 2147483647.
	RunAsGroup *int64 `json:"runAsGroup,omitempty"`
	// RunAsNonRoot, when false, lets an image whose user is root run
	// (securityContext.runAsNonRoot; the default is true). True with
	// RunAsUser 0 is a Validate error.
	RunAsNonRoot *bool `json:"runAsNonRoot,omitempty"`
	// FSGroup is the GID that owns the pod's volumes
	// (podSecurityContext.fsGroup), 0 to 2147483647.
	FSGroup *int64 `json:"fsGroup,omitempty"`
	// SupplementalGroups are more GIDs of the container's processes
	// (podSecurityContext.supplementalGroups), each 0 to 2147483647.
	SupplementalGroups []int64 `json:"supplementalGroups,omitempty"`
	// ReadOnlyRootFilesystem mounts the image's filesystem read-only
	// (securityContext.readOnlyRootFilesystem).
	ReadOnlyRootFilesystem *bool `json:"readOnlyRootFilesystem,omitempty"`
}

// WithSecurity returns a copy of t whose pod runs with the security
// settings of sec over the backend's (see [Security]); it replaces an
// earlier override as a whole.
func (t Task[In, Out]) WithSecurity(sec Security) Task[In, Out] {
	t.spec = t.spec.Clone()
	t.spec.Security = sec.Clone()
	return t
}

// Clone returns a deep copy of s; nil for nil.
func (s *Security) Clone() *Security {
	if s == nil {
		return nil
	}
	c := *s
	for _, p := range []**int64{&c.RunAsUser, &c.RunAsGroup, &c.FSGroup} {
		if *p != nil {
			v := **p
			*p = &v
		}
	}
	for _, p := range []**bool{&c.RunAsNonRoot, &c.ReadOnlyRootFilesystem} {
		if *p != nil {
			v := **p
			*p = &v
		}
	}
	c.SupplementalGroups = slices.Clone(s.SupplementalGroups)
	return &c
}

// RunsAsRoot reports whether s makes the container run as root: RunAsUser
// 0 or RunAsNonRoot false. Such a pod fails Pod Security "restricted".
func (s *Security) RunsAsRoot() bool {
	return s != nil && ((s.RunAsUser != nil && *s.RunAsUser == 0) || (s.RunAsNonRoot != nil && !*s.RunAsNonRoot))
}

// Validate reports every problem in s with paths relative to it: IDs out
// of the range Kubernetes accepts, and RunAsNonRoot true with RunAsUser 0,
// which the kubelet refuses to start.
func (s Security) Validate() error {
	var l field.List
	id := func(p *field.Path, v *int64, check func(int64) []string) {
		if v != nil {
			if msgs := check(*v); len(msgs) > 0 {
				l.Add(field.Invalid(p, *v, "%s", strings.Join(msgs, "; ")))
			}
		}
	}
	id(field.NewPath("runAsUser"), s.RunAsUser, validation.IsValidUserID)
	id(field.NewPath("runAsGroup"), s.RunAsGroup, validation.IsValidGroupID)
	id(field.NewPath("fsGroup"), s.FSGroup, validation.IsValidGroupID)
	for i, g := range s.SupplementalGroups {
		id(field.NewPath("supplementalGroups").Index(i), &g, validation.IsValidGroupID)
	}
	if s.RunAsNonRoot != nil && *s.RunAsNonRoot && s.RunAsUser != nil && *s.RunAsUser == 0 {
		l.Add(field.Invalid(field.NewPath("runAsNonRoot"), true,
			"contradicts runAsUser 0 (root): the kubelet would refuse to start the container; to run as root leave RunAsNonRoot unset (or false), else set RunAsUser to a non-zero UID"))
	}
	return l.Err()
}
