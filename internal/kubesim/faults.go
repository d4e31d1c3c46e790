package kubesim

import (
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/utils/clock"
)

// Kinds of injected faults, the keys of the map [Faults.Counts] returns.
const (
	// FaultInternal is a 500 InternalError before the call takes effect.
	FaultInternal = "InternalError"
	// FaultThrottled is a 429 TooManyRequests (retry after 0 or 1 s)
	// before the call takes effect.
	FaultThrottled = "TooManyRequests"
	// FaultLost is a create or delete that took effect but whose response
	// was lost: a 500 or a 504 timeout, so that a retry meets 409
	// AlreadyExists or 404 NotFound.
	FaultLost = "AppliedButLost"
	// FaultConflict is a 409 Conflict on an update or patch, as a stale
	// resourceVersion gets.
	FaultConflict = "Conflict"
	// FaultWatchFailed is a watch that could not be started (500).
	FaultWatchFailed = "WatchFailed"
	// FaultWatchDropped is a watch ended by the server: its channel
	// closes, the first time for a resource (and then at most every
	// goneEvery) after an Error event 410 Gone ("too old resource
	// version"), so informers re-list and watch again; other times the
	// next watch of the resource resumes where the dropped one ended, as
	// a real server does from the resourceVersion.
	FaultWatchDropped = "WatchDropped"
)

// Faults makes API calls made through a fake clientset's typed clients
// fail now and then, the way a busy API server does. It also serves the
// lists and watches of jobs, pods and configmaps the way a real server
// does and the fake tracker does not: every object and event carries a
// resourceVersion, and a watch starts from the one it is given, so a
// client that lists and then watches, or watches again after a drop,
// misses nothing in between. Calls on jobs, pods
// and configmaps are eligible: get, list and watch on all three, and
// create, update, patch, delete and deletecollection on jobs and
// configmaps (pods are written only by the cluster, which bypasses cs).
// The choice of faults is drawn from a generator seeded by the caller, so
// a sequence of calls gets the same faults again. Safe for concurrent use.
type Faults struct {
	cs  *fake.Clientset
	tr  clienttesting.ObjectTracker
	clk clock.WithDelayedExecution // times the lives of watches

	mu      sync.Mutex
	rng     *rand.Rand
	rate    float64
	stopped bool
	every   time.Duration // mean life of a watch; 0: watches are not dropped
	timers  []clock.Timer
	// goneEvery spaces the drops that end with 410 Gone, per resource:
	// client-go re-lists after those, but only after a backoff that
	// doubles (from 0.8 s) when they come often. Others just close, and
	// the client's next watch resumes where the dropped one ended.
	goneEvery time.Duration
	lastGone  map[string]time.Time
	logs      map[string]*eventLog // by resource: what lists and watches are served from, begun at the first
	rv        atomic.Uint64        // the newest resourceVersion of all logs
	ending    atomic.Int64         // watch ends due on the clock, not yet handled
	calls     int                  // every call made through cs (watches included)
	eligible  int                  // calls that could have failed
	injected  map[string]int       // faults by kind
}

// InjectFaults prepends reactors to cs so that about rate of the eligible
// API calls made through cs's typed clients fail (lists and watches at a
// quarter of it: client-go backs off for seconds after each), drawn from
// seed. The lives of watches (DropWatches) are timed on clk: a watch is
// dropped only when the test moves clk past its end.
func InjectFaults(cs *fake.Clientset, rate float64, seed int64, clk clock.WithDelayedExecution) *Faults {
	f := &Faults{
		cs: cs, tr: cs.Tracker(), rate: rate, clk: clk,
		rng:       rand.New(rand.NewPCG(uint64(seed), 0x5eed)),
		injected:  map[string]int{},
		goneEvery: 10 * time.Second,
		lastGone:  map[string]time.Time{},
		logs:      map[string]*eventLog{},
	}
	cs.PrependReactor("*", "*", f.react)
	cs.PrependWatchReactor("*", f.watch)
	return f
}

// DropWatches makes watches started from now on end after a random time
// between every/2 and 3*every/2 on f's clock (a watch without events
// lasts at least 1.1 s, so that client-go does not back off). Zero stops
// dropping new watches.
func (f *Faults) DropWatches(every time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.every = every
}

// Stop ends the faults: no more errors, no more dropped watches.
func (f *Faults) Stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopped = true
	for _, t := range f.timers {
		t.Stop()
	}
	f.timers = nil
}

