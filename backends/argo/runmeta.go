package argo

import (
	"time"

	"fmt"
	"maps"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"

	"github.com/sluice-ml/sluice/backends"
)

// AnnotationScheduledTime is the annotation of a Workflow that Argo reads
// workflow.scheduledTime from: a CronWorkflow sets it on the Workflows it
// starts, and Submit sets it to SubmitOptions.Scheduled.
const AnnotationScheduledTime = "workflows.argoproj.io/scheduled-time"

// metaTimeLayout is backends.MetaTimeLayout as an expression string.
var metaTimeLayout = exprString(backends.MetaTimeLayout)

// utcExpr is the expression of the RFC 3339 text e (in any offset, as
// the controller formats times in its own zone and a CronWorkflow in its
// timezone) in UTC: backends.MetaTime's form.
func utcExpr(e string) string {
	return "sprig.dateInZone(" + metaTimeLayout + ", sprig.toDate(" + metaTimeLayout + ", " + e + "), 'UTC')"
}

// metaText returns the expression of the text of run fact m: the
// Workflow's name is the run id; the run started when the Workflow was
// created; workflow.scheduledTime is set only for a Workflow a
// CronWorkflow started (or one submitted with a scheduled time), else the
// run is scheduled when it was created.
func metaText(m backends.Meta) (string, error) {
	const created = "workflow.creationTimestamp.RFC3339"
	switch m {
	case backends.MetaRunID:
		return "workflow.name", nil
	case backends.MetaRunStarted:
		return utcExpr(created), nil
	case backends.MetaRunScheduled:
		return utcExpr("(workflow.scheduledTime ?? " + created + ")"), nil
	}
	return "", fmt.Errorf("argo: unknown run fact %q", m)
}

// textExpr returns an expression of the text a {{.Field}} placeholder of
// a container task is replaced with for ref r, when r's value is known to
// be a string: a string parameter (stored as is) or a run fact. ok is
// false for any other ref.
func (c *compiler) textExpr(r backends.Ref) (e string, ok bool, err error) {
	if len(r.Path) > 0 {
		return "", false, nil
	}
	switch r.Kind {
	case backends.RefMeta:
		e, err = metaText(r.Meta)
		return e, err == nil, err
	case backends.RefParam:
		if c.rawParam(r.Param) {
			return member("workflow.parameters", r.Param), true, nil
		}
	}
	return "", false, nil
}

// scheduled sets the scheduled time of wf to at, as a CronWorkflow does
// on the Workflows it starts, so that workflow.scheduledTime is at.
func scheduled(wf *wfv1.Workflow, at string) {
	a := maps.Clone(wf.Annotations)
	if a == nil {
		a = map[string]string{}
	}
	a[AnnotationScheduledTime] = at
	wf.Annotations = a
}

// scheduledTime is the time wf was scheduled for, from
// AnnotationScheduledTime, which Argo writes in RFC 3339; zero when it
// has none or it does not parse, which RunMeta reads as the start.
func scheduledTime(wf *wfv1.Workflow) time.Time {
	t, err := time.Parse(time.RFC3339, wf.Annotations[AnnotationScheduledTime])
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}
