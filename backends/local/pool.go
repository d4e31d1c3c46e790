package local

import (
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

// amounts are what a task holds while it runs besides its slot (every
// task holds one of the Options.Parallelism slots), by dimension:
// milli-CPU, bytes of memory, and counts of nvidia.com/gpu and
// nvidia.com/mig-<profile>. A task without counted requests holds none:
// nil.
type amounts map[string]int64

const (
	dimCPU    = string(corev1.ResourceCPU)
	dimMemory = string(corev1.ResourceMemory)
	dimGPU    = string(resources.GPUResource)
	migPrefix = "nvidia.com/mig-"
)

// poolDim is the dimension dim of the node pool named pool, for steps that
// draw from Options.Pools rather than Options.Capacity.
func poolDim(pool, dim string) string { return "pool:" + pool + "/" + dim }

// splitPoolDim undoes poolDim; pool is "" for a machine-wide dimension.
func splitPoolDim(d string) (pool, dim string) {
	if rest, ok := strings.CutPrefix(d, "pool:"); ok {
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			return rest[:i], rest[i+1:]
		}
	}
	return "", d
}

// demandOf is what one task (or fan-out instance) of s holds while it
// runs besides its slot: from its node pool's capacity when pools has it
// (else the machine's), its CPU, memory, GPUs and MIG slices. Other
// requests are ignored. The result must not be modified.
func demandOf(s *backends.Step, pools map[string]Capacity) amounts {
	pool := s.Task.Resources.NodePool
	if _, ok := pools[pool]; !ok {
		pool = ""
	}
	var d amounts
	for name, q := range s.Resolved.Requests {
		var v int64
		switch n := string(name); {
		case n == dimCPU:
			v = q.MilliValue()
		case n == dimMemory, n == dimGPU, strings.HasPrefix(n, migPrefix):
			v = q.Value()
		default:
			continue
		}
		if d == nil {
			d = amounts{}
		}
		dim := string(name)
		if mig := s.Task.Resources.MIG; mig != "" && name != corev1.ResourceCPU && name != corev1.ResourceMemory {
			// Slices count against their profile whatever the pool's GPU
			// stack calls them (GKE's managed stack: nvidia.com/gpu).
			dim = string(resources.MIGResourceName(mig))
		}
		if pool != "" {
			dim = poolDim(pool, dim)
		}
		d[dim] = v
	}
	return d
}

// poolLimits turns Options.Pools into amounts in pool dimensions.
func poolLimits(pools map[string]Capacity) (amounts, error) {
	out := amounts{}
	for name, c := range pools {
		lim, err := c.limits()
		if err != nil {
			return nil, fmt.Errorf("local: Options.Pools[%s]: %w", name, err)
		}
		for dim, v := range lim {
			out[poolDim(name, dim)] = v
		}
	}
	return out, nil
}

