package kubejob

import (
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"

	"github.com/sluice-ml/sluice/backends"
)

// SetClock makes c the time source of the orchestrators b starts from now
// on: retry backoffs and pending timeouts are timed and woken by it.
func SetClock(b *Backend, c clock.WithDelayedExecution) { b.clock = c }

// FailedJobAttempt is what the orchestrator makes of a failed Job of step
// s whose failed pod is gone: the pod its Failed condition names and the
// attempt it stands for.
func FailedJobAttempt(s *backends.Step, j *batchv1.Job) (pod string, a backends.Attempt, retriable bool) {
	f := failJobRule(s, j)
	return f.pod, f.attempt(s, j, false), f.kind != failInvalid
}

// Connect connects b as its first Submit does and returns its client.
func Connect(b *Backend) (kubernetes.Interface, string, error) { return b.connect() }
