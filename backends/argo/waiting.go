package argo

import (
	"strings"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/runstate"
)

// keepWaiting words the steps and fan-out instances of st that Cancel
// ended while their pod waited as package runstate does
// (runstate.CanceledWaiting), with the message prev, the status Watch
// reported before st, gave while they waited. Argo marks the node of
// such a pod Failed, "workflow shutdown with strategy: Stop", and the
// scheduler's words are gone from the Workflow: only a Watch that saw
// the pod wait can say why it waited.
func keepWaiting(prev, st *backends.RunStatus) {
	if prev == nil {
		return
	}
	for i := range st.Steps {
		s := &st.Steps[i]
		p := prev.Step(s.Name)
		if p == nil {
			continue
		}
		keepWaitingTask(p, s)
		for k := range s.Instances {
			if k < len(p.Instances) && p.Instances[k].Name == s.Instances[k].Name {
				keepWaitingTask(&p.Instances[k], &s.Instances[k])
			}
		}
	}
}

// keepWaitingTask words task s, canceled, as canceled while it waited
// when its status before, p, says it waited (or already says so).
func keepWaitingTask(p, s *backends.StepStatus) {
	if s.Phase != backends.PhaseCanceled || s.Message != runstate.MsgCanceled {
		return
	}
	msg := ""
	switch {
	case !p.Phase.Done() && runstate.Waits(p.Message):
		msg = runstate.CanceledWaiting(p.Message)
	case p.Phase == backends.PhaseCanceled && strings.HasPrefix(p.Message, runstate.CanceledWaiting("")):
		msg = p.Message // said so before
	default:
		return
	}
	s.Message = msg
	// Its last attempt is the one that waited, unless another started.
	if k := len(s.Attempts); k > 0 && k == len(p.Attempts) && s.Attempts[k-1].Phase == backends.PhaseCanceled {
		s.Attempts[k-1].Message = msg
	}
}
