package local_test

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/local"
	"github.com/sluice-ml/sluice/pipeline"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeClock is a Clock that never sleeps: Sleep and AfterFunc record the
// duration and finish at once (instant) or never.
type fakeClock struct {
	instant bool

	mu    sync.Mutex
	now   time.Time
	waits []time.Duration
}

func newFakeClock(instant bool) *fakeClock {
	return &fakeClock{instant: instant, now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) record(d time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waits = append(c.waits, d)
	if c.instant {
		c.now = c.now.Add(d)
	}
	return c.instant
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if c.record(d) {
		return nil
	}
	<-ctx.Done()
	return ctx.Err()
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) func() bool {
	if c.record(d) {
		f()
		return func() bool { return false }
	}
	return func() bool { return true }
}

// Waits returns the durations passed to Sleep and AfterFunc, in order.
func (c *fakeClock) Waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.waits...)
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// gauge tracks how many callers are inside at once, and the most seen.
type gauge struct{ cur, max atomic.Int64 }

func (g *gauge) enter() {
	n := g.cur.Add(1)
	for {
		m := g.max.Load()
		if n <= m || g.max.CompareAndSwap(m, n) {
			return
		}
	}
}

func (g *gauge) leave() { g.cur.Add(-1) }

// run runs p on a new local backend with opts and returns the final status.
func run(t *testing.T, p *pipeline.Pipeline, opts *local.Options, ro *pipeline.RunOptions) (*backends.RunStatus, error) {
	t.Helper()
	return pipeline.Run(t.Context(), p, local.New(opts), ro)
}

// runAsync starts pipeline.Run in a goroutine; the returned function waits
// for it.
func runAsync(ctx context.Context, p *pipeline.Pipeline, b *local.Backend, ro *pipeline.RunOptions) func() (*backends.RunStatus, error) {
	type result struct {
		st  *backends.RunStatus
		err error
	}
	ch := make(chan result, 1)
	go func() {
		st, err := pipeline.Run(ctx, p, b, ro)
		ch <- result{st, err}
	}()
	return func() (*backends.RunStatus, error) {
		r := <-ch
		return r.st, r.err
	}
}

// phases returns step name -> phase.
func phases(st *backends.RunStatus) map[string]backends.Phase {
	out := map[string]backends.Phase{}
	for _, s := range st.Steps {
		out[s.Name] = s.Phase
	}
	return out
}

// stepOf returns the status of step name, failing the test if missing.
func stepOf(t *testing.T, st *backends.RunStatus, name string) *backends.StepStatus {
	t.Helper()
	s := st.Step(name)
	require.NotNil(t, s, "no step %q in status", name)
	return s
}