// log returns the event log of resource, begun now if it was not (nil
// when it is not logged); f.mu is held. A log begins at the first list or
// watch, not before: the tracker's watch that feeds it panics when more
// than 100 of its events wait, and a test that makes many calls and
// watches nothing would not need it.
func (f *Faults) log(resource string) *eventLog {
	if l := f.logs[resource]; l != nil {
		return l
	}
	for _, r := range logged {
		if r.gvr.Resource == resource && f.logs != nil {
			l := newEventLog(f.tr, r, &f.rv)
			f.logs[resource] = l
			return l
		}
	}
	return nil
}

// Close stops f (see Stop) and ends its logs: watches served from them
// close, and the goroutines that keep them end.
func (f *Faults) Close() {
	f.Stop()
	f.mu.Lock()
	logs := f.logs
	f.logs = nil // lists and watches go to the tracker from now on
	f.mu.Unlock()
	for _, l := range logs {
		l.close()
	}
}

// Counts returns the calls made through cs, the eligible ones, and the
// faults injected by kind.
func (f *Faults) Counts() (calls, eligible int, injected map[string]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	injected = map[string]int{}
	for k, v := range f.injected {
		injected[k] = v
	}
	return f.calls, f.eligible, injected
}

// Total returns how many faults were injected, of every kind.
func (f *Faults) Total() int {
	_, _, in := f.Counts()
	n := 0
	for _, v := range in {
		n += v
	}
	return n
}

var faultResources = map[string]bool{"jobs": true, "pods": true, "configmaps": true}

// listWatchShare is the share of rate at which lists and watches fail:
// client-go's reflector answers each such failure with a re-list after a
// backoff that doubles from 0.8 s up to 30 s (reset only after two quiet
// minutes), so at the full rate a test would spend most of its time
// waiting. They still fail, less often.
const listWatchShare = 0.25

// draw decides, for an eligible call, which of kinds to inject, if any,
// at share of the rate.
func (f *Faults) draw(share float64, kinds ...string) string {
	f.eligible++
	if f.stopped || f.rng.Float64() >= f.rate*share {
		return ""
	}
	k := kinds[f.rng.IntN(len(kinds))]
	f.injected[k]++
	return k
}

func (f *Faults) react(action clienttesting.Action) (bool, runtime.Object, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	res := action.GetResource()
	if !faultResources[res.Resource] || action.GetSubresource() != "" {
		return false, nil, nil
	}
	writable := res.Resource != "pods"
	var kind string
	switch action.GetVerb() {
	case "get":
		kind = f.draw(1, FaultInternal, FaultThrottled)
	case "list":
		if kind = f.draw(listWatchShare, FaultInternal, FaultThrottled); kind == "" {
			if l := f.log(res.Resource); l != nil {
				return true, l.list(action.GetNamespace()), nil
			}
		}
	case "create":
		if writable {
			kind = f.draw(1, FaultInternal, FaultThrottled, FaultLost)
		}
	case "update", "patch":
		if writable {
			kind = f.draw(1, FaultInternal, FaultThrottled, FaultConflict)
		}
	case "delete":
		if writable {
			kind = f.draw(1, FaultInternal, FaultThrottled, FaultLost)
		}
	case "delete-collection":
		if writable {
			kind = f.draw(1, FaultInternal, FaultThrottled)
		}
	}
	name := ""
	if a, ok := action.(interface{ GetName() string }); ok {
		name = a.GetName()
	}
	gr := res.GroupResource()
	switch kind {
	case "":
		return false, nil, nil
	case FaultInternal:
		return true, nil, apierrors.NewInternalError(errors.New("injected: etcdserver: leader changed"))
	case FaultThrottled:
		return true, nil, apierrors.NewTooManyRequests("injected: the server has received too many requests", f.rng.IntN(2))
	case FaultConflict:
		return true, nil, apierrors.NewConflict(gr, name, errors.New("the object has been modified; please apply your changes to the latest version and try again"))
	case FaultLost:
		return true, nil, f.applyAndLose(action, gr)
	}
	return false, nil, nil
}

// applyAndLose performs a create or delete on the tracker and returns the
// error of a response that never arrived (or the call's own error, such as
// AlreadyExists, which the server would have sent).
func (f *Faults) applyAndLose(action clienttesting.Action, gr schema.GroupResource) error {
	var err error
	switch a := action.(type) {
	case clienttesting.CreateActionImpl:
		obj := a.GetObject()
		if m, merr := meta.Accessor(obj); merr == nil && m.GetName() == "" && m.GetGenerateName() != "" {
			// Without a name the retry cannot collide; fail before applying.
			return apierrors.NewInternalError(errors.New("injected: etcdserver: leader changed"))
		}
		err = f.tr.Create(a.GetResource(), obj, a.GetNamespace(), a.CreateOptions)
	case clienttesting.DeleteActionImpl:
		err = f.tr.Delete(a.GetResource(), a.GetNamespace(), a.GetName(), a.DeleteOptions)
	}
	if err != nil {
		return err
	}
	if f.rng.IntN(2) == 0 {
		return apierrors.NewTimeoutError("injected: request did not complete within requested timeout", 0)
	}
	return apierrors.NewInternalError(errors.New("injected: http2: client connection lost"))
}

