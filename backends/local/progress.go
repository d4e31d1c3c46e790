package local

import (
	"context"
	"slices"
	"time"

	"github.com/sluice-ml/sluice/backends"
)

// How a watcher paces the snapshots it reports (see run.watch). A snapshot
// is a copy of the array of step statuses, so it costs in proportion to
// the steps of the run, not to what changed: with no pacing, a watcher of
// a run of 100 000 short tasks spent all its time copying snapshots, a
// core's worth.
const (
	// paceSteps is the size from which a run's snapshots are paced:
	// smaller runs have every change reported as soon as the watcher
	// can, their snapshots costing microseconds.
	paceSteps = 1024
	// paceFactor: after a snapshot, the watcher lets the run make
	// paceFactor times as many changes as it made while the snapshot
	// was copied and reported before it reports the next. The watcher
	// thus spends about 1/(paceFactor+1) of the run's time on snapshots
	// when the run changes faster than it can report, and none is held
	// back when the run changes slowly (none changed meanwhile). The
	// pace is the run's own, measured in changes, not on a clock.
	paceFactor = 64
	// quietAfter is how long a change held back by the pace waits when
	// the run makes no other change: a run whose tasks all run long
	// shows its last changes after quietAfter, not when a task ends.
	quietAfter = 100 * time.Millisecond
)

// nextReport is the version from which a watcher reports the next
// snapshot of a run of n steps, when it began copying the last one at
// version v and the status was at version now once it had reported it;
// zero means at once, as soon as anything changed.
func nextReport(n int, v, now uint64) uint64 {
	if n < paceSteps || now == v {
		return 0
	}
	return now + paceFactor*(now-v)
}

// watch calls progress with snapshots of the status until the run is over
// (see Backend.Watch), and returns the last status, or the current one
// and ctx.Err() when ctx ends first.
//
// Snapshots are immutable (see mirror). The first is reported at once;
// then the changes of a run of at least paceSteps steps are coalesced at
// the pace nextReport sets, a change held back being reported anyway once
// the run made no other change for quietAfter; the last status is always
// reported.
func (r *run) watch(ctx context.Context, progress func(*backends.RunStatus)) (*backends.RunStatus, error) {
	var (
		m        mirror
		reported uint64 // the version of the last snapshot reported; 0: none
		next     uint64 // see nextReport
		quiet    *time.Timer
	)
	defer func() {
		if quiet != nil {
			quiet.Stop()
		}
	}()
	for {
		over := r.sync(&m)
		if m.seen != reported && (m.seen >= next || over) {
			v := m.seen
			progress(m.snapshot())
			reported = v
			if over {
				return cloneStatus(&m.st), nil
			}
			m.own()    // the copy of the array the next change needs, counted in the pace
			r.sync(&m) // what changed meanwhile
			next = nextReport(len(m.st.Steps), v, m.seen)
			continue
		}
		if over { // and reported
			return cloneStatus(&m.st), nil
		}
		wake := r.waitFor(max(next, m.seen+1))
		var quietC <-chan time.Time
		held := m.seen // a change is held back when held != reported
		if held != reported {
			if quiet == nil {
				quiet = time.NewTimer(quietAfter)
			} else {
				quiet.Reset(quietAfter)
			}
			quietC = quiet.C
		}
		select {
		case <-wake:
		case <-r.overCh:
		case <-quietC:
			if over := r.sync(&m); over || m.seen == held {
				next = 0 // the run is quiet: report what was held back
			}
		case <-ctx.Done():
			return r.current(), ctx.Err()
		}
	}
}

// mirror is a watcher's own copy of a run's status, which it brings up to
// date by copying only the steps that changed since (sync), and from which
// it makes snapshots (snapshot). Copying a status of 100 000 steps takes
// milliseconds, during which no step could change state; a watcher copies
// its mirror without holding the run's lock.
//
// The mirror shares the attempts, output and instances of a step whose
// phase is final with the run's status, which no longer changes them (see
// run.mu), and has its own copies of the others', which it replaces when
// the step changes, never changing them in place. A snapshot is the
// mirror's status as it is, and the mirror copies its array of steps
// before it next changes it: so a snapshot never changes, and each costs
// one copy of the array, made by the next sync that finds a change.
type mirror struct {
	st     backends.RunStatus
	seen   uint64 // the version st is at; versions start at 1, 0 is none
	handed bool   // st.Steps is a snapshot's: copy it before changing it
}

// sync brings m up to date and reports whether the run is over.
func (r *run) sync(m *mirror) (over bool) {
	if m.seen == 0 && len(r.steps) > 0 {
		// The steps as they were at the first version, made without the
		// lock; what changed since is copied under it.
		m.st.Steps = make([]backends.StepStatus, len(r.steps))
		for i, s := range r.steps {
			m.st.Steps[i] = pendingStatus(s)
		}
	}
	if m.handed && r.at() != m.seen {
		m.own() // without the lock
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.version == m.seen {
		return r.over
	}
	m.own() // when a change came since r.at: rare
	steps := m.st.Steps
	m.st = r.status
	m.st.Steps = steps
	for i, v := range r.stepVer {
		if v <= m.seen {
			continue
		}
		s := r.status.Steps[i]
		if !s.Phase.Done() {
			// Attempts and instances change in place until the step
			// ends; outputs never do.
			s.Attempts = slices.Clone(s.Attempts)
			if s.Instances != nil {
				s.Instances = (&backends.RunStatus{Steps: s.Instances}).Clone().Steps
			}
		}
		steps[i] = s
	}
	m.seen = r.version
	return r.over
}

// snapshot returns m's status, which no longer changes (see mirror).
func (m *mirror) snapshot() *backends.RunStatus {
	st := m.st
	m.handed = true
	return &st
}

// own gives m an array of steps of its own, when a snapshot has it.
func (m *mirror) own() {
	if m.handed {
		m.st.Steps, m.handed = slices.Clone(m.st.Steps), false
	}
}

// at returns the status's version.
func (r *run) at() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.version
}
