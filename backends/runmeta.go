package backends

import (
	"encoding/json"
	"fmt"
	"time"
)

// RefMeta is a fact about the run itself, named by [Ref.Meta]: its id, when
// it started, when it was scheduled for. Every step may read it.
const RefMeta RefKind = "meta"

// Meta names a fact about the run, for a [RefMeta] ref. Its text is also
// how the ref is written ([Ref.String]: "runID").
type Meta string

const (
	// MetaRunID is the run's id, a JSON string: the id Submit returned
	// and [RunStatus.RunID] reports (on Argo the Workflow's name).
	MetaRunID Meta = "runID"
	// MetaRunStarted is when the run was created, a JSON string in
	// [MetaTimeLayout] (RFC 3339, UTC, whole seconds).
	MetaRunStarted Meta = "runStarted"
	// MetaRunScheduled is the time a scheduler started the run for (an
	// Argo CronWorkflow's schedule, or [SubmitOptions.Scheduled]) in the
	// same layout; for a run that no scheduler started it equals
	// MetaRunStarted.
	MetaRunScheduled Meta = "runScheduled"
)

// MetaTimeLayout is the layout of the run's times as refs give them: RFC
// 3339 in UTC with whole seconds ("2026-12-02T06:00:00Z"), the same on
// every backend, so that the text sorts as the time does and a condition
// can compare it with a constant.
const MetaTimeLayout = "2006-01-02T15:04:05Z07:00"

// MetaTime formats t as the run's times are given: in UTC, truncated to the
// second, in MetaTimeLayout.
func MetaTime(t time.Time) string { return t.UTC().Truncate(time.Second).Format(MetaTimeLayout) }

// RunMeta holds the facts about a run that [RefMeta] refs read.
type RunMeta struct {
	// ID is the run's id.
	ID string
	// Started is when the run was created.
	Started time.Time
	// Scheduled is the time the run was scheduled for; zero means
	// Started.
	Scheduled time.Time
}

// Value returns the JSON value of fact m.
func (r *RunMeta) Value(m Meta) (json.RawMessage, error) {
	var s string
	switch m {
	case MetaRunID:
		s = r.ID
	case MetaRunStarted:
		s = MetaTime(r.Started)
	case MetaRunScheduled:
		if r.Scheduled.IsZero() {
			s = MetaTime(r.Started)
		} else {
			s = MetaTime(r.Scheduled)
		}
	default:
		return nil, fmt.Errorf("unknown run fact %q", m)
	}
	return json.Marshal(s)
}
