package pipeline

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/runstate"
)

func TestProgressPrinter(t *testing.T) {
	snapshots := []*backends.RunStatus{
		{Pipeline: "p", Phase: backends.PhaseRunning, Steps: []backends.StepStatus{
			{Name: "a", Phase: backends.PhaseRunning, Attempts: []backends.Attempt{{Number: 1, Phase: backends.PhaseRunning}}},
			{Name: "b", Phase: backends.PhasePending},
		}},
		{Pipeline: "p", Phase: backends.PhaseRunning, Steps: []backends.StepStatus{
			{Name: "a", Phase: backends.PhaseRunning, Attempts: []backends.Attempt{
				{Number: 1, Phase: backends.PhaseFailed, Reason: backends.ReasonInfra, Message: "preempted"},
				{Number: 2, Phase: backends.PhaseRunning},
			}},
			{Name: "b", Phase: backends.PhasePending},
		}},
		{Pipeline: "p", Phase: backends.PhaseFailed, Steps: []backends.StepStatus{
			{Name: "a", Phase: backends.PhaseFailed, Message: "boom", Attempts: []backends.Attempt{
				{Number: 1, Phase: backends.PhaseFailed, Reason: backends.ReasonInfra, Message: "preempted"},
				{Number: 2, Phase: backends.PhaseFailed, Reason: backends.ReasonApp, Message: "boom"},
			}},
			{Name: "b", Phase: backends.PhaseSkipped},
		}},
	}

	var quiet bytes.Buffer
	pp := newProgressPrinter(&quiet)
	for _, s := range snapshots {
		pp.update(s)
	}
	assert.Equal(t, "a: attempt 1 failed (infra): preempted\n"+
		"a: attempt 2 failed (app): boom\n"+
		"a: failed: boom\n", quiet.String(), "off a terminal only failures are reported, once each")

	var tty bytes.Buffer
	pp = newProgressPrinter(&tty)
	pp.tty = true
	for _, s := range snapshots {
		pp.update(s)
	}
	out := tty.String()
	assert.Contains(t, out, "\r\x1b[Kp: 0/2 done, 1 running, 0 failed")
	assert.Contains(t, out, "\r\x1b[Ka: attempt 1 failed (infra): preempted\n")
	assert.True(t, strings.HasSuffix(out, "p: 2/2 done, 0 running, 1 failed  0s\n"), "%q", out)
}

// Why a step waits is reported once per reason, on a terminal or not.
func TestProgressPrinterSaysWhyAStepWaits(t *testing.T) {
	const why = "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."
	waiting := func(msg string) *backends.RunStatus {
		return &backends.RunStatus{Pipeline: "p", Phase: backends.PhaseRunning, Steps: []backends.StepStatus{
			{Name: "a", Phase: backends.PhaseRunning, Message: msg},
			{Name: "b", Phase: backends.PhaseRunning, Message: "Stopped with strategy 'Stop'"}, // not a wait
		}}
	}
	var out bytes.Buffer
	pp := newProgressPrinter(&out)
	for _, msg := range []string{"", runstate.Unschedulable(why), runstate.Unschedulable(why), runstate.Waiting("ErrImagePull: not found"), runstate.Waiting("ErrImagePull: not found")} {
		pp.update(waiting(msg))
	}
	pp.update(&backends.RunStatus{Pipeline: "p", Phase: backends.PhaseCanceled, Steps: []backends.StepStatus{
		{Name: "a", Phase: backends.PhaseCanceled, Message: runstate.CanceledWaiting(runstate.Waiting("ErrImagePull: not found"))},
	}})
	assert.Equal(t, "a: unschedulable: "+why+"\n"+
		"a: waiting: ErrImagePull: not found\n", out.String())
}

// The printer keeps the last snapshot as it is and changes none: they
// are immutable, and share memory with one another.
func TestProgressPrinterLeavesSnapshotsAlone(t *testing.T) {
	attempts := []backends.Attempt{{Number: 1, Phase: backends.PhaseFailed, Reason: backends.ReasonApp, Message: "boom"}, {Number: 2, Phase: backends.PhaseRunning}}
	first := &backends.RunStatus{Pipeline: "p", Phase: backends.PhaseRunning, Steps: []backends.StepStatus{
		{Name: "a", Phase: backends.PhaseRunning, Attempts: attempts[:1]},
		{Name: "b", Phase: backends.PhaseRunning, Message: runstate.Unschedulable("no nodes")},
	}}
	second := &backends.RunStatus{Pipeline: "p", Phase: backends.PhaseFailed, Steps: []backends.StepStatus{
		{Name: "a", Phase: backends.PhaseFailed, Message: "boom", Attempts: attempts}, // shares first's attempt
		first.Steps[1],
	}}
	was := []*backends.RunStatus{first.Clone(), second.Clone()}
	var out bytes.Buffer
	pp := newProgressPrinter(&out)
	pp.tty = true
	pp.update(first)
	pp.update(second)
	assert.Same(t, second, pp.last())
	assert.Equal(t, was, []*backends.RunStatus{first, second})
	assert.Contains(t, out.String(), "a: attempt 1 failed (app): boom\n")
	assert.Contains(t, out.String(), "b: unschedulable: no nodes\n")
}
