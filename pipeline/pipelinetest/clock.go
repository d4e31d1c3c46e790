package pipelinetest

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Clock is a virtual clock. Time moves only when something sleeps on it
// (the executor backing off between attempts, a stub calling Sleep) or
// when Advance is called; deadlines set with AfterFunc fire synchronously,
// in deadline order, as time passes them. So retries with hours of backoff
// and tasks that "take" days finish at once, and always the same way.
// A Clock is safe for concurrent use.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	seq    int
	timers []*timer
}

type timer struct {
	at  time.Time
	seq int
	f   func()
}

// Epoch is when every Env's clock starts.
var Epoch = time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC)

// NewClock returns a clock reading start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the virtual time.
func (c *Clock) Now() time.Time {
	c.usable("Now")
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc calls f when the virtual time reaches Now()+d. The returned
// function stops the timer and reports whether it did so before f ran.
func (c *Clock) AfterFunc(d time.Duration, f func()) func() bool {
	c.usable("AfterFunc")
	if f == nil {
		misuse("Clock.AfterFunc with a nil func")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &timer{at: c.now.Add(d), seq: c.seq, f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		i := slices.Index(c.timers, t)
		if i < 0 {
			return false
		}
		c.timers = slices.Delete(c.timers, i, i+1)
		return true
	}
}

// Sleep advances the virtual time by d, firing the deadlines it passes,
// and stops early when ctx is done (say, because a deadline it passed was
// ctx's own), returning ctx.Err().
func (c *Clock) Sleep(ctx context.Context, d time.Duration) error {
	c.usable("Sleep")
	if ctx == nil {
		misuse("Clock.Sleep(nil, %v): pass the task's context", d)
	}
	c.advance(d, ctx)
	return ctx.Err()
}

// Advance moves the virtual time forward by d, firing the deadlines it
// passes.
func (c *Clock) Advance(d time.Duration) { c.usable("Advance"); c.advance(d, nil) }

func (c *Clock) advance(d time.Duration, ctx context.Context) {
	c.mu.Lock()
	target := c.now.Add(d)
	for {
		if ctx != nil && ctx.Err() != nil {
			c.mu.Unlock()
			return
		}
		next := c.next(target)
		if next == nil {
			c.now = target
			c.mu.Unlock()
			return
		}
		c.timers = slices.DeleteFunc(c.timers, func(t *timer) bool { return t == next })
		c.now = next.at
		c.mu.Unlock()
		next.f()
		c.mu.Lock()
	}
}

// next returns the earliest timer due by target, or nil.
func (c *Clock) next(target time.Time) *timer {
	var best *timer
	for _, t := range c.timers {
		if t.at.After(target) {
			continue
		}
		if best == nil || t.at.Before(best.at) || (t.at.Equal(best.at) && t.seq < best.seq) {
			best = t
		}
	}
	return best
}
