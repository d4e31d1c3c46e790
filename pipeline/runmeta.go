package pipeline

import (
	"fmt"
	"time"

	"github.com/sluice-ml/sluice/backends"
)

// RunID refers to the id of the run the step is part of: the id Run
// returns in RunStatus.RunID and the backend names the run by (the
// Workflow's name on Argo, the run id of the kubejob and local backends).
// It is the same for every step of a run, its exit handler included, and
// differs between runs, so it can name what the run writes:
//
//	pipeline.Add(p, export, ExportIn{Prefix: pipeline.RunID()})
func RunID() Ref[string] { return metaRef[string](backends.MetaRunID) }

// RunStarted refers to when the run was created (submitted), in UTC and
// truncated to the second: the same value for every step of the run, on
// every backend (Argo's workflow.creationTimestamp, the kubejob run
// record's creation, the local backend's clock).
func RunStarted() Ref[time.Time] { return metaRef[time.Time](backends.MetaRunStarted) }

// RunScheduled refers to the time the run is for: for a run a scheduler
// started, the time it was scheduled at (an Argo CronWorkflow's
// workflow.scheduledTime, not the slightly later time it started), or the
// time [RunOptions.Scheduled] gives (a backfill); for any other run it
// equals [RunStarted]. Like RunStarted it is in UTC, truncated to the
// second. A daily retrain names its data partition from it:
//
//	type TrainIn struct {
//		Day pipeline.Ref[time.Time]
//	}
//	pipeline.Add(p, train, TrainIn{Day: pipeline.RunScheduled()})
//	// in the task: in.Day.Get().Format("2006-01-02")
//
// In a condition, the run's times compare with a constant time in any
// zone ([Eq], [Ne]); a container task's {{.Field}} placeholder gets the
// RFC 3339 text ("2026-12-02T06:00:00Z").
func RunScheduled() Ref[time.Time] { return metaRef[time.Time](backends.MetaRunScheduled) }

func metaRef[T any](m backends.Meta) Ref[T] {
	return Ref[T]{src: newSource(&source{kind: srcMeta, typ: typeOf[T](), meta: m})}
}

// condValue is the constant a condition compares with, as it is encoded:
// a time in UTC, as the run's times are given (backends.MetaTime), so that
// the same instant in another zone compares equal.
func condValue(v any) any {
	if t, ok := v.(time.Time); ok {
		return t.UTC()
	}
	return v
}

// timeFlag is the value of the run command's -scheduled flag: an RFC 3339
// time, or a date (midnight UTC).
type timeFlag struct{ t time.Time }

func (f *timeFlag) String() string {
	if f == nil || f.t.IsZero() {
		return ""
	}
	return backends.MetaTime(f.t)
}

func (f *timeFlag) Set(s string) error {
	for _, layout := range []string{time.RFC3339Nano, time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			f.t = t
			return nil
		}
	}
	return fmt.Errorf("not a time: give RFC 3339 (2026-12-01T06:00:00Z) or a date (2026-12-01, midnight UTC)")
}
