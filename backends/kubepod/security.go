package kubepod

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// RestrictedPodSecurityContext returns the pod security context that
// Kubernetes backends use by default: non-root with the RuntimeDefault
// seccomp profile, as Pod Security "restricted" requires. Each call
// returns a new value.
func RestrictedPodSecurityContext() *corev1.PodSecurityContext {
	return &corev1.PodSecurityContext{
		RunAsNonRoot:   ptr.To(true),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// RestrictedSecurityContext returns the container security context that
// Kubernetes backends use by default: no privilege escalation, every
// capability dropped, non-root, RuntimeDefault seccomp (Pod Security
// "restricted"). Each call returns a new value.
func RestrictedSecurityContext() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		RunAsNonRoot:             ptr.To(true),
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// PodSecurity returns a copy of Options.PodSecurityContext, or, when it is
// nil, [RestrictedPodSecurityContext]. o may be nil.
func (o *Options) PodSecurity() *corev1.PodSecurityContext {
	if o != nil && o.PodSecurityContext != nil {
		return o.PodSecurityContext.DeepCopy()
	}
	return RestrictedPodSecurityContext()
}

// ContainerSecurity returns a copy of Options.SecurityContext, or, when it
// is nil, [RestrictedSecurityContext]. o may be nil.
func (o *Options) ContainerSecurity() *corev1.SecurityContext {
	if o != nil && o.SecurityContext != nil {
		return o.SecurityContext.DeepCopy()
	}
	return RestrictedSecurityContext()
}
