package simtime_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/internal/simtime"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestDeadlineIsOnTheClock(t *testing.T) {
	c := simtime.New(t0)
	ctx, end := c.Start(t.Context(), t0.Add(time.Second))
	defer end()
	d, ok := ctx.Deadline()
	require.True(t, ok)
	require.Equal(t, t0.Add(time.Second), d)
	c.Step(time.Second - time.Nanosecond)
	require.NoError(t, ctx.Err(), "not before the deadline")
	c.Step(time.Nanosecond)
	<-ctx.Done()
	require.ErrorIs(t, ctx.Err(), context.DeadlineExceeded)
}

func TestParentCancelAndEnd(t *testing.T) {
	c := simtime.New(t0)
	parent, cancel := context.WithCancel(t.Context())
	ctx, end := c.Start(parent, time.Time{})
	_, ok := ctx.Deadline()
	require.False(t, ok)
	cancel()
	<-ctx.Done()
	require.ErrorIs(t, ctx.Err(), context.Canceled)
	end()

	ctx, end = c.Start(t.Context(), t0.Add(time.Hour))
	end()
	require.ErrorIs(t, ctx.Err(), context.Canceled)
	require.False(t, c.HasWaiters(), "end stops the deadline's timer")
}

// With skipping on, the clock moves only while every task waits, and
// only to the earliest of their deadlines.
func TestSkipWhileEveryTaskWaits(t *testing.T) {
	c := simtime.New(t0)
	c.SetSkip(true)
	busy, endBusy := c.Start(t.Context(), t0.Add(time.Second))
	waiter, endWaiter := c.Start(t.Context(), t0.Add(3*time.Second))
	waiter.Done() // as a task blocked on it calls it
	require.Equal(t, t0, c.Now(), "a task that does not wait holds the clock")
	require.NoError(t, busy.Err())
	endBusy()
	require.Equal(t, t0.Add(3*time.Second), c.Now(), "the waiting task's deadline")
	require.ErrorIs(t, waiter.Err(), context.DeadlineExceeded)
	endWaiter()

	start := c.Now()
	require.NoError(t, c.Wait(t.Context(), time.Minute))
	require.Equal(t, start.Add(time.Minute), c.Now(), "Wait skips to its wake-up")

	c.SetSkip(false)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.ErrorIs(t, c.Wait(ctx, time.Minute), context.Canceled)
}
