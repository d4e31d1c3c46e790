package kubejob_test

import (
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
)

// Kinds of injected faults, the keys of faults.injected.
const (
	// faultInternal is a 500 InternalError before the call takes effect.
	faultInternal = "InternalError"
	// faultThrottled is a 429 TooManyRequests (retry after 0 or 1 s)
	// before the call takes effect.
	faultThrottled = "TooManyRequests"
	// faultLost is a create or delete that took effect but whose response
	// was lost: a 500 or a 504 timeout, so that a retry meets 409
	// AlreadyExists or 404 NotFound.
	faultLost = "AppliedButLost"
	// faultConflict is a 409 Conflict on an update or patch, as a stale
	// resourceVersion gets.
	faultConflict = "Conflict"
	// faultWatchFailed is a watch that could not be started (500).
	faultWatchFailed = "WatchFailed"
	// faultWatchDropped is a watch ended by the server: its channel
	// closes, after an Error event 410 Gone ("too old resource version")
	// every other time, so informers re-list and watch again.
	faultWatchDropped = "WatchDropped"
)

// faults makes API calls made through a fake clientset's typed clients
// fail now and then, the way a busy API server does. Calls on jobs, pods
// and configmaps are eligible: get, list and watch on all three, and
// create, update, patch, delete and deletecollection on jobs and
// configmaps (pods are written only by the cluster, which bypasses cs).
// The choice of faults is drawn from a generator seeded by the caller, so
// a sequence of calls gets the same faults again. Safe for concurrent use.
type faults struct {
	cs *fake.Clientset
	tr clienttesting.ObjectTracker

	mu       sync.Mutex
	rng      *rand.Rand
	rate     float64
	stopped  bool
	every    time.Duration // mean life of a watch; 0: watches are not dropped
	timers   []*time.Timer
	calls    int            // every call made through cs (watches included)
	eligible int            // calls that could have failed
	injected map[string]int // faults by kind
}

// injectFaults prepends reactors to cs so that about rate of the eligible
// API calls made through cs's typed clients fail, drawn from seed.
func injectFaults(cs *fake.Clientset, rate float64, seed int64) *faults {
	f := &faults{
		cs: cs, tr: cs.Tracker(), rate: rate,
		rng:      rand.New(rand.NewPCG(uint64(seed), 0x5eed)),
		injected: map[string]int{},
	}
	cs.PrependReactor("*", "*", f.react)
	cs.PrependWatchReactor("*", f.watch)
	return f
}

// dropWatches makes watches started from now on end after a random time
// between every/2 and 3*every/2. Zero stops dropping new watches.
func (f *faults) dropWatches(every time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.every = every
}

// stop ends the faults: no more errors, no more dropped watches.
func (f *faults) stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopped = true
	for _, t := range f.timers {
		t.Stop()
	}
	f.timers = nil
}

// counts returns the calls made through cs, the eligible ones, and the
// faults injected by kind.
func (f *faults) counts() (calls, eligible int, injected map[string]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	injected = map[string]int{}
	for k, v := range f.injected {
		injected[k] = v
	}
	return f.calls, f.eligible, injected
}

// total returns how many faults were injected, of every kind.
func (f *faults) total() int {
	_, _, in := f.counts()
	n := 0
	for _, v := range in {
		n += v
	}
	return n
}

var faultResources = map[string]bool{"jobs": true, "pods": true, "configmaps": true}

// draw decides, for an eligible call, which of kinds to inject, if any.
func (f *faults) draw(kinds ...string) string {
	f.eligible++
	if f.stopped || f.rng.Float64() >= f.rate {
		return ""
	}
	k := kinds[f.rng.IntN(len(kinds))]
	f.injected[k]++
	return k
}

func (f *faults) react(action clienttesting.Action) (bool, runtime.Object, error) {
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
	case "get", "list":
		kind = f.draw(faultInternal, faultThrottled)
	case "create":
		if writable {
			kind = f.draw(faultInternal, faultThrottled, faultLost)
		}
	case "update", "patch":
		if writable {
			kind = f.draw(faultInternal, faultThrottled, faultConflict)
		}
	case "delete":
		if writable {
			kind = f.draw(faultInternal, faultThrottled, faultLost)
		}
	case "delete-collection":
		if writable {
			kind = f.draw(faultInternal, faultThrottled)
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
	case faultInternal:
		return true, nil, apierrors.NewInternalError(errors.New("injected: etcdserver: leader changed"))
	case faultThrottled:
		return true, nil, apierrors.NewTooManyRequests("injected: the server has received too many requests", f.rng.IntN(2))
	case faultConflict:
		return true, nil, apierrors.NewConflict(gr, name, errors.New("the object has been modified; please apply your changes to the latest version and try again"))
	case faultLost:
		return true, nil, f.applyAndLose(action, gr)
	}
	return false, nil, nil
}

// applyAndLose performs a create or delete on the tracker and returns the
// error of a response that never arrived (or the call's own error, such as
// AlreadyExists, which the server would have sent).
func (f *faults) applyAndLose(action clienttesting.Action, gr schema.GroupResource) error {
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

func (f *faults) watch(action clienttesting.Action) (bool, watch.Interface, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	res := action.GetResource()
	if !faultResources[res.Resource] {
		return false, nil, nil
	}
	if f.draw(faultWatchFailed) != "" {
		return true, nil, apierrors.NewInternalError(errors.New("injected: watch failed"))
	}
	if f.stopped || f.every <= 0 {
		return false, nil, nil
	}
	var opts metav1.ListOptions
	if a, ok := action.(clienttesting.WatchActionImpl); ok {
		opts = a.ListOptions
	}
	w, err := f.tr.Watch(res, action.GetNamespace(), opts)
	if err != nil {
		return true, nil, err
	}
	life := f.every/2 + time.Duration(f.rng.Int64N(int64(f.every)+1))
	gone := f.rng.IntN(2) == 0
	f.timers = append(f.timers, time.AfterFunc(life, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		fw, ok := w.(*watch.RaceFreeFakeWatcher)
		if f.stopped || (ok && fw.IsStopped()) {
			return // stopped by its consumer already
		}
		f.injected[faultWatchDropped]++
		if ok && gone {
			st := apierrors.NewResourceExpired("injected: too old resource version").Status()
			fw.Error(&st)
		}
		w.Stop()
	}))
	return true, w, nil
}
