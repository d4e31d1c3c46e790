package pipeline

import "github.com/sluice-ml/sluice/internal/field"

// MaxParallelism bounds [Fan.Limit]: a cap of more instances at once than
// any cluster runs is a mistake, and every backend holds 100,000 exactly
// (Argo's parallelism, the kubejob orchestrator's count of running Jobs).
// Zero means no cap.
const MaxParallelism = 100_000

// checkFanBounds checks the numeric settings of a fan-out at path (its
// forEach): one range per field, as package task does for retries.
func (b *builder) checkFanBounds(at *field.Lazy, fe *forEach) {
	if fe.parallelism < 0 || fe.parallelism > MaxParallelism {
		p := at.Child("parallelism")
		b.errs.Add(field.Invalid(p.Path(), fe.parallelism, "must be between 0 and %d; zero means no limit", MaxParallelism))
	}
}
