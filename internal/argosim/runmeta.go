package argosim

import (
	"strconv"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/workflow/common"
)

// controllerZone is the time zone the simulated controller formats times
// in: not UTC, as a controller may run in any zone, so that a workflow
// that needs UTC must convert.
var controllerZone = time.FixedZone("controller", 2*3600)

// runFacts sets the globals about the run itself, as the controller's
// setGlobalParameters does: workflow.creationTimestamp (and its .RFC3339
// and .s forms), formatted in the controller's zone, and
// workflow.scheduledTime from the annotation a CronWorkflow sets, only
// when it is there. The fake clientset sets no creationTimestamp: then
// the workflow was created now.
func (r *simRun) runFacts(wf *wfv1.Workflow) {
	created := wf.CreationTimestamp.Time
	if created.IsZero() {
		created = r.clk.Now()
	}
	created = created.In(controllerZone)
	r.globals[common.GlobalVarWorkflowCreationTimestamp] = created.Format(time.RFC3339)
	r.globals[common.GlobalVarWorkflowCreationTimestamp+".RFC3339"] = created.Format(time.RFC3339)
	r.globals[common.GlobalVarWorkflowCreationTimestamp+".s"] = strconv.FormatInt(created.Unix(), 10)
	if v, ok := wf.Annotations[common.AnnotationKeyCronWfScheduledTime]; ok {
		r.globals[common.GlobalVarWorkflowCronScheduleTime] = v
	}
}
