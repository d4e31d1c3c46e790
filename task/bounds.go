package task

import (
	"math"
	"time"

	"github.com/sluice-ml/sluice/internal/field"
)

// The ranges of a task's numeric fields. Each is generous for real
// pipelines and small enough that every backend represents it exactly:
// Kubernetes keeps backoffLimit and activeDeadlineSeconds in 32 bits, Argo
// keeps its retry limit and backoff factor as int32 intstr values, and the
// kubejob orchestrator names one Job per infrastructure retry. Validate
// reports a value outside its range at the field, with the range.
const (
	// MaxRetries bounds Retry.App, Retry.Infra and their sum, so that
	// MaxAttempts is at most MaxRetries+1.
	MaxRetries = 1000
	// MaxBackoffFactor bounds Backoff.Factor: a factor of 100 reaches
	// MaxBackoffDelay from a millisecond in five retries.
	MaxBackoffFactor = 100
	// MaxBackoffDelay bounds Backoff.Initial and Backoff.Max; it is also
	// the cap of a backoff whose Max is zero, so a delay never overflows.
	MaxBackoffDelay = 24 * time.Hour
	// MaxTimeout bounds Timeout and Retry.PendingTimeout: 365 days, well
	// within the 2³¹−1 seconds of activeDeadlineSeconds.
	MaxTimeout = 365 * 24 * time.Hour
)

// ValidateTimeout reports a Timeout (of a task or of a pipeline's
// defaults) outside [0, MaxTimeout]. The error's path is empty: the
// caller re-roots it under the field that holds d.
func ValidateTimeout(d time.Duration) error {
	var l field.List
	l.Add(checkDuration(nil, d, MaxTimeout, "zero means no timeout"))
	return l.Err()
}

// checkRetryBounds checks the numeric fields of r, with paths relative to
// the policy: one rule per field.
func checkRetryBounds(l *field.List, r Retry) {
	app := checkCount(l, field.NewPath("app"), r.App, MaxRetries)
	infra := checkCount(l, field.NewPath("infra"), r.Infra, MaxRetries)
	if app && infra && r.App+r.Infra > MaxRetries {
		l.Add(field.Invalid(field.NewPath("infra"), r.Infra,
			"app + infra must be at most %d (app is %d): the budgets share one attempt counter on every backend", MaxRetries, r.App))
	}
	b := field.NewPath("backoff")
	l.Add(checkDuration(b.Child("initial"), r.Backoff.Initial, MaxBackoffDelay, "zero retries at once"))
	l.Add(checkDuration(b.Child("max"), r.Backoff.Max, MaxBackoffDelay, "zero means a cap of "+MaxBackoffDelay.String()))
	if f := r.Backoff.Factor; math.IsNaN(f) || math.IsInf(f, 0) || (f != 0 && (f < 1 || f > MaxBackoffFactor)) {
		l.Add(field.Invalid(b.Child("factor"), r.Backoff.Factor, "must be between 1 and %d, or 0 for the default of 2", MaxBackoffFactor))
	}
	if r.Backoff.Max > 0 && r.Backoff.Max < r.Backoff.Initial {
		l.Add(field.Invalid(b.Child("max"), r.Backoff.Max.String(), "must not be less than backoff.initial (%v)", r.Backoff.Initial))
	}
	l.Add(checkDuration(field.NewPath("pendingTimeout"), r.PendingTimeout, MaxTimeout, "zero means no pending timeout"))
}

// checkCount reports n outside [0, max] and says whether n is in range.
func checkCount(l *field.List, p *field.Path, n, max int) bool {
	if n < 0 || n > max {
		l.Add(field.Invalid(p, n, "must be between 0 and %d", max))
		return false
	}
	return true
}

// checkDuration reports d outside [0, max]; zero says what zero means.
func checkDuration(p *field.Path, d, max time.Duration, zero string) *field.Error {
	if d < 0 || d > max {
		return field.Invalid(p, d.String(), "must be between 0 and %v; %s", max, zero)
	}
	return nil
}
