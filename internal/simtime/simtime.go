// Package simtime is the time of Sluice's simulators (internal/kubesim,
// internal/argosim): a fake clock that tests step, and that can also skip
// ahead by itself while every simulated task is waiting for time to pass,
// the way Temporal's test environment skips time.
//
// A simulator runs each task it simulates under [Clock.Start], which gives
// the task a context whose deadline is on the clock, and waits out a
// backoff with [Clock.Wait]. A task counts as waiting from the first call
// of its context's Done method: the simulators run test code, whose tasks
// call Done only to wait for their end (a task that calls Done and goes on
// working is taken for a waiting one). With [Clock.SetSkip] on, whenever
// at least one task runs and all of them wait, the clock steps to the
// earliest deadline or wake-up among them; with it off (the default) only
// the test moves the clock.
//
// The clock implements k8s.io/utils/clock.WithDelayedExecution, the
// interface the kubejob orchestrator is timed by, so that a test can give
// the orchestrator and the simulator one clock.
package simtime

import (
	"context"
	"sync"
	"time"

	"k8s.io/utils/clock"
	testingclock "k8s.io/utils/clock/testing"
)

// Clock is a fake clock for simulators. Step it, or turn on SetSkip.
// Callbacks of AfterFunc run with the clock's lock held, as they do on a
// testingclock.FakeClock: they must not call the clock. Safe for
// concurrent use. The zero value is not usable; use New.
type Clock struct {
	*testingclock.FakeClock

	mu    sync.Mutex
	skip  bool
	tasks map[*task]bool
}

var _ clock.WithDelayedExecution = (*Clock)(nil)

// task is one task or sleep in progress.
type task struct {
	waiting bool
	wake    time.Time // zero: waits for no time, only for its end
}

// New returns a clock set to start, not skipping.
func New(start time.Time) *Clock {
	return &Clock{FakeClock: testingclock.NewFakeClock(start), tasks: map[*task]bool{}}
}

// SetSkip turns skipping on or off: while on, whenever at least one task
// runs and every running task waits, the clock steps to the earliest
// deadline or wake-up of those tasks (it does not step while one of them
// has passed its deadline and not yet ended).
func (c *Clock) SetSkip(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.skip = on
	c.maybeSkip()
}

// Start registers a task that runs under the returned context: parent's
// values and cancellation, and deadline (zero: none) on c. The task
// waits from the first call of the context's Done. end must be called
// once the task has returned; it cancels the context.
func (c *Clock) Start(parent context.Context, deadline time.Time) (ctx context.Context, end func()) {
	t := &task{wake: deadline}
	c.mu.Lock()
	c.tasks[t] = true
	c.mu.Unlock()
	d := &taskCtx{Context: parent, clk: c, t: t, deadline: deadline, done: make(chan struct{})}
	d.stopParent = context.AfterFunc(parent, func() { d.cancel(parent.Err()) })
	if !deadline.IsZero() {
		if wait := deadline.Sub(c.Now()); wait > 0 {
			d.timer = c.AfterFunc(wait, func() { d.cancel(context.DeadlineExceeded) })
		} else {
			d.cancel(context.DeadlineExceeded)
		}
	}
	return d, func() {
		if d.timer != nil {
			d.timer.Stop()
		}
		d.stopParent()
		d.cancel(context.Canceled)
		c.mu.Lock()
		defer c.mu.Unlock()
		delete(c.tasks, t)
		c.maybeSkip()
	}
}

// Wait waits until d has passed on c, as a waiting task, or until ctx
// ends, and returns ctx.Err() in that case.
func (c *Clock) Wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	ch := c.After(d)
	t := &task{waiting: true, wake: c.Now().Add(d)}
	c.mu.Lock()
	c.tasks[t] = true
	c.maybeSkip()
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		delete(c.tasks, t)
		c.maybeSkip()
	}()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// wait marks t waiting.
func (c *Clock) wait(t *task) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tasks[t] && !t.waiting {
		t.waiting = true
		c.maybeSkip()
	}
}

// maybeSkip steps the clock if skipping is on and every task waits; c.mu
// is held, so no task starts while the clock moves.
func (c *Clock) maybeSkip() {
	if !c.skip || len(c.tasks) == 0 {
		return
	}
	var next time.Time
	for t := range c.tasks {
		if !t.waiting {
			return
		}
		if !t.wake.IsZero() && (next.IsZero() || t.wake.Before(next)) {
			next = t.wake
		}
	}
	if now := c.Now(); !next.IsZero() && next.After(now) {
		c.Step(next.Sub(now))
	}
}

// taskCtx is a task's context: its deadline is on the simulator's clock.
type taskCtx struct {
	context.Context // the parent, for Value
	clk             *Clock
	t               *task
	deadline        time.Time
	timer           clock.Timer
	stopParent      func() bool
	once            sync.Once

	mu   sync.Mutex
	done chan struct{}
	err  error
}

func (d *taskCtx) Deadline() (time.Time, bool) {
	if d.deadline.IsZero() {
		return d.Context.Deadline()
	}
	return d.deadline, true
}

func (d *taskCtx) Done() <-chan struct{} {
	d.once.Do(func() { d.clk.wait(d.t) })
	return d.done
}

func (d *taskCtx) Err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// cancel ends the context with err unless it has ended. It may run in a
// clock callback, so it does not call the clock.
func (d *taskCtx) cancel(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err == nil {
		d.err = err
		close(d.done)
	}
}
