package local

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPoolHeadOfLine checks that a small task does not overtake a big one
// waiting ahead of it in plan order, so big tasks are not starved.
func TestPoolHeadOfLine(t *testing.T) {
	p := newPool(10, amounts{dimGPU: 2}, true)
	ctx := t.Context()
	gpus := func(n int64) amounts { return amounts{dimGPU: n} }

	releaseFirst, err := p.acquire(ctx, prio{0, 0, 0}, gpus(1))
	require.NoError(t, err)

	type grant struct {
		name    string
		release func()
	}
	granted := make(chan grant, 2)
	wait := func(name string, pr prio, need amounts) {
		go func() {
			release, err := p.acquire(ctx, pr, need)
			if assert.NoError(t, err) {
				granted <- grant{name, release}
			}
		}()
	}
	waiters := func() int { p.mu.Lock(); defer p.mu.Unlock(); return len(p.waiters) }

	wait("big", prio{0, 1, 0}, gpus(2))
	require.Eventually(t, func() bool { return waiters() == 1 }, time.Second, time.Millisecond)
	wait("small", prio{0, 2, 0}, gpus(1))
	require.Eventually(t, func() bool { return waiters() == 2 }, time.Second, time.Millisecond)
	assert.Empty(t, granted, "small fits beside the first task, but big is ahead of it")

	releaseFirst()
	big := <-granted
	assert.Equal(t, "big", big.name)
	assert.Empty(t, granted)
	big.release()
	small := <-granted
	assert.Equal(t, "small", small.name)
	small.release()
}

func TestPoolAcquireCanceled(t *testing.T) {
	p := newPool(1, nil, false)
	release, err := p.acquire(t.Context(), prio{}, nil)
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := p.acquire(ctx, prio{0, 1, 0}, nil)
		errc <- err
	}()
	require.Eventually(t, func() bool { p.mu.Lock(); defer p.mu.Unlock(); return len(p.waiters) == 1 }, time.Second, time.Millisecond)
	cancel()
	assert.ErrorIs(t, <-errc, context.Canceled)

	release()
	again, err := p.acquire(t.Context(), prio{0, 2, 0}, nil)
	require.NoError(t, err, "a canceled waiter holds nothing")
	again()
	assert.Empty(t, p.waiters)
	assert.Zero(t, p.busy)
}