// limits turns a Capacity into amounts; nil means no limit.
func (c *Capacity) limits() (amounts, error) {
	if c == nil {
		return nil, nil
	}
	// Check the quantities the way profiles are checked first: some
	// strings ("1e-999999999") make resource.ParseQuantity never return.
	if err := (resources.Profile{CPU: c.CPU, Memory: c.Memory}).Validate(); err != nil {
		return nil, fmt.Errorf("local: Options.Capacity: %w", err)
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
	slots int64   // Options.Parallelism
	total amounts // limited dimensions
	// accel: accelerator dimensions missing from total have none (a
	// Capacity was given); otherwise they are unlimited too.
	accel bool

	mu   sync.Mutex
	busy int64 // slots held
	used amounts
	// waiters is the line, a min-heap by prio: waiters[0] is first. A
	// waiter that gives up is marked gone and dropped when it comes first.
	waiters []lineEntry
	// granted are tickets granted and not yet handed to a goroutine.
	granted []ticket
}

type lineEntry struct {
	prio prio
	w    *waiter
}

// waiter is a goroutine waiting in acquire, or a ticket (see submit).
type waiter struct {
	need    amounts
	granted chan struct{} // closed when granted, for acquire
	ticket  ticket        // or run when granted
	owner   any           // who submitted ticket, for drop
	gone    bool          // gave up waiting
}

// A ticket is a task that waits in line without a goroutine. Granted, it
// runs holding its demand, on the goroutine of a task that ended or a new
// one.
type ticket interface {
	// run runs the task, which must release its demand with releaseTake,
	// and returns the ticket to run next, or nil.
	run() ticket
	// drop ends the task without running it; see pool.drop.
	drop()
}

// runTickets runs t and the tickets it hands on.
func runTickets(t ticket) {
	for t != nil {
		t = t.run()
	}
}

// goRun runs t, if not nil, on a goroutine of its own.
func goRun(t ticket) {
	if t != nil {
		go runTickets(t)
	}
}

// prio orders waiters: by run, then step in plan order, then instance.
type prio [3]int

func (a *prio) less(b *prio) bool {
	switch {
	case a[0] != b[0]:
		return a[0] < b[0]
	case a[1] != b[1]:
		return a[1] < b[1]
	}
	return a[2] < b[2]
}

func newPool(parallelism int, limits amounts, capacity bool) *pool {
	total := maps.Clone(limits)
	if total == nil {
		total = amounts{}
	}
	return &pool{slots: int64(parallelism), total: total, accel: capacity, used: amounts{}}
}

// limit returns the capacity of dim and whether it is limited.
func (p *pool) limit(dim string) (int64, bool) {
	if v, ok := p.total[dim]; ok {
		return v, true
	}
	if pool, base := splitPoolDim(dim); pool != "" {
		// A declared pool has none of the accelerators it does not list.
		return 0, strings.HasPrefix(base, "nvidia.com/")
	}
	return 0, p.accel && strings.HasPrefix(dim, "nvidia.com/")
}

// fitsAtAll reports, as an error wrapping errors.ErrUnsupported, the first
// dimension in which need exceeds the whole capacity (a slot always fits).
func (p *pool) fitsAtAll(step string, need amounts) error {
	if p.fitsIn(need, func(string) int64 { return 0 }) {
		return nil
	}
	for _, dim := range slices.Sorted(maps.Keys(need)) {
		if lim, ok := p.limit(dim); ok && need[dim] > lim {
			pool, base := splitPoolDim(dim)
			offer := "Options.Capacity"
			if pool != "" {
				offer = fmt.Sprintf("Options.Pools[%s]", pool)
			}
			return fmt.Errorf("local: step %q asks for %s %s, but %s offers %s: %w",
				step, base, formatAmount(base, need[dim]), offer, formatAmount(base, lim), errors.ErrUnsupported)
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

// fits reports whether a slot and need fit next to what is in use; p.mu
// is held.
func (p *pool) fits(need amounts) bool {
	return p.busy < p.slots && p.fitsIn(need, func(dim string) int64 { return p.used[dim] })
}

// fitsIn reports whether need fits next to used.
func (p *pool) fitsIn(need amounts, used func(dim string) int64) bool {
	for dim, v := range need {
		if lim, ok := p.limit(dim); ok && used(dim)+v > lim {
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
	release = func() { p.release(need) }
	p.mu.Lock()
	if len(p.waiters) == 0 && p.fits(need) {
		// What grant would do at once for a waiter alone in line.
		p.take(need)
		p.mu.Unlock()
		return release, nil
	}
	w := &waiter{need: need, granted: make(chan struct{})}
	p.push(pr, w)
	p.grant()
	p.handOff(false)

	select {
	case <-w.granted:
		return release, nil
	case <-ctx.Done():
	}
	p.mu.Lock()
	select {
	case <-w.granted: // granted meanwhile: give it back
		p.give(need)
	default:
		w.gone = true
		p.grant()
	}
	p.handOff(false)
	return nil, ctx.Err()
}

// submit puts w.ticket in line for w.need, on behalf of w.owner. Once
// granted, the ticket runs holding its need (see ticket). submit returns a
// ticket granted meanwhile (w's own when its need fits at once) for the
// caller to run.
func (p *pool) submit(pr prio, w *waiter) ticket {
	p.mu.Lock()
	p.push(pr, w)
	p.grant()
	return p.handOff(true)
}

// releaseTake gives need back, like a release, and returns a ticket this
// granted, for the caller to run next (its stack has grown already).
func (p *pool) releaseTake(need amounts) ticket {
	p.mu.Lock()
	p.give(need)
	return p.handOff(true)
}

// drop takes the tickets of owner out of line and returns them; the
// caller drops them.
func (p *pool) drop(owner any) []ticket {
	var out []ticket
	p.mu.Lock()
	for _, e := range p.waiters {
		if w := e.w; w.ticket != nil && !w.gone && w.owner == owner {
			w.gone = true
			out = append(out, w.ticket)
		}
	}
	p.grant()
	p.handOff(false)
	return out
}

// handOff unlocks p.mu, which is held, and hands the granted tickets to
// goroutines; with keep, it returns the first instead, for the caller.
func (p *pool) handOff(keep bool) ticket {
	if len(p.granted) == 0 {
		p.mu.Unlock()
		return nil
	}
	var first ticket
	rest := p.granted
	if keep {
		first, rest = rest[0], rest[1:]
	}
	rest = slices.Clone(rest)
	clear(p.granted)
	p.granted = p.granted[:0]
	p.mu.Unlock()
	for _, t := range rest {
		goRun(t)
	}
	return first
}

func (p *pool) release(need amounts) {
	p.mu.Lock()
	p.give(need)
	p.handOff(false)
}

// give returns a slot and need to the pool and wakes waiters; p.mu is
// held.
func (p *pool) give(need amounts) {
	p.busy--
	for dim, v := range need {
		p.used[dim] -= v
	}
	p.grant()
}

// grant admits waiters from the head of the line while they fit, first
// dropping those that gave up; p.mu is held.
func (p *pool) grant() {
	for len(p.waiters) > 0 {
		w := p.waiters[0].w
		if !w.gone {
			if !p.fits(w.need) {
				return
			}
			p.take(w.need)
			if w.ticket != nil {
				p.granted = append(p.granted, w.ticket)
			} else {
				close(w.granted)
			}
		}
		p.pop()
	}
}

// The line is a binary min-heap by prio, with each entry's prio inline so
// that ordering it touches no waiter.

// push adds w to the line; p.mu is held.
func (p *pool) push(pr prio, w *waiter) {
	p.waiters = append(p.waiters, lineEntry{pr, w})
	for i := len(p.waiters) - 1; i > 0; {
		parent := (i - 1) / 2
		if !p.less(i, parent) {
			return
		}
		p.swap(i, parent)
		i = parent
	}
}

// pop takes the head out of the line; p.mu is held.
func (p *pool) pop() {
	last := len(p.waiters) - 1
	p.swap(0, last)
	p.waiters[last] = lineEntry{}
	p.waiters = p.waiters[:last]
	for i := 0; ; {
		m := i
		if l := 2*i + 1; l < last && p.less(l, m) {
			m = l
		}
		if r := 2*i + 2; r < last && p.less(r, m) {
			m = r
		}
		if m == i {
			return
		}
		p.swap(i, m)
		i = m
	}
}

func (p *pool) less(i, j int) bool { return p.waiters[i].prio.less(&p.waiters[j].prio) }

func (p *pool) swap(i, j int) { p.waiters[i], p.waiters[j] = p.waiters[j], p.waiters[i] }

// take adds a slot and need to what is in use; p.mu is held.
func (p *pool) take(need amounts) {
	p.busy++
	for dim, v := range need {
		p.used[dim] += v
	}
}