func (f *Faults) watch(action clienttesting.Action) (bool, watch.Interface, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	res := action.GetResource()
	l := f.log(res.Resource)
	if l == nil || action.GetSubresource() != "" {
		return false, nil, nil
	}
	if f.draw(listWatchShare, FaultWatchFailed) != "" {
		return true, nil, apierrors.NewInternalError(errors.New("injected: watch failed"))
	}
	var opts metav1.ListOptions
	if a, ok := action.(clienttesting.WatchActionImpl); ok {
		opts = a.ListOptions
	}
	inner, err := l.watch(action.GetNamespace(), opts.ResourceVersion)
	if err != nil {
		return true, nil, err
	}
	if f.stopped || f.every <= 0 {
		return true, inner, nil
	}
	fw := &flakyWatch{inner: inner, out: make(chan watch.Event), stopCh: make(chan struct{}), drop: make(chan *watch.Event, 1), start: f.clk.Now()}
	go fw.run()
	f.schedule(fw, res.Resource, f.every/2+time.Duration(f.rng.Int64N(int64(f.every)+1)))
	return true, fw, nil
}

// schedule ends fw after life on f's clock; f.mu is held.
func (f *Faults) schedule(fw *flakyWatch, resource string, life time.Duration) {
	// A clock callback runs under the clock's lock; f.mu is taken on a
	// goroutine of its own, since f.mu is held while the clock is called.
	t := f.clk.AfterFunc(life, func() {
		f.ending.Add(1)
		go f.end(fw, resource)
	})
	f.timers = append(f.timers, t)
}

// end drops fw, or reschedules its end if it is too young.
func (f *Faults) end(fw *flakyWatch, resource string) {
	defer f.ending.Add(-1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped || fw.stopped() {
		return
	}
	if fw.events.Load() == 0 && f.clk.Since(fw.start) < minWatchLife {
		// client-go takes a watch that ends within a second without
		// events for a broken server and backs off for seconds.
		f.schedule(fw, resource, min(f.every/2+time.Millisecond, minWatchLife-f.clk.Since(fw.start)))
		return
	}
	f.injected[FaultWatchDropped]++
	if now := f.clk.Now(); now.Sub(f.lastGone[resource]) >= f.goneEvery {
		f.lastGone[resource] = now
		st := apierrors.NewResourceExpired("injected: too old resource version").Status()
		fw.drop <- &watch.Event{Type: watch.Error, Object: &st}
		return
	}
	// A plain close: the client watches again from the resourceVersion
	// of the last event it got, and the log resumes there.
	fw.drop <- nil
}

// minWatchLife is how long a watch that has had no event lasts at least:
// client-go's reflector backs off after shorter ones.
const minWatchLife = 1100 * time.Millisecond

// flakyWatch forwards a tracker watch and counts its events, until its
// consumer stops it or the injector drops it.
type flakyWatch struct {
	inner  watch.Interface
	out    chan watch.Event
	stopCh chan struct{}
	once   sync.Once
	drop   chan *watch.Event // a last event to send (nil: none), then close
	start  time.Time
	events atomic.Int64
}

func (w *flakyWatch) ResultChan() <-chan watch.Event { return w.out }

func (w *flakyWatch) Stop() { w.once.Do(func() { close(w.stopCh) }) }

func (w *flakyWatch) stopped() bool {
	select {
	case <-w.stopCh:
		return true
	default:
		return false
	}
}

func (w *flakyWatch) run() {
	defer close(w.out)
	defer w.inner.Stop()
	for {
		select {
		case <-w.stopCh:
			return
		case last := <-w.drop:
			if last != nil {
				select {
				case w.out <- *last:
				case <-w.stopCh:
				}
				return
			}
			return
		case ev, ok := <-w.inner.ResultChan():
			if !ok {
				return
			}
			// Counted before it is handed over: a consumer that got it may
			// act (step the clock) before this goroutine runs again, and
			// the watch must not look eventless then.
			w.events.Add(1)
			select {
			case w.out <- ev:
			case <-w.stopCh:
				return
			}
		}
	}
}
