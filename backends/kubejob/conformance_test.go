package kubejob_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/backendtest"
	"github.com/sluice-ml/sluice/backends/kubejob"
	"github.com/sluice-ml/sluice/internal/kubesim"
	"github.com/sluice-ml/sluice/internal/simtime"
)

// simBackend is a kubejob Backend whose compiled plans the simulated
// cluster can run: compiling registers the plan's Go tasks with it, as
// building the image would put them into the pods.
type simBackend struct {
	*kubejob.Backend
	cl *kubesim.Cluster
}

func (b *simBackend) Compile(ctx context.Context, plan *backends.Plan, opts *backends.CompileOptions) (backends.Artifact, error) {
	b.cl.RegisterPlan(plan)
	return b.Backend.Compile(ctx, plan, opts)
}

// harness is a fake clientset with a simulated cluster on it. The
// cluster's clock skips to a task's deadline while every running task
// waits for its context to end; a test that also times the orchestrator
// by it (kubejob.SetClock) steps it itself.
type harness struct {
	cs       *fake.Clientset
	cl       *kubesim.Cluster
	clk      *simtime.Clock
	backends []*kubejob.Backend
}

// newHarness runs the simulated cluster on the plain object tracker of
// fake.NewSimpleClientset: the field-managed tracker of fake.NewClientset
// builds a REST mapper on every write, a third of the simulated cluster's
// CPU time, and nothing here uses server-side apply. Its writes come as
// fast as the cluster makes them, so a Job can fail BackoffLimitExceeded
// before the orchestrator's pod informer has seen the pod; the
// orchestrator reads the Job's pods then (see jobFailed).
func newHarness(t testing.TB) *harness { return newHarnessOn(t, fake.NewSimpleClientset()) }

func newHarnessOn(t testing.TB, cs *fake.Clientset) *harness {
	replayingWatches(cs)
	clk := simtime.New(time.Now())
	clk.SetSkip(true)
	return &harness{cs: cs, cl: kubesim.New(t, cs, clk), clk: clk}
}

func (h *harness) backend(opts *kubejob.Options) *simBackend {
	b := kubejob.New(h.cs, opts)
	h.backends = append(h.backends, b)
	return &simBackend{Backend: b, cl: h.cl}
}

func (h *harness) MakeBackend(ctx context.Context) (backends.Backend, error) {
	return h.backend(testOptions()), nil
}

func (h *harness) Capabilities() backendtest.Capabilities { return backendtest.Capabilities{} }

func TestCompileConformance(t *testing.T) {
	backendtest.RunCompileTests(t, kubejob.New(nil, testOptions()), backendtest.Capabilities{})
}

func (h *harness) Close() {
	for _, b := range h.backends {
		b.Close()
	}
	h.cl.Close()
}

func TestConformance(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	backendtest.RunConformanceTests(t, func(ctx context.Context, t *testing.T) (backendtest.Harness, error) {
		return newHarness(t), nil
	})
}

// replayingWatches makes watches on cs start with the current objects,
// the way a real API server's watch from a list's resourceVersion
// replays what changed since the list. The fake clientset's watch starts
// empty, so an informer that lists while objects change would miss the
// changes made between its list and its watch: a gap real clusters do
// not have, and which would stall a resumed orchestrator in tests.
func replayingWatches(cs *fake.Clientset) {
	cs.PrependWatchReactor("*", func(a clienttesting.Action) (bool, watch.Interface, error) {
		w, err := replayWatch(cs.Tracker(), a)
		return true, w, err
	})
}

// replayWatch starts a tracker watch for action a and sends the objects
// stored now ahead of its events. An event raced by the snapshot is sent
// after it and carries the newer state, so the last word is always the
// store's.
func replayWatch(tr clienttesting.ObjectTracker, a clienttesting.Action) (watch.Interface, error) {
	gvr, ns := a.GetResource(), a.GetNamespace()
	var opts metav1.ListOptions
	if wa, ok := a.(clienttesting.WatchActionImpl); ok {
		opts = wa.ListOptions
	}
	w, err := tr.Watch(gvr, ns, opts)
	if err != nil {
		return nil, err
	}
	kind := map[string]string{"jobs": "Job", "pods": "Pod", "configmaps": "ConfigMap"}[gvr.Resource]
	if kind == "" {
		return w, nil
	}
	list, err := tr.List(gvr, gvr.GroupVersion().WithKind(kind), ns, opts)
	if err != nil {
		w.Stop()
		return nil, err
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		w.Stop()
		return nil, err
	}
	r := &replayed{inner: w, ch: make(chan watch.Event), done: make(chan struct{})}
	go func() {
		defer close(r.ch)
		send := func(ev watch.Event) bool {
			select {
			case r.ch <- ev:
				return true
			case <-r.done:
				return false
			}
		}
		for _, obj := range items {
			if !send(watch.Event{Type: watch.Added, Object: obj}) {
				return
			}
		}
		for ev := range w.ResultChan() {
			if !send(ev) {
				return
			}
		}
	}()
	return r, nil
}

// replayed is a watch that sends a snapshot, then the tracker's events.
type replayed struct {
	inner watch.Interface
	ch    chan watch.Event
	done  chan struct{}
	once  sync.Once
}

func (r *replayed) ResultChan() <-chan watch.Event { return r.ch }

func (r *replayed) Stop() {
	r.once.Do(func() {
		close(r.done)
		r.inner.Stop()
	})
}
