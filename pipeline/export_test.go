package pipeline

import "time"

// SetStopGrace shortens how long the task mode waits for a stopped task,
// for the duration of a test.
func SetStopGrace(d time.Duration) (restore func()) {
	old := stopGrace
	stopGrace = d
	return func() { stopGrace = old }
}
