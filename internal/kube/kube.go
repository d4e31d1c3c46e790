// Package kube holds what Sluice's Kubernetes backends share about talking
// to an API server.
package kube

import (
	"context"
	"errors"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/sluice-ml/sluice/backends"
)

// Transient reports whether a failed API call may succeed when it is made
// again: trouble on the server's side (500, 503, 504, 429, timeouts),
// conflicts with concurrent writers, and failures of the connection
// itself. An error that describes the request (invalid, bad request,
// forbidden, unauthorized, not found, too large, method not supported,
// not acceptable) or a canceled or expired context is not: making the
// same call again cannot help. Nil is not transient, and errors joined
// with errors.Join are transient only if every one of them is.
func Transient(err error) bool {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs := j.Unwrap()
		for _, e := range errs {
			if !Transient(e) {
				return false
			}
		}
		return len(errs) > 0
	}
	switch {
	case err == nil:
		return false
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err), apierrors.IsForbidden(err),
		apierrors.IsUnauthorized(err), apierrors.IsNotFound(err), apierrors.IsRequestEntityTooLargeError(err),
		apierrors.IsMethodNotSupported(err), apierrors.IsNotAcceptable(err), apierrors.IsUnsupportedMediaType(err),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	}
	return true
}

// PodSecurityContext returns a copy of override, or, when it is nil, the
// restricted default ([backends.RestrictedPodSecurityContext]).
func PodSecurityContext(override *corev1.PodSecurityContext) *corev1.PodSecurityContext {
	if override != nil {
		return override.DeepCopy()
	}
	return backends.RestrictedPodSecurityContext()
}

// SecurityContext returns a copy of override, or, when it is nil, the
// restricted default ([backends.RestrictedSecurityContext]).
func SecurityContext(override *corev1.SecurityContext) *corev1.SecurityContext {
	if override != nil {
		return override.DeepCopy()
	}
	return backends.RestrictedSecurityContext()
}
