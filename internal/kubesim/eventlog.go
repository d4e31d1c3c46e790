package kubesim

import (
	"fmt"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	clienttesting "k8s.io/client-go/testing"
)

// logged are the resources whose lists and watches Faults serves from an
// eventLog.
var logged = []loggedResource{
	{batchv1.SchemeGroupVersion.WithResource("jobs"), "Job", func() runtime.Object { return &batchv1.JobList{} }},
	{corev1.SchemeGroupVersion.WithResource("pods"), "Pod", func() runtime.Object { return &corev1.PodList{} }},
	{corev1.SchemeGroupVersion.WithResource("configmaps"), "ConfigMap", func() runtime.Object { return &corev1.ConfigMapList{} }},
}

// loggedResource is a resource, the kind of its objects and its typed list.
type loggedResource struct {
	gvr     schema.GroupVersionResource
	kind    string
	newList func() runtime.Object
}

// An eventLog keeps every event of one resource since it began, each
// stamped with a resourceVersion (one counter for all resources), and the
// objects as they stand after them. Lists come from its objects and
// watches from its events, from the resourceVersion they ask for, so a
// list and the watch that follows it are exactly consistent, as with a
// real API server's watch cache. The fake tracker sets no
// resourceVersions and starts every watch at the call.
type eventLog struct {
	newList func() runtime.Object
	inner   watch.Interface // the tracker's watch of every namespace
	done    chan struct{}   // closed when the log ends

	mu      sync.Mutex
	objs    map[string]runtime.Object // by namespace/name
	events  []stamped
	rv      uint64        // the resourceVersion of the newest event
	changed chan struct{} // closed and replaced on each event
	closed  bool
}

type stamped struct {
	rv uint64
	ns string
	ev watch.Event
}

// newEventLog starts logging r from tr, with the objects tr holds now.
func newEventLog(tr clienttesting.ObjectTracker, r loggedResource, rv *atomic.Uint64) *eventLog {
	gvr, newList := r.gvr, r.newList
	l := &eventLog{newList: newList, done: make(chan struct{}), objs: map[string]runtime.Object{}, changed: make(chan struct{})}
	// Watch first, then list: an object changed in between is in both,
	// and applying its event again leaves it as it is.
	w, err := tr.Watch(gvr, "")
	if err != nil {
		panic(fmt.Sprintf("kubesim: watching %s: %v", gvr, err))
	}
	l.inner = w
	if obj, err := tr.List(gvr, gvr.GroupVersion().WithKind(r.kind), ""); err == nil {
		items, _ := meta.ExtractList(obj)
		for _, o := range items {
			l.apply(watch.Event{Type: watch.Added, Object: o}, rv.Add(1))
		}
	}
	go l.run(rv)
	return l
}

func (l *eventLog) run(rv *atomic.Uint64) {
	defer close(l.done)
	for ev := range l.inner.ResultChan() {
		if _, err := meta.Accessor(ev.Object); err != nil {
			continue
		}
		l.mu.Lock()
		l.apply(ev, rv.Add(1))
		l.mu.Unlock()
	}
}

// apply stamps ev with rv and records it; l.mu is held (or l not yet
// shared).
func (l *eventLog) apply(ev watch.Event, rv uint64) {
	obj := ev.Object.DeepCopyObject()
	m, _ := meta.Accessor(obj)
	m.SetResourceVersion(strconv.FormatUint(rv, 10))
	key := m.GetNamespace() + "/" + m.GetName()
	if ev.Type == watch.Deleted {
		delete(l.objs, key)
	} else {
		l.objs[key] = obj
	}
	l.events = append(l.events, stamped{rv: rv, ns: m.GetNamespace(), ev: watch.Event{Type: ev.Type, Object: obj}})
	l.rv = rv
	close(l.changed)
	l.changed = make(chan struct{})
}

// list returns the objects in ns ("" for all) as a typed list whose
// resourceVersion is that of the newest event.
func (l *eventLog) list(ns string) runtime.Object {
	l.mu.Lock()
	defer l.mu.Unlock()
	keys := make([]string, 0, len(l.objs))
	for k, o := range l.objs {
		if m, _ := meta.Accessor(o); ns == "" || m.GetNamespace() == ns {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	items := make([]runtime.Object, len(keys))
	for i, k := range keys {
		items[i] = l.objs[k].DeepCopyObject()
	}
	list := l.newList()
	if err := meta.SetList(list, items); err != nil {
		panic(fmt.Sprintf("kubesim: %v", err))
	}
	la, _ := meta.ListAccessor(list)
	la.SetResourceVersion(strconv.FormatUint(l.rv, 10))
	return list
}

// watch returns a watch of the events in ns ("" for all) after
// resourceVersion rv ("" or "0": from now on).
func (l *eventLog) watch(ns, rv string) (watch.Interface, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	from := l.rv
	if rv != "" && rv != "0" {
		n, err := strconv.ParseUint(rv, 10, 64)
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("resourceVersion %q is not a number", rv))
		}
		from = n
	}
	next := sort.Search(len(l.events), func(i int) bool { return l.events[i].rv > from })
	w := &logWatch{l: l, ns: ns, next: next, out: make(chan watch.Event), stop: make(chan struct{})}
	go w.run()
	return w, nil
}

// close ends the log and every watch served from it.
func (l *eventLog) close() {
	l.inner.Stop()
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.closed = true
		close(l.changed)
	}
}

// logWatch sends the events of its log from next on.
type logWatch struct {
	l    *eventLog
	ns   string
	next int
	out  chan watch.Event
	stop chan struct{}
	once sync.Once
}

func (w *logWatch) ResultChan() <-chan watch.Event { return w.out }

func (w *logWatch) Stop() { w.once.Do(func() { close(w.stop) }) }

func (w *logWatch) run() {
	defer close(w.out)
	for {
		w.l.mu.Lock()
		var ev stamped
		have := w.next < len(w.l.events)
		if have {
			ev = w.l.events[w.next]
			w.next++
		}
		changed, closed := w.l.changed, w.l.closed
		w.l.mu.Unlock()
		switch {
		case have && (w.ns == "" || ev.ns == w.ns):
			select {
			case w.out <- watch.Event{Type: ev.ev.Type, Object: ev.ev.Object.DeepCopyObject()}:
			case <-w.stop:
				return
			}
		case have:
		case closed:
			return
		default:
			select {
			case <-changed:
			case <-w.stop:
				return
			}
		}
	}
}
