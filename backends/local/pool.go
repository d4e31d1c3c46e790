package local

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/resources"
)

// amounts are what a task holds while it runs, by dimension: one "slot"
// (bounded by Options.Parallelism), milli-CPU, bytes of memory, and counts
// of nvidia.com/gpu and nvidia.com/mig-<profile>.
type amounts map[string]int64

const (
	dimSlots  = "slots"
	dimCPU    = string(corev1.ResourceCPU)
	dimMemory = string(corev1.ResourceMemory)
	dimGPU    = string(resources.GPUResource)
	migPrefix = "nvidia.com/mig-"
)

// demandOf is what one task (or fan-out instance) of s holds while it
// runs. Requests other than CPU, memory, GPUs and MIG slices are ignored.
func demandOf(s *backends.Step) amounts {
	d := amounts{dimSlots: 1}
	for name, q := range s.Resolved.Requests {
		switch n := string(name); {
		case n == dimCPU:
			d[n] = q.MilliValue()
		case n == dimMemory, n == dimGPU, strings.HasPrefix(n, migPrefix):
			d[n] = q.Value()
		}
	}
	return d
}

// limits turns a Capacity into amounts; nil means no limit.
func (c *Capacity) limits() (amounts, error) {
	if c == nil {
		return nil, nil
	}
	lim := amounts{dimGPU: int64(c.GPUs)}
	for _, q := range []struct{ dim, text string }{{dimCPU, c.CPU}, {dimMemory, c.Memory}} {
		if q.text == "" {
			continue
		}
		v, err := resource.ParseQuantity(q.text)
		if err != nil {
			return nil, fmt.Errorf("local: Options.Capacity: %s %q: %w", q.dim, q.text, err)
		}
		lim[q.dim] = v.Value()
		if q.dim == dimCPU {
			lim[q.dim] = v.MilliValue()
		}
	}
	for profile, n := range c.MIG {
		lim[string(resources.MIGResourceName(profile))] = int64(n)
	}
	return lim, nil
}

// pool hands out amounts to tasks in priority order: a task waits while
// the first waiter in line does not fit, so small tasks never overtake a
// big one that waits (no starvation), at the cost of some idle capacity.
type pool struct {
	total amounts // limited dimensions; slots always
	// accel: accelerator dimensions missing from total have none (a
	// Capacity was given); otherwise they are unlimited too.
	accel bool

	mu      sync.Mutex
	used    amounts
	waiters []*waiter // sorted by prio
}

type waiter struct {
	prio    prio
	need    amounts
	granted chan struct{}
}

// prio orders waiters: by run, then step in plan order, then instance.
type prio [3]int

func newPool(parallelism int, limits amounts, capacity bool) *pool {
	total := maps.Clone(limits)
	if total == nil {
		total = amounts{}
	}
	total[dimSlots] = int64(parallelism)
	return &pool{total: total, accel: capacity, used: amounts{}}
}

// limit returns the capacity of dim and whether it is limited.
func (p *pool) limit(dim string) (int64, bool) {
	if v, ok := p.total[dim]; ok {
		return v, true
	}
	return 0, p.accel && strings.HasPrefix(dim, "nvidia.com/")
}

// fitsAtAll reports, as an error wrapping errors.ErrUnsupported, the first
// dimension in which need exceeds the whole capacity.
func (p *pool) fitsAtAll(step string, need amounts) error {
	for _, dim := range slices.Sorted(maps.Keys(need)) {
		if lim, ok := p.limit(dim); ok && need[dim] > lim {
			return fmt.Errorf("local: step %q asks for %s %s, but Options.Capacity offers %s: %w",
				step, dim, formatAmount(dim, need[dim]), formatAmount(dim, lim), errors.ErrUnsupported)
		}
	}
	return nil
}

func formatAmount(dim string, v int64) string {
	switch dim {
	case dimCPU:
		return resource.NewMilliQuantity(v, resource.DecimalSI).String()
	case dimMemory:
		return resource.NewQuantity(v, resource.BinarySI).String()
	}
	return strconv.FormatInt(v, 10)
}

// fits reports whether need fits next to what is in use; p.mu is held.
func (p *pool) fits(need amounts) bool {
	for dim, v := range need {
		if lim, ok := p.limit(dim); ok && p.used[dim]+v > lim {
			return false
		}
	}
	return true
}

// acquire waits until need fits and it is first in line, then holds need
// until release is called. It fails only when ctx is done first.
func (p *pool) acquire(ctx context.Context, pr prio, need amounts) (release func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	w := &waiter{prio: pr, need: need, granted: make(chan struct{})}
	p.mu.Lock()
	i, _ := slices.BinarySearchFunc(p.waiters, pr, func(w *waiter, pr prio) int { return cmpPrio(w.prio, pr) })
	p.waiters = slices.Insert(p.waiters, i, w)
	p.grant()
	p.mu.Unlock()

	release = func() { p.release(need) }
	select {
	case <-w.granted:
		return release, nil
	case <-ctx.Done():
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-w.granted: // granted meanwhile: give it back
		p.give(need)
	default:
		p.waiters = slices.DeleteFunc(p.waiters, func(x *waiter) bool { return x == w })
		p.grant()
	}
	return nil, ctx.Err()
}

func cmpPrio(a, b prio) int {
	return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1]), cmp.Compare(a[2], b[2]))
}

func (p *pool) release(need amounts) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.give(need)
}

// give returns need to the pool and wakes waiters; p.mu is held.
func (p *pool) give(need amounts) {
	for dim, v := range need {
		p.used[dim] -= v
	}
	p.grant()
}

// grant admits waiters from the head of the line while they fit; p.mu is
// held.
func (p *pool) grant() {
	for len(p.waiters) > 0 && p.fits(p.waiters[0].need) {
		w := p.waiters[0]
		p.waiters = p.waiters[1:]
		for dim, v := range w.need {
			p.used[dim] += v
		}
		close(w.granted)
	}
}
