package local

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/sluice-ml/sluice/artifact"
	"runtime/debug"
	"time"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/runstate"
	"github.com/sluice-ml/sluice/task"
)

// attempts runs s until an attempt succeeds, the retry budget of the way
// the last attempt failed is used up, or ctx is done. It returns the output
// and how the task ended.
func (r *run) attempts(ctx context.Context, at loc, s *backends.Step, input json.RawMessage) (json.RawMessage, backends.Phase, string) {
	var tries []backends.Attempt // the attempts so far, as runstate sees them
	onDemand := false
	for n := 1; ; n++ {
		out, phase, reason, err := r.attempt(ctx, at, s, input, n, onDemand)
		switch phase {
		case backends.PhaseSucceeded:
			return out, phase, ""
		case backends.PhaseCanceled:
			return nil, phase, runstate.MsgCanceled
		}
		last := backends.Attempt{Number: n, Phase: phase, Reason: reason, Message: err.Error()}
		tries = append(tries, last)
		next := runstate.AfterFailure(s, tries, false)
		if !next.Again {
			return nil, backends.PhaseFailed, next.Message
		}
		r.logf(at, "attempt %d failed (%s): %v; retrying in %s", n, reason, err, next.Delay)
		if !r.sleep(ctx, next.Delay) {
			return nil, backends.PhaseCanceled, runstate.CanceledInBackoff(last)
		}
		onDemand = next.OnDemand
	}
}

// attempt makes try n of s and records it.
func (r *run) attempt(ctx context.Context, at loc, s *backends.Step, input json.RawMessage, n int, onDemand bool) (json.RawMessage, backends.Phase, backends.Reason, error) {
	now := r.now()
	r.update(at.step, func(st *backends.RunStatus) {
		ss := statusAt(st, at)
		ss.Phase = backends.PhaseRunning
		if ss.Started.IsZero() {
			ss.Started = now
		}
		ss.Attempts = append(ss.Attempts, backends.Attempt{Number: n, Phase: backends.PhaseRunning, OnDemand: onDemand, Started: now})
	})

	actx, span := r.attemptSpan(ctx, s.Name, at.inst, n)
	actx = task.WithAttempt(actx, task.Attempt{Step: s.Name, Instance: at.inst, Number: n, OnDemand: onDemand, InProcess: true})
	actx = artifact.NewContext(actx, r.scope(s, at, n))
	out, err := r.callWithTimeout(actx, at, s, input)
	phase, reason := classify(ctx, err)
	if span != nil {
		r.b.tel.endAttempt(span, phase, reason, err)
	}

	now = r.now()
	r.update(at.step, func(st *backends.RunStatus) {
		ss := statusAt(st, at)
		a := &ss.Attempts[len(ss.Attempts)-1]
		a.Phase, a.Reason, a.Finished = phase, reason, now
		switch {
		case phase == backends.PhaseCanceled:
			a.Message = runstate.MsgCanceled
		case err != nil:
			a.Message = err.Error()
		}
	})
	return out, phase, reason, err
}

// classify says how an attempt that returned err ended and, when it
// failed, which budget it consumes. ctx is the task's context, without the
// attempt's timeout: a timeout is an application failure.
func classify(ctx context.Context, err error) (backends.Phase, backends.Reason) {
	switch {
	case err == nil:
		return backends.PhaseSucceeded, ""
	case ctx.Err() != nil:
		return backends.PhaseCanceled, ""
	case errors.Is(err, task.ErrInfrastructure):
		return backends.PhaseFailed, backends.ReasonInfra
	}
	return backends.PhaseFailed, backends.ReasonApp
}

// errTimedOut is the cause of an attempt context canceled by its timeout.
var errTimedOut = errors.New("local: attempt timed out")

// callWithTimeout calls the task, canceling its context when the step's
// timeout passes on the Clock. It always waits for the task to return, so
// a Go task that ignores its context delays the end of the attempt.
func (r *run) callWithTimeout(ctx context.Context, at loc, s *backends.Step, input json.RawMessage) (json.RawMessage, error) {
	d := s.Task.Timeout
	if d <= 0 {
		return r.call(ctx, at, s, input)
	}
	tctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := r.b.opts.Clock.AfterFunc(d, func() { cancel(errTimedOut) })
	out, err := r.call(tctx, at, s, input)
	stop()
	if errors.Is(context.Cause(tctx), errTimedOut) {
		return nil, errors.New(runstate.TimedOut(d))
	}
	return out, err
}

// call runs the task once: in process when the step has an Invoker
// (Go tasks, and stubs of container tasks), else through the Runner.
func (r *run) call(ctx context.Context, at loc, s *backends.Step, input json.RawMessage) (json.RawMessage, error) {
	switch {
	case s.Invoke != nil:
		return r.callGo(ctx, at, s.Invoke, input)
	case s.Task.Kind == task.KindContainer:
		return r.runContainer(ctx, at, s, input)
	}
	return nil, fmt.Errorf("local: step %q is a Go task without an implementation", s.Name)
}

// callGo invokes a Go task, turning a panic into an application failure
// (its stack goes to the log).
func (r *run) callGo(ctx context.Context, at loc, inv task.Invoker, input json.RawMessage) (out json.RawMessage, err error) {
	defer func() {
		if p := recover(); p != nil {
			r.logf(at, "panic: %v\n%s", p, debug.Stack())
			out, err = nil, fmt.Errorf("panic: %v", p)
		}
	}()
	b, err := inv.Invoke(ctx, input)
	if err != nil {
		return nil, err
	}
	return compactJSON(b)
}

func compactJSON(b []byte) (json.RawMessage, error) {
	buf := bytes.NewBuffer(make([]byte, 0, len(b))) // compacting never lengthens
	if err := json.Compact(buf, b); err != nil {
		return nil, fmt.Errorf("local: task output is not JSON: %w", err)
	}
	return buf.Bytes(), nil
}

// sleep waits d on the Clock; it reports false when ctx ended first.
func (r *run) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	return r.b.opts.Clock.Sleep(ctx, d) == nil
}

// scope is what attempt n of the task at at needs for its artifacts.
func (r *run) scope(s *backends.Step, at loc, n int) artifact.Scope {
	p := artifact.Producer{Pipeline: r.plan.Name, Run: r.id, Step: s.Name, Attempt: n}
	if at.inst >= 0 {
		i := at.inst
		p.Instance = &i
	}
	return artifact.Scope{Store: r.store, Producer: p}
}
