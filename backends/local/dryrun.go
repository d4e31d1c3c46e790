package local

import (
	"errors"
	"fmt"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/runstate"
)

const msgDryRun = "dry run"

// dryRun completes the run without running a task: see "Dry run" in the
// package doc.
func (r *run) dryRun() {
	rv := backends.Values{Params: r.params} // no outputs: run-time values are unknown
	for i := range r.plan.Steps {
		r.dryStep(i, rv)
	}
	r.endSteps()
	if r.plan.Exit != nil {
		r.dryStep(len(r.plan.Steps), rv)
	}
	r.finish()
}

// dryStep records what would become of step i, deciding what it can from
// parameters and constants alone.
func (r *run) dryStep(i int, rv backends.Values) {
	s, at := r.steps[i], loc{i, -1}
	if v, decided := runstate.Upstream(s, r.upstream(i), false); decided {
		r.end(at, v.Phase, v.Message, nil)
		return
	}
	msg := msgDryRun
	if s.When != nil {
		ok, why, err := s.When.Explain(rv.Value)
		switch {
		case errors.Is(err, backends.ErrUnknown):
			msg += fmt.Sprintf("; condition %s depends on run-time values", s.When)
		case err != nil:
			r.end(at, backends.PhaseFailed, runstate.ConditionError(s.When.String(), err), nil)
			return
		case !ok:
			r.end(at, backends.PhaseSkipped, runstate.ConditionFalse(s.When.String(), why), nil)
			return
		}
	}
	if s.ForEach != nil {
		items, err := rv.Items(s)
		switch {
		case errors.Is(err, backends.ErrUnknown):
			msg += fmt.Sprintf("; fan-out over %s, known only at run time", s.ForEach.Items)
		case err != nil:
			r.end(at, backends.PhaseFailed, err.Error(), nil)
			return
		default:
			r.startFanOut(at, s.Name, len(items))
			for k := range items {
				r.end(loc{i, k}, backends.PhaseSucceeded, msgDryRun, nil)
			}
		}
	}
	r.end(at, backends.PhaseSucceeded, msg, nil)
}
