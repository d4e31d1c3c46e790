package kubejob

import "k8s.io/utils/clock"

// SetClock makes c the time source of the orchestrators b starts from now
// on: retry backoffs and pending timeouts are timed and woken by it.
func SetClock(b *Backend, c clock.WithDelayedExecution) { b.clock = c }
