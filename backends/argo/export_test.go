package argo

import wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"

// InfraFailure is how Watch tells an infrastructure failure from the
// attempt's phase, exit code and message.
func InfraFailure(phase wfv1.NodePhase, exitCode, message string) bool {
	return infraFailure(phase, exitCode, message)
}
