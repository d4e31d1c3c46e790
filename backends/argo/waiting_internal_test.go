package argo

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/runstate"
)

// keepWaiting words each fan-out instance on its own, keeps what it said
// in the statuses after, and leaves tasks that did not wait alone.
func TestKeepWaiting(t *testing.T) {
	const why = "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."
	canceled := func(name string) backends.StepStatus {
		return backends.StepStatus{Name: name, Phase: backends.PhaseCanceled, Message: runstate.MsgCanceled,
			Attempts: []backends.Attempt{{Number: 1, Phase: backends.PhaseCanceled, Message: runstate.MsgCanceled}}}
	}
	waiting := func(name, msg string) backends.StepStatus {
		return backends.StepStatus{Name: name, Phase: backends.PhaseRunning, Message: msg,
			Attempts: []backends.Attempt{{Number: 1, Phase: backends.PhaseRunning}}}
	}
	prev := &backends.RunStatus{Steps: []backends.StepStatus{
		{Name: "fan", Phase: backends.PhaseRunning, Instances: []backends.StepStatus{
			waiting("fan[0]", runstate.Unschedulable(why)), waiting("fan[1]", ""),
		}},
		waiting("a", "ImagePullBackOff: Back-off pulling image"), // Argo's words, not a runstate wait
	}}
	st := &backends.RunStatus{Steps: []backends.StepStatus{
		{Name: "fan", Phase: backends.PhaseCanceled, Message: runstate.MsgCanceled, Instances: []backends.StepStatus{canceled("fan[0]"), canceled("fan[1]")}},
		canceled("a"),
	}}
	w := waits{}
	keepWaiting(w, prev)
	// Between the wait and the end, a status without the wait (the pod
	// gone, the node not marked yet).
	keepWaiting(w, &backends.RunStatus{Steps: []backends.StepStatus{
		{Name: "fan", Phase: backends.PhaseRunning, Instances: []backends.StepStatus{waiting("fan[0]", ""), waiting("fan[1]", "")}},
		waiting("a", ""),
	}})
	keepWaiting(w, st)
	want := runstate.CanceledWaiting(runstate.Unschedulable(why))
	assert.Equal(t, want, st.Steps[0].Instances[0].Message)
	assert.Equal(t, want, st.Steps[0].Instances[0].Attempts[0].Message)
	assert.Equal(t, runstate.MsgCanceled, st.Steps[0].Instances[1].Message, "it ran")
	assert.Equal(t, runstate.MsgCanceled, st.Steps[0].Message, "the fan-out's own words")
	assert.Equal(t, runstate.MsgCanceled, st.Steps[1].Message)

	next := &backends.RunStatus{Steps: []backends.StepStatus{
		{Name: "fan", Phase: backends.PhaseCanceled, Message: runstate.MsgCanceled, Instances: []backends.StepStatus{canceled("fan[0]"), canceled("fan[1]")}},
		canceled("a"),
	}}
	keepWaiting(w, next)
	assert.Equal(t, want, next.Steps[0].Instances[0].Message, "kept in the statuses that follow")

	// A wait of an earlier attempt does not word a later one's cancel.
	w = waits{}
	keepWaiting(w, &backends.RunStatus{Steps: []backends.StepStatus{waiting("b", runstate.Unschedulable(why))}})
	later := canceled("b")
	later.Attempts = append([]backends.Attempt{{Number: 1, Phase: backends.PhaseFailed}}, later.Attempts...)
	again := &backends.RunStatus{Steps: []backends.StepStatus{later}}
	keepWaiting(w, again)
	assert.Equal(t, runstate.MsgCanceled, again.Steps[0].Message)
}
