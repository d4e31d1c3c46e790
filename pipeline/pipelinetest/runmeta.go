package pipelinetest

import "time"

// RunOptions are the settings of one run in an [Env], for [Env.RunWith]:
// its parameters and what the run knows of itself, so that a pipeline
// that names its data from the run (pipeline.RunID, pipeline.RunStarted,
// pipeline.RunScheduled) is tested with fixed values.
type RunOptions struct {
	// Params overrides parameter defaults, as -p name=value does.
	Params map[string]string
	// RunID is the run's id, what pipeline.RunID gives; empty means
	// <pipeline>-<n>, counting the Env's runs of the pipeline. Runs that
	// share an id share their artifacts in the Env's store.
	RunID string
	// Start, if set, sets the Env's virtual clock to it before the run:
	// the run starts then (pipeline.RunStarted, Status.Started), and
	// the clock goes on from there. It may be earlier than the clock's
	// time.
	Start time.Time
	// Scheduled, if set, is the time the run is for, what
	// pipeline.RunScheduled gives, as if a scheduler had started the
	// run for it; zero means the start.
	Scheduled time.Time
}

// set moves the clock to t, forwards or backwards, without firing timers.
func (c *Clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}
