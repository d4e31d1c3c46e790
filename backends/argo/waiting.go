package argo

import (
	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/runstate"
)

// waits remembers, per step and fan-out instance, the last message a
// Watch saw it wait with (runstate.Waits) and the attempt that waited.
type waits map[string]waited

type waited struct {
	msg     string
	attempt int // len(Attempts) when it waited
}

// keepWaiting words the steps and fan-out instances of st that Cancel
// ended while their pod waited as package runstate does
// (runstate.CanceledWaiting), with the message the Watch saw them wait
// with, which w remembers from every status before st (not only the one
// just before: between the wait and the end, a status under a loaded
// controller can show the node with its pod gone and no message). Argo
// marks the node of such a pod Failed, "workflow shutdown with strategy:
// Stop", and the scheduler's words are gone from the Workflow: only a
// Watch that saw the pod wait can say why it waited. A wait of an
// earlier attempt does not count.
func keepWaiting(w waits, st *backends.RunStatus) {
	for i := range st.Steps {
		s := &st.Steps[i]
		keepWaitingTask(w, s.Name, s)
		for k := range s.Instances {
			keepWaitingTask(w, s.Name+"/"+s.Instances[k].Name, &s.Instances[k])
		}
	}
}

// keepWaitingTask remembers that task s waits, or words it, canceled,
// as canceled while it waited when w says it waited in its last attempt.
func keepWaitingTask(w waits, key string, s *backends.StepStatus) {
	switch {
	case !s.Phase.Done() && runstate.Waits(s.Message):
		w[key] = waited{msg: s.Message, attempt: len(s.Attempts)}
		return
	case s.Phase != backends.PhaseCanceled || s.Message != runstate.MsgCanceled:
		return
	}
	wt, ok := w[key]
	if !ok || wt.attempt != len(s.Attempts) {
		return
	}
	msg := runstate.CanceledWaiting(wt.msg)
	s.Message = msg
	if k := len(s.Attempts); k > 0 && s.Attempts[k-1].Phase == backends.PhaseCanceled {
		s.Attempts[k-1].Message = msg
	}
}
