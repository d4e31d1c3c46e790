package backends

import (
	"encoding/json"
	"slices"
	"time"
)

// Phase is the state of a run, a step or an attempt.
type Phase string

const (
	PhasePending   Phase = "Pending"   // not started
	PhaseRunning   Phase = "Running"   // started, not finished
	PhaseSucceeded Phase = "Succeeded" // finished with an output
	PhaseFailed    Phase = "Failed"    // finished without one, budgets used up
	PhaseSkipped   Phase = "Skipped"   // its condition was false, or an upstream step was skipped or failed
	PhaseCached    Phase = "Cached"    // its output came from the cache
	PhaseCanceled  Phase = "Canceled"  // stopped by Cancel
)

// Done reports whether p is final.
func (p Phase) Done() bool {
	switch p {
	case PhaseSucceeded, PhaseFailed, PhaseSkipped, PhaseCached, PhaseCanceled:
		return true
	}
	return false
}

// Reason says which retry budget a failed attempt consumed.
type Reason string

const (
	// ReasonApp: the task failed (error, non-zero exit, timeout).
	ReasonApp Reason = "app"
	// ReasonInfra: the infrastructure failed it (preemption, eviction,
	// node loss).
	ReasonInfra Reason = "infra"
)

// Attempt is one try of a step.
type Attempt struct {
	// Number counts attempts from 1.
	Number int `json:"number"`
	// Phase is Running, Succeeded, Failed or Canceled (stopped by
	// Cancel; such an attempt consumes no budget).
	Phase Phase `json:"phase"`
	// Reason is set for a failed attempt.
	Reason Reason `json:"reason,omitempty"`
	// Message says why it failed.
	Message string `json:"message,omitempty"`
	// OnDemand is true when this attempt fell back to on-demand capacity.
	OnDemand bool      `json:"onDemand,omitempty"`
	Started  time.Time `json:"started,omitzero"`
	Finished time.Time `json:"finished,omitzero"`
}

// StepStatus is the state of one step.
type StepStatus struct {
	Name     string          `json:"name"`
	Phase    Phase           `json:"phase"`
	Attempts []Attempt       `json:"attempts,omitempty"`
	Output   json.RawMessage `json:"output,omitempty"`
	Message  string          `json:"message,omitempty"`
	// CacheKey is the step's cache key when caching is enabled.
	CacheKey string    `json:"cacheKey,omitempty"`
	Started  time.Time `json:"started,omitzero"`
	Finished time.Time `json:"finished,omitzero"`
	// Instances are the per-element runs of a ForEach step, in element
	// order.
	Instances []StepStatus `json:"instances,omitempty"`
}

// RunStatus is the state of a run, in the same shape for every backend.
type RunStatus struct {
	RunID    string    `json:"runID"`
	Pipeline string    `json:"pipeline"`
	Phase    Phase     `json:"phase"`
	Message  string    `json:"message,omitempty"`
	Started  time.Time `json:"started,omitzero"`
	Finished time.Time `json:"finished,omitzero"`
	// Steps are in plan order; the exit handler, if any, is last.
	Steps []StepStatus `json:"steps"`
}

// Step returns the status of the step named name, or nil.
func (s *RunStatus) Step(name string) *StepStatus {
	for i := range s.Steps {
		if s.Steps[i].Name == name {
			return &s.Steps[i]
		}
	}
	return nil
}

// Clone returns a deep copy of s, for handing out snapshots.
func (s *RunStatus) Clone() *RunStatus {
	c := *s
	c.Steps = cloneSteps(s.Steps)
	return &c
}

func cloneSteps(in []StepStatus) []StepStatus {
	out := slices.Clone(in)
	for i := range out {
		out[i].Attempts = slices.Clone(out[i].Attempts)
		out[i].Output = slices.Clone(out[i].Output)
		out[i].Instances = cloneSteps(out[i].Instances)
	}
	return out
}

// RunInfo is what the exit handler learns about the run it ends, through
// pipeline's Status reference.
type RunInfo struct {
	// Phase is Succeeded, Failed or Canceled.
	Phase Phase `json:"phase"`
	// Failed names the steps that failed, in plan order.
	Failed []string `json:"failed,omitempty"`
}
