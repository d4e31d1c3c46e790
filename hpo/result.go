package hpo

import "time"

// State is how a trial ended.
type State string

const (
	// Complete is a trial that succeeded with a finite objective.
	Complete State = "complete"
	// Failed is a trial that failed (after its retries) or whose
	// objective was NaN or infinite.
	Failed State = "failed"
	// Pruned is a trial that an early-stopping rule stopped before the
	// last rung (see [EarlyStopping]); its objective is that of its last
	// complete run, at a smaller budget.
	Pruned State = "pruned"

	// running marks, inside the search, the trials of the round in
	// flight; a Result never holds one.
	running State = "running"
)

// Trial is one trial of a search.
type Trial[P, Out any] struct {
	// ID numbers the trials from 0 in the order they were proposed.
	ID int `json:"id"`
	// Round is the round that proposed the trial.
	Round int `json:"round"`
	// Params are the trial's hyperparameters.
	Params P `json:"params"`
	// State says how the trial ended.
	State State `json:"state"`
	// Objective is the objective of a complete trial, or of a pruned
	// one at its last run.
	Objective float64 `json:"objective"`
	// Output is the trial's output (at its last run, under early
	// stopping): its zero value if the trial task failed.
	Output Out `json:"output"`
	// Error says why a failed trial failed, or why a pruned one was
	// stopped.
	Error string `json:"error,omitempty"`
	// Duration is how long the trial's runs took in all, on the clock of
	// the backend that ran them (pipelinetest's virtual clock in tests).
	// A run that failed counts as 0: its output, which carries its
	// duration, is lost. A container trial's is 0: its instances report
	// only their outputs.
	Duration time.Duration `json:"duration"`
	// Budget is the budget of the trial's last run and Rungs are its
	// runs, one per rung, under early stopping; both are empty without.
	Budget float64 `json:"budget,omitempty"`
	Rungs  []Rung  `json:"rungs,omitempty"`
}

// Result is the output of a [Search]: the best trial and every trial.
type Result[P, Out any] struct {
	// BestTrial is the id of the best complete trial (the first of equal
	// ones), BestObjective its objective, BestParams its hyperparameters
	// and BestOutput its output.
	BestTrial     int     `json:"bestTrial"`
	BestObjective float64 `json:"bestObjective"`
	BestParams    P       `json:"bestParams"`
	BestOutput    Out     `json:"bestOutput"`
	// Trials are all trials, by id.
	Trials []Trial[P, Out] `json:"trials"`
	// Stopped says why the search stopped before its last round (the
	// goal was reached), or is empty.
	Stopped string `json:"stopped,omitempty"`
	// Direction is the search's: whether the objective was minimized or
	// maximized.
	Direction Direction `json:"direction,omitempty"`
	// Dims describe the searched fields, in field order, for plots.
	Dims []DimInfo `json:"dims,omitempty"`
	// Files are the search's report, stored as artifacts of the result
	// step when the run has an artifact store (see "Looking at results"
	// in the package doc); zero otherwise.
	Files Files `json:"files,omitzero"`
}
