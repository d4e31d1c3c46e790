package hpo

// State is how a trial ended.
type State string

const (
	// Complete is a trial that succeeded with a finite objective.
	Complete State = "complete"
	// Failed is a trial that failed (after its retries) or whose
	// objective was NaN or infinite.
	Failed State = "failed"
	// Pruned is reserved for trials stopped early by an early-stopping
	// rule (not yet built).
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
	// Objective is the objective of a complete trial.
	Objective float64 `json:"objective"`
	// Output is the trial's output: its zero value if the trial task
	// failed.
	Output Out `json:"output"`
	// Error says why a failed trial failed.
	Error string `json:"error,omitempty"`
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
}
