package kubejob

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/sluice-ml/sluice/artifact"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/backends/runstate"
	"github.com/sluice-ml/sluice/task"
)

// Keys of the run record, the ConfigMap "sluice-run-<run>" that owns a
// run's Jobs.
const (
	recordPrefix    = "sluice-run-"
	recordPipeline  = "pipeline"
	recordDigest    = "digest"
	recordPhase     = "phase"
	recordScheduled = "scheduled"      // the time the run is for (SubmitOptions.Scheduled), when given
	recordTimedOut  = "unschedulable." // + Job name: a Job deleted by the pending timeout
	recordStopped   = "canceled."      // + Job name: a running Job deleted by Cancel
	cachePrefix     = "sluice-cache-"
	cacheOutput     = "output"
	cacheTask       = "task"
	queueKey        = "run"
	instanceLabel   = "sluice.dev/instance"
	onDemandMarker  = "sluice.dev/on-demand"
	jobNameLabel    = "batch.kubernetes.io/job-name"
	legacyJobLabel  = "job-name"
	podReasonExpiry = "DeadlineExceeded"
)

// recordName is the name of run's record.
func recordName(run string) string { return recordPrefix + run }

// orchestrator drives one run: it watches the run's Jobs, Pods and record
// through shared informers and, on every change, derives each step's state
// from them (level-triggered, so a restarted orchestrator continues where
// the last one stopped) and creates or deletes what that state calls for.
// All work happens in one worker goroutine fed by a rate-limited queue.
type orchestrator struct {
	client kubernetes.Interface
	ns     string
	plan   *backends.Plan
	run    string
	tmpl   map[string]*batchv1.Job // by step name, labelled for this run
	params map[string]json.RawMessage
	digest string
	trace  string
	// observe makes the orchestrator read-only: it derives the status
	// and never creates or deletes Jobs or cache entries (another
	// orchestrator, in the cluster, runs the run).
	observe bool
	// role names the orchestrator's ServiceAccount, Role and RoleBinding,
	// for the hint on a Forbidden API error.
	role string
	// clock times retry backoffs and pending timeouts and wakes the
	// worker for them.
	clock clock.WithDelayedExecution
	// store is the run's artifact store (nil when the plan names none),
	// reached only to look inside promoted values and to delete them
	// when the run ends.
	store *artifact.Store

	factory informers.SharedInformerFactory // set by start, under mu
	jobs    batchlisters.JobLister
	pods    corelisters.PodLister
	records corelisters.ConfigMapLister
	queue   workqueue.TypedRateLimitingInterface[string]
	sel     labels.Selector

	// Worker state: only the worker goroutine uses it.
	owner   metav1.OwnerReference
	started time.Time
	meta    backends.RunMeta // what RefMeta refs read, from the record
	// scheduled is the time the run is for, given to Submit; the
	// record keeps the first one a run was submitted with.
	scheduled time.Time
	cached    map[string]json.RawMessage // cache key -> output; nil value: a miss
	stored    map[string]bool            // cache keys written by this run
	failed    map[string]string          // Job name -> why it cannot be created
	seen      map[string]time.Time       // Job name -> when its failure was first seen
	created   map[string]bool            // Jobs created (or found) here, which the lister may not show yet
	pending   map[types.UID]time.Time    // unschedulable pod -> when this orchestrator first saw it so
	gone      map[string]*timedOut       // Job name -> the record of its pending timeout, which the lister may not show yet
	vanish    map[string]bool            // pods a Job's Failed condition names that a read found gone
	timer     clock.Timer                // wakes the worker for a backoff or a pending timeout
	// resolved holds outputs (and parts of them) with promoted values
	// read back from the store, by the JSON that travelled in-band (its
	// references name the values' digests), for the fan-outs' items and
	// the run's final status (resolve).
	resolved map[string]json.RawMessage

	canceling atomic.Bool // Cancel was called in this process

	mu       sync.Mutex
	status   *backends.RunStatus // replaced, never modified, once published
	changed  chan struct{}       // closed and replaced when status changes
	finished bool
	fatal    error

	life context.Context // ends when the orchestrator is closed
	stop context.CancelFunc
	wg   sync.WaitGroup
}

func newOrchestrator(client kubernetes.Interface, ns string, plan *backends.Plan, run string, tmpl map[string]*batchv1.Job, trace string) *orchestrator {
	o := &orchestrator{
		client: client, ns: ns, plan: plan, run: run, tmpl: tmpl, trace: trace,
		params:   backends.ParamValues(plan),
		sel:      labels.SelectorFromSet(labels.Set{LabelRun: run}),
		cached:   map[string]json.RawMessage{},
		stored:   map[string]bool{},
		failed:   map[string]string{},
		seen:     map[string]time.Time{},
		created:  map[string]bool{},
		pending:  map[types.UID]time.Time{},
		gone:     map[string]*timedOut{},
		vanish:   map[string]bool{},
		resolved: map[string]json.RawMessage{},
		clock:    clock.RealClock{},
		changed:  make(chan struct{}),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](5*time.Millisecond, 10*time.Second),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "sluice-" + run}),
	}
	o.digest = o.computeDigest()
	if plan.Artifacts != "" {
		// Its form was checked by Compile; it is reached only when
		// used.
		o.store, _ = artifact.OpenLazy(plan.Artifacts)
	}
	o.life, o.stop = context.WithCancel(context.Background())
	return o
}

// computeDigest identifies what the run runs: the Job templates and the
// parameters. A run id resumed with a different pipeline is refused.
func (o *orchestrator) computeDigest() string {
	h := sha256.New()
	names := slices.Sorted(maps.Keys(o.tmpl))
	for _, n := range names {
		b, _ := json.Marshal(o.tmpl[n].Spec)
		h.Write([]byte(n))
		h.Write(b)
	}
	b, _ := json.Marshal(o.params)
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// start makes sure the run's record exists and belongs to this plan,
// then starts the informers and the worker.
func (o *orchestrator) start(ctx context.Context) error {
	// Setting up ends early when ctx ends or close is called.
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(o.life, cancel)()
	if err := o.ensureRecord(sctx); err != nil {
		return o.rbacHint(err)
	}
	if err := o.preflight(sctx); err != nil {
		return o.rbacHint(err)
	}
	factory := informers.NewSharedInformerFactoryWithOptions(o.client, 0,
		informers.WithNamespace(o.ns),
		informers.WithTweakListOptions(func(lo *metav1.ListOptions) { lo.LabelSelector = o.sel.String() }))
	o.mu.Lock()
	o.factory = factory
	o.mu.Unlock()
	ji := factory.Batch().V1().Jobs()
	pi := factory.Core().V1().Pods()
	ci := factory.Core().V1().ConfigMaps()
	handler := cache.FilteringResourceEventHandler{
		FilterFunc: func(obj any) bool {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			m, ok := obj.(metav1.Object)
			return ok && m.GetLabels()[LabelRun] == o.run
		},
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { o.queue.Add(queueKey) },
			UpdateFunc: func(any, any) { o.queue.Add(queueKey) },
			DeleteFunc: func(any) { o.queue.Add(queueKey) },
		},
	}
	for _, inf := range []cache.SharedIndexInformer{ji.Informer(), pi.Informer(), ci.Informer()} {
		if _, err := inf.AddEventHandler(handler); err != nil {
			return fmt.Errorf("kubejob: run %s: %w", o.run, err)
		}
	}
	o.jobs, o.pods, o.records = ji.Lister(), pi.Lister(), ci.Lister()
	factory.Start(o.life.Done())
	// Polled every few milliseconds: the factory's own wait polls every
	// 100, a tenth of a second added to every Submit.
	synced := []cache.InformerSynced{ji.Informer().HasSynced, pi.Informer().HasSynced, ci.Informer().HasSynced}
	err := wait.PollUntilContextCancel(sctx, 5*time.Millisecond, true, func(context.Context) (bool, error) {
		for _, ok := range synced {
			if !ok() {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("kubejob: run %s: the informers did not sync: %w", o.run, context.Cause(sctx))
	}
	o.queue.Add(queueKey)
	o.wg.Add(1)
	go o.work(o.life)
	return nil
}

// preflight lists the run's Jobs and Pods once, so that missing
// permissions are an error now rather than informers that never sync.
func (o *orchestrator) preflight(ctx context.Context) error {
	lo := metav1.ListOptions{LabelSelector: o.sel.String(), Limit: 1}
	for _, list := range []struct {
		what string
		f    func() error
	}{
		{"jobs", func() error { _, err := o.client.BatchV1().Jobs(o.ns).List(ctx, lo); return err }},
		{"pods", func() error { _, err := o.client.CoreV1().Pods(o.ns).List(ctx, lo); return err }},
	} {
		if err := kubepod.Retry(ctx, list.f); err != nil {
			return fmt.Errorf("kubejob: run %s: list %s in namespace %s: %w", o.run, list.what, o.ns, err)
		}
	}
	return nil
}

// close stops the worker and the informers without touching the run:
// another orchestrator may resume it.
func (o *orchestrator) close() {
	o.stop()
	o.queue.ShutDown()
	o.wg.Wait()
	o.end(fmt.Errorf("kubejob: run %s: orchestrator stopped; Submit with RunID %q resumes it", o.run, o.run))
}

// end stops the orchestrator's informers and, unless the run already
// ended, makes it end: finished when err is nil, else failed with err.
func (o *orchestrator) end(err error) {
	o.mu.Lock()
	if !o.finished && o.fatal == nil {
		if err == nil {
			o.finished = true
		} else {
			o.fatal = err
		}
		o.notify()
	}
	factory := o.factory
	o.mu.Unlock()
	o.stop()
	if factory != nil {
		factory.Shutdown()
	}
}

// notify wakes the watchers of the status; o.mu must be held.
func (o *orchestrator) notify() {
	close(o.changed)
	o.changed = make(chan struct{})
}

// ensureRecord creates the run's record, or checks the one there: a run
// id belongs to one pipeline and one set of parameters.
func (o *orchestrator) ensureRecord(ctx context.Context) error {
	want := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name: recordName(o.run), Namespace: o.ns,
			Labels: map[string]string{LabelPipeline: o.plan.Name, LabelRun: o.run},
		},
		Data: map[string]string{recordPipeline: o.plan.Name, recordDigest: o.digest},
	}
	if !o.scheduled.IsZero() {
		want.Data[recordScheduled] = backends.MetaTime(o.scheduled)
	}
	var got *corev1.ConfigMap
	err := kubepod.Retry(ctx, func() error {
		cm, err := o.client.CoreV1().ConfigMaps(o.ns).Create(ctx, want, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			cm, err = o.client.CoreV1().ConfigMaps(o.ns).Get(ctx, want.Name, metav1.GetOptions{})
		}
		got = cm
		return err
	})
	if err != nil {
		return fmt.Errorf("kubejob: run %s: record %s: %w", o.run, want.Name, err)
	}
	if got.Data[recordPipeline] != o.plan.Name || got.Data[recordDigest] != o.digest {
		return fmt.Errorf("kubejob: run id %q is taken by a run of pipeline %q with other steps or parameters (record %s, digest %s, want %s); choose another run id",
			o.run, got.Data[recordPipeline], got.Name, got.Data[recordDigest], o.digest)
	}
	o.owner = metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: got.Name, UID: got.UID}
	o.started = got.CreationTimestamp.Time
	if o.started.IsZero() {
		o.started = o.clock.Now()
	}
	return o.recordMeta(got)
}

// markCanceled records in the run's record that the run was canceled, so
// that every orchestrator of the run, now or resumed later, stops it.
func (o *orchestrator) markCanceled(ctx context.Context) error {
	o.canceling.Store(true)
	o.queue.Add(queueKey)
	patch := []byte(`{"data":{"` + recordPhase + `":"` + string(backends.PhaseCanceled) + `"}}`)
	return o.rbacHint(kubepod.Retry(ctx, func() error {
		_, err := o.client.CoreV1().ConfigMaps(o.ns).Patch(ctx, recordName(o.run), types.MergePatchType, patch, metav1.PatchOptions{})
		return err
	}))
}

// rbacHint adds to a Forbidden API error what the orchestrator needs;
// other errors it returns as they are.
func (o *orchestrator) rbacHint(err error) error {
	if !apierrors.IsForbidden(err) {
		return err
	}
	return fmt.Errorf("%w; the orchestrator needs the Role %q that \"prog compile -backend kubejob\" emits, in namespace %q: "+
		"apply it with the ServiceAccount and RoleBinding of the same name, then run the orchestrator as that ServiceAccount "+
		"(kubejob.Options.InCluster) or bind the Role to the user that runs it", err, o.role, o.ns)
}

func (o *orchestrator) work(ctx context.Context) {
	defer o.wg.Done()
	defer o.wake(0)
	for {
		k, quit := o.queue.Get()
		if quit {
			return
		}
		done, err := o.reconcile(ctx)
		switch {
		case err != nil && ctx.Err() == nil && !kubepod.Transient(err):
			// Retrying cannot help (forbidden, invalid): end the run's
			// orchestration loudly rather than loop.
			o.queue.Done(k)
			o.end(fmt.Errorf("kubejob: run %s: %w", o.run, o.rbacHint(err)))
			return
		case err != nil && ctx.Err() == nil:
			o.queue.AddRateLimited(k)
		default:
			o.queue.Forget(k)
		}
		o.queue.Done(k)
		if done {
			o.deleteValues(ctx)
			o.end(nil) // the run is over: stop watching it
			return
		}
	}
}

// wake makes the worker reconcile again once d has passed on the
// orchestrator's clock, replacing the wake-up set before (each reconcile
// computes the earliest one it needs); d <= 0 sets none. Only the worker
// calls it.
func (o *orchestrator) wake(d time.Duration) {
	if o.timer != nil {
		o.timer.Stop()
		o.timer = nil
	}
	if d > 0 {
		o.timer = o.clock.AfterFunc(d, func() { o.queue.Add(queueKey) })
	}
}

// publish makes st the current status when it differs.
func (o *orchestrator) publish(st *backends.RunStatus) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.status != nil && reflect.DeepEqual(o.status, st) {
		return
	}
	o.status = st
	o.notify()
}

// snapshot returns the current status, a channel closed at the next
// change, and whether the run is over (or the orchestrator stopped).
func (o *orchestrator) snapshot() (*backends.RunStatus, <-chan struct{}, bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.status, o.changed, o.finished, o.fatal
}

// pass is what one reconcile sees and decides.
type pass struct {
	ctx      context.Context
	now      time.Time
	canceled bool
	record   *corev1.ConfigMap // the run's record as the lister shows it, or nil
	jobs     map[string]*batchv1.Job
	gone     map[string]bool          // Jobs the pending timeout deleted, which the lister may still show
	pods     map[string][]*corev1.Pod // by Job name, oldest first
	errs     []error
	after    time.Duration // reconcile again after this long (backoff)
}

func (p *pass) fail(err error) { p.errs = append(p.errs, err) }

func (p *pass) wakeIn(d time.Duration) {
	if d > 0 && (p.after == 0 || d < p.after) {
		p.after = d
	}
}

// reconcile derives the run's status from the cluster, creates the Jobs
// of the steps that are ready and deletes what a cancel or a pending
// timeout stops. It reports whether the run is over and the API errors
// that call for a rate-limited retry, and sets the wake-up for the next
// backoff or pending timeout to end.
func (o *orchestrator) reconcile(ctx context.Context) (bool, error) {
	p, err := o.observePass(ctx)
	if err != nil {
		return false, err
	}
	st := &backends.RunStatus{RunID: o.run, Pipeline: o.plan.Name, Phase: backends.PhaseRunning, Started: o.started}
	done := o.steps(p, st)
	if done && settling(p) {
		// Every step is over, but the Job controller has yet to mark a
		// Job whose pod succeeded Complete: the run ends once its Jobs
		// say so too, so that nothing of it looks unfinished then.
		done = false
	}
	if done {
		end := runstate.End(st.Steps, p.canceled)
		st.Phase, st.Message = end.Phase, end.Message
		st.Finished = latestFinish(st.Steps, p.now)
		if !o.observe {
			if err := o.retire(ctx, p, end.Phase); err != nil {
				// The run is over but its record is not handed over yet:
				// try again before reporting the end.
				p.fail(err)
				done = false
				st.Phase, st.Finished, st.Message = backends.PhaseRunning, time.Time{}, ""
			}
		}
	}
	if done || o.observe {
		// The final status holds the outputs themselves, read back
		// before the run's promoted values are deleted (see work); an
		// observer reads them as steps succeed, before the
		// orchestrator that runs the run can delete them.
		o.resolveOutputs(ctx, st, done)
	}
	// Set before publishing, so that whoever sees this status can rely
	// on the wake-up being set.
	if done {
		o.wake(0)
	} else {
		o.wake(p.after)
	}
	o.publish(st)
	return done, errors.Join(p.errs...)
}

// observePass starts a pass with what the listers show of the run: its
// record (and whether it was canceled), its Jobs, and their pods oldest
// first.
func (o *orchestrator) observePass(ctx context.Context) (*pass, error) {
	p := &pass{ctx: ctx, now: o.clock.Now(), jobs: map[string]*batchv1.Job{}, gone: map[string]bool{}, pods: map[string][]*corev1.Pod{}}
	if rec, err := o.records.ConfigMaps(o.ns).Get(recordName(o.run)); err == nil {
		p.record = rec
		p.canceled = rec.Data[recordPhase] == string(backends.PhaseCanceled)
	}
	if o.canceling.Load() {
		p.canceled = true
	}
	jobs, err := o.jobs.Jobs(o.ns).List(o.sel)
	if err != nil {
		return nil, err
	}
	for _, j := range jobs {
		p.jobs[j.Name] = j
	}
	pods, err := o.pods.Pods(o.ns).List(o.sel)
	if err != nil {
		return nil, err
	}
	for _, pod := range pods {
		j := pod.Labels[jobNameLabel]
		if j == "" {
			j = pod.Labels[legacyJobLabel]
		}
		p.pods[j] = append(p.pods[j], pod)
	}
	for _, list := range p.pods {
		sortPods(list)
	}
	return p, nil
}

// steps derives the status of every step, in plan order, then of the
// exit handler once they have ended (with runstate.Info), into st. It
// reports whether all have ended.
func (o *orchestrator) steps(p *pass, st *backends.RunStatus) bool {
	outputs := map[string]json.RawMessage{}
	phases := map[string]backends.Phase{}
	values := backends.Values{Params: o.params, Meta: &o.meta, Output: func(s string) (json.RawMessage, bool) {
		v, ok := outputs[s]
		return v, ok
	}}
	if o.store != nil {
		values.Resolve = func(v json.RawMessage) (json.RawMessage, error) { return o.resolve(p.ctx, v) }
	}
	done := true
	for i := range o.plan.Steps {
		s := &o.plan.Steps[i]
		ss := o.step(p, s, values, phases)
		st.Steps = append(st.Steps, ss)
		phases[s.Name] = ss.Phase
		if ss.Phase == backends.PhaseSucceeded || ss.Phase == backends.PhaseCached {
			outputs[s.Name] = ss.Output
		}
		done = done && ss.Phase.Done()
	}
	e := o.plan.Exit
	if e == nil {
		return done
	}
	ss := backends.StepStatus{Name: e.Name, Phase: backends.PhasePending}
	if done {
		info := runstate.Info(st.Steps, p.canceled)
		v := backends.Values{Params: o.params, Meta: values.Meta, Output: values.Output, Info: &info, Resolve: values.Resolve}
		if c := runstate.Condition(e, v.Value); !c.Run {
			ss.Phase, ss.Message = c.Phase, c.Message // its condition, on the run's outcome
		} else {
			in, ierr := e.Input.Resolve(v.Value)
			ss = o.unit(p, e, nil, in, ierr, true, false).status(e.Name)
		}
	}
	st.Steps = append(st.Steps, ss)
	return done && ss.Phase.Done()
}

// settling reports whether a Job of the run has a pod that succeeded but
// is not marked Complete yet (a step is done as soon as its pod
// succeeds; see unit).
func settling(p *pass) bool {
	for name, j := range p.jobs {
		if !p.gone[name] && j.DeletionTimestamp == nil && terminal(j) == "" && lastPod(p.pods[name], corev1.PodSucceeded) != nil {
			return true
		}
	}
	return false
}

// retire hands the ended run's record over to its Jobs: the record, which
// owns the Jobs while the run goes on, becomes owned by all of them, so
// that the garbage collector removes it once the last one is gone (their
// TTL) and nothing of the run is left behind. A run without Jobs (all
// cached or skipped) has its record deleted. Until then, resuming the run
// id finds it ended.
func (o *orchestrator) retire(ctx context.Context, p *pass, phase backends.Phase) error {
	cms := o.client.CoreV1().ConfigMaps(o.ns)
	names := slices.Sorted(maps.Keys(p.jobs))
	owners := make([]metav1.OwnerReference, 0, len(names))
	for _, n := range names {
		if p.gone[n] {
			continue // deleted by its pending timeout
		}
		owners = append(owners, metav1.OwnerReference{APIVersion: "batch/v1", Kind: "Job", Name: n, UID: p.jobs[n].UID})
	}
	if len(owners) == 0 {
		err := cms.Delete(ctx, recordName(o.run), metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("kubejob: delete the record of run %s: %w", o.run, err)
		}
		return nil
	}
	if rec, err := o.records.ConfigMaps(o.ns).Get(recordName(o.run)); err == nil && reflect.DeepEqual(rec.OwnerReferences, owners) {
		return nil // a resumed run that was retired already
	}
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"ownerReferences": owners},
		"data":     map[string]string{recordPhase: string(phase)},
	})
	if err != nil {
		return err
	}
	if _, err := cms.Patch(ctx, recordName(o.run), types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("kubejob: hand the record of run %s over to its Jobs: %w", o.run, err)
	}
	return nil
}

func latestFinish(steps []backends.StepStatus, now time.Time) time.Time {
	var t time.Time
	for _, s := range steps {
		if s.Finished.After(t) {
			t = s.Finished
		}
	}
	if t.IsZero() {
		t = now
	}
	return t
}

// step derives the status of a plan step, creating its Jobs when it is
// ready: its dependencies ended and runstate.Gate lets it run. A run
// canceled before that ends it Canceled; once it is ready, Cancel is
// unit's to handle, as the step may have started.
func (o *orchestrator) step(p *pass, s *backends.Step, values backends.Values, phases map[string]backends.Phase) backends.StepStatus {
	ss := backends.StepStatus{Name: s.Name, Phase: backends.PhasePending}
	for _, d := range s.DependsOn {
		if !phases[d].Done() {
			if p.canceled {
				ss.Phase, ss.Message = backends.PhaseCanceled, runstate.MsgNotStarted
			}
			return ss
		}
	}
	v := runstate.Gate(s, func(k int) backends.Phase { return phases[s.DependsOn[k]] }, false, values.Value)
	if !v.Run {
		ss.Phase, ss.Message = v.Phase, v.Message
		return ss
	}
	if s.ForEach == nil {
		in, err := s.Input.Resolve(values.Value)
		return o.unit(p, s, nil, in, err, !p.canceled, p.canceled).status(s.Name)
	}
	return o.fanOut(p, s, values)
}

// fanOut derives a ForEach step from its instances, creating instance
// Jobs in element order up to the parallelism cap.
func (o *orchestrator) fanOut(p *pass, s *backends.Step, values backends.Values) backends.StepStatus {
	ss := backends.StepStatus{Name: s.Name, Phase: backends.PhaseRunning}
	items, err := values.Items(s)
	if err != nil {
		ss.Phase, ss.Message = backends.PhaseFailed, err.Error()
		return ss
	}
	running := 0
	units := make([]unitState, len(items))
	for i, item := range items {
		in, ierr := s.Input.Resolve(values.WithItem(item).Value)
		mayStart := !p.canceled && (s.ForEach.Parallelism == 0 || running < s.ForEach.Parallelism)
		units[i] = o.unit(p, s, []string{strconv.Itoa(i)}, in, ierr, mayStart, p.canceled)
		if units[i].exists && !units[i].phase.Done() {
			running++
		}
	}
	allDone := true
	for i, u := range units {
		in := u.status(fmt.Sprintf("%s[%d]", s.Name, i))
		ss.Instances = append(ss.Instances, in)
		if !u.phase.Done() {
			allDone = false
		}
		if !in.Started.IsZero() && (ss.Started.IsZero() || in.Started.Before(ss.Started)) {
			ss.Started = in.Started
		}
		if in.Finished.After(ss.Finished) {
			ss.Finished = in.Finished
		}
	}
	if !allDone {
		ss.Finished = time.Time{}
		return ss
	}
	end := runstate.FanOutEnd(s, ss.Instances)
	ss.Phase, ss.Message, ss.Output = end.Phase, end.Message, end.Output
	return ss
}

// unitState is the state of one task: a step, or one instance of a
// fan-out.
type unitState struct {
	phase    backends.Phase
	exists   bool // a Job of it exists
	attempts []backends.Attempt
	output   json.RawMessage
	message  string
	cacheKey string
}

func (u unitState) status(name string) backends.StepStatus {
	ss := backends.StepStatus{Name: name, Phase: u.phase, Attempts: u.attempts, Output: u.output, Message: u.message, CacheKey: u.cacheKey}
	if len(u.attempts) > 0 {
		ss.Started = u.attempts[0].Started
		if u.phase.Done() {
			ss.Finished = u.attempts[len(u.attempts)-1].Finished
		}
	}
	return ss
}

// timedOut is what the run's record keeps of a Job the orchestrator
// deleted because its pod stayed unschedulable for the pending timeout,
// under the key "unschedulable.<Job name>": the Job's pods as attempts,
// the unschedulable one last (failed, infra). The Job and its pods are
// gone, so this is how its attempts, and the retry it calls for, outlive
// it and an orchestrator's restart.
type timedOut struct {
	Attempts []backends.Attempt `json:"attempts"`
}

// timedOutJob returns the record of Job name's pending timeout, or nil.
func (o *orchestrator) timedOutJob(p *pass, name string) *timedOut {
	if g := o.gone[name]; g != nil {
		return g
	}
	if p.record == nil {
		return nil
	}
	v, ok := p.record.Data[recordTimedOut+name]
	if !ok {
		if v, ok = p.record.Data[recordStopped+name]; !ok {
			return nil
		}
	}
	var g timedOut
	if json.Unmarshal([]byte(v), &g) != nil || len(g.Attempts) == 0 {
		return nil
	}
	o.gone[name] = &g
	return &g
}

// link is one Job of a task: in the cluster (job), or deleted by the
// orchestrator with a record of its attempts (gone).
type link struct {
	name string
	job  *batchv1.Job
	gone *timedOut
}

// unitTask is one task as unit derives it: a step, or one instance of a
// fan-out (parts names the instance).
type unitTask struct {
	s                  *backends.Step
	parts              []string
	input              json.RawMessage
	inputErr           error
	mayStart, stopping bool
	retry              task.Retry
	names              []string // its Jobs: the first, then one per infrastructure retry
	chain              []link   // those that exist or were deleted with a record, in order
}

// unit derives the state of one task from its Jobs: "<base>" for the
// first, "<base>-r<k>" for the k-th infrastructure retry. It creates the
// first Job when mayStart, the next one when runstate.AfterFailure calls
// for a retry, deletes a running Job when stopping, and deletes one whose
// pod stays unschedulable past Retry.PendingTimeout, which counts as an
// infrastructure failure.
func (o *orchestrator) unit(p *pass, s *backends.Step, parts []string, input json.RawMessage, inputErr error, mayStart, stopping bool) unitState {
	t := &unitTask{s: s, parts: parts, input: input, inputErr: inputErr, mayStart: mayStart, stopping: stopping}
	if s.Task.Retry != nil {
		t.retry = *s.Task.Retry
	}
	o.links(p, t)
	u := unitState{phase: backends.PhasePending}
	if inputErr != nil && len(t.chain) == 0 {
		u.phase, u.message = backends.PhaseFailed, runstate.InputError(inputErr)
		return u
	}
	if s.Cache.Enabled && inputErr == nil {
		if parts, err := backends.NewCacheKeyParts(s, input); err == nil {
			u.cacheKey = parts.Key()
		}
	}
	if len(t.chain) == 0 {
		return o.first(p, t, u)
	}
	u.exists = true
	for _, l := range t.chain {
		if l.job != nil && l.job.Annotations[AnnotationTemplate] == "true" {
			u.phase, u.message = backends.PhaseFailed, fmt.Sprintf("Job %s is a compiled template that was applied by hand; templates stay suspended and never run. Delete it (kubectl delete job %s) and submit the run again", l.name, l.name)
			return u
		}
	}
	latest := t.chain[len(t.chain)-1]
	end, ok := o.failRule(p, t.s, latest)
	if !ok {
		u.phase = backends.PhaseRunning
		return u
	}
	appFailures := o.attempts(p, t, latest, &u)
	return o.latest(p, t, u, latest, end, appFailures)
}

// links names the task's Jobs and finds those that exist, or were deleted
// with a record (deleting again one the lister still shows).
func (o *orchestrator) links(p *pass, t *unitTask) {
	t.names = make([]string, 1+retryJobs(t.s))
	for k := range t.names {
		ps := append([]string{t.s.Name}, t.parts...)
		if k > 0 {
			ps = append(ps, retryPrefix+strconv.Itoa(k))
		}
		name := jobName(o.run, ps...)
		t.names[k] = name
		if g := o.timedOutJob(p, name); g != nil {
			t.chain = append(t.chain, link{name: name, gone: g})
			if _, ok := p.jobs[name]; ok {
				p.gone[name] = true
				if !o.observe {
					// Recorded, but the delete did not happen yet (or
					// the lister has not caught up with it).
					if err := o.delete(p.ctx, name); err != nil {
						p.fail(err)
					}
				}
			}
			continue
		}
		if j := p.jobs[name]; j != nil {
			t.chain = append(t.chain, link{name: name, job: j})
			delete(o.created, j.Name) // the lister shows it: no need to remember
		}
	}
}

// first derives a task that has no Job yet: created a moment ago,
// canceled, cached, waiting or started now.
func (o *orchestrator) first(p *pass, t *unitTask, u unitState) unitState {
	switch {
	case o.created[t.names[0]]:
		// Created by this orchestrator; the informer has not shown it yet.
		u.exists, u.phase = true, backends.PhaseRunning
		return u
	case t.stopping:
		u.phase, u.message = backends.PhaseCanceled, runstate.MsgNotStarted
		return u
	}
	if u.cacheKey != "" {
		out, hit, err := o.lookup(p.ctx, u.cacheKey)
		if err != nil {
			p.fail(err)
			return u
		}
		if hit {
			u.phase, u.output = backends.PhaseCached, out
			return u
		}
	}
	if !t.mayStart {
		return u
	}
	return o.create(p, t.s, t.parts, t.names[0], t.input, 0, appBudgetLeft(t.retry, nil), false, u)
}

// failRule returns how Job latest failed, from its Failed condition. When
// the pod that failed it is not in the lister, a read tells a pod that is
// gone (deleted or evicted pods go once the Job controller counted them)
// from one the lister has not shown yet; it reports false when it cannot
// tell yet.
func (o *orchestrator) failRule(p *pass, s *backends.Step, latest link) (failJob, bool) {
	if latest.job == nil || terminal(latest.job) != batchv1.JobFailed {
		return failJob{}, true
	}
	end := failJobRule(s, latest.job)
	if end.pod == "" || podNamed(p.pods[latest.name], end.pod) != nil || o.vanish[end.pod] {
		return end, true
	}
	pod, err := o.client.CoreV1().Pods(o.ns).Get(p.ctx, end.pod, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		o.vanish[end.pod] = true
	case err != nil:
		p.fail(fmt.Errorf("kubejob: get pod %s: %w", end.pod, err))
		return end, false
	default:
		p.pods[latest.name] = sortPods(append(p.pods[latest.name], pod))
	}
	return end, true
}

func onDemandJob(j *batchv1.Job) bool { return j.Labels[onDemandMarker] == "true" }

// failedPod reads the pods of Job name from the API server and returns
// its latest failed one, adding them to the pass, or nil when it has
// none; it reports false when the read failed.
func (o *orchestrator) failedPod(p *pass, name string) (*corev1.Pod, bool) {
	list, err := o.client.CoreV1().Pods(o.ns).List(p.ctx, metav1.ListOptions{LabelSelector: jobNameLabel + "=" + name})
	if err != nil {
		p.fail(fmt.Errorf("kubejob: list the pods of Job %s: %w", name, err))
		return nil, false
	}
	pods := make([]*corev1.Pod, 0, len(list.Items))
	for i := range list.Items {
		pods = append(pods, &list.Items[i])
	}
	p.pods[name] = sortPods(pods)
	return lastPod(p.pods[name], corev1.PodFailed), true
}

// attempts lists the task's attempts into u, in order: the recorded ones
// of deleted Jobs, a pod per attempt of the others, and a pod that failed
// a Job and is gone from its Failed condition. It returns how many were
// application failures.
func (o *orchestrator) attempts(p *pass, t *unitTask, latest link, u *unitState) int {
	appFailures := 0
	add := func(a backends.Attempt) {
		a.Number = len(u.attempts) + 1
		if a.Reason == backends.ReasonApp {
			appFailures++
		}
		u.attempts = append(u.attempts, a)
	}
	for _, l := range t.chain {
		if l.gone != nil {
			for _, a := range l.gone.Attempts {
				add(a)
			}
			continue
		}
		pods := p.pods[l.name]
		for _, pod := range pods {
			add(attemptOf(t.s, pod, onDemandJob(l.job)))
		}
		if terminal(l.job) != batchv1.JobFailed {
			continue
		}
		if f := failJobRule(t.s, l.job); f.pod != "" && podNamed(pods, f.pod) == nil && (l != latest || o.vanish[f.pod]) {
			add(f.attempt(t.s, l.job, onDemandJob(l.job)))
		}
	}
	return appFailures
}

// latest derives the task from its latest Job: deleted, failed,
// succeeded or still running.
func (o *orchestrator) latest(p *pass, t *unitTask, u unitState, latest link, end failJob, appFailures int) unitState {
	pods := p.pods[latest.name]
	switch {
	case latest.gone != nil && latest.gone.Attempts[len(latest.gone.Attempts)-1].Phase == backends.PhaseCanceled:
		// Deleted by Cancel: the attempt's message says whether its pod
		// waited (cancelRunning).
		u.phase, u.message = backends.PhaseCanceled, latest.gone.Attempts[len(latest.gone.Attempts)-1].Message
		return u
	case latest.gone != nil:
		return o.afterFailure(p, t, u, latest, latest.gone.Attempts[len(latest.gone.Attempts)-1], false, appFailures)
	case terminal(latest.job) == batchv1.JobFailed:
		return o.jobFailed(p, t, u, latest, end, appFailures)
	case terminal(latest.job) == batchv1.JobComplete || lastPod(pods, corev1.PodSucceeded) != nil:
		return o.succeeded(p, t, u, pods)
	}
	if t.stopping && !o.observe {
		return o.cancelRunning(p, u, latest)
	}
	return o.running(p, t, u, latest)
}

// jobFailed derives a task whose latest Job failed. The rule the failed
// pod matched decides; the pod, when it is there, gives the message and
// times, and tells a timeout (also stopped by SIGTERM) from a stop.
func (o *orchestrator) jobFailed(p *pass, t *unitTask, u unitState, latest link, end failJob, appFailures int) unitState {
	pods := p.pods[latest.name]
	var pod *corev1.Pod
	if end.pod != "" {
		pod = podNamed(pods, end.pod)
	} else if pod = lastPod(pods, corev1.PodFailed); (pod == nil || countPhase(pods, corev1.PodFailed) < int(latest.job.Status.Failed)) && !o.vanish["job/"+latest.name] {
		// The Job failed on a pod the lister has not shown failed yet
		// (its informer is behind the Job's: it may show an earlier
		// attempt failed, whose message is not the last one), or on one
		// that is gone. A read of the Job's pods tells which.
		var ok bool
		if pod, ok = o.failedPod(p, latest.name); !ok {
			u.phase = backends.PhaseRunning
			return u
		}
		if pod == nil {
			o.vanish["job/"+latest.name] = true
		} else {
			u.attempts = nil // the read's pods are the Job's attempts now
			appFailures = o.attempts(p, t, latest, &u)
		}
	}
	var failed backends.Attempt
	switch {
	case pod != nil && pod.Status.Phase != corev1.PodFailed:
		u.phase = backends.PhaseRunning // the pod informer is behind the Job's
		return u
	case pod != nil:
		failed = attemptOf(t.s, pod, onDemandJob(latest.job))
	case end.pod != "":
		failed = u.attempts[len(u.attempts)-1] // added from the condition
	default:
		u.phase, u.message = backends.PhaseFailed, "the Job failed: "+conditionMessage(latest.job, batchv1.JobFailed)
		return u
	}
	// An application failure that failed the Job at once (a timeout:
	// SIGTERM, exit 143) leaves the rest of the App budget to the next
	// Job; one past backoffLimit has used it up, and runstate need not
	// be asked.
	early := end.pod != "" && failed.Reason == backends.ReasonApp
	final := end.kind == failInvalid || (failed.Reason != backends.ReasonInfra && !early)
	return o.afterFailure(p, t, u, latest, failed, final, appFailures)
}

// afterFailure asks runstate what follows the failed attempt of the
// task's latest Job (final: no retry can follow) and waits out the
// backoff, creates the retry's Job or fails the task.
func (o *orchestrator) afterFailure(p *pass, t *unitTask, u unitState, latest link, failed backends.Attempt, final bool, appFailures int) unitState {
	tries := append(slices.Clone(u.attempts[:max(len(u.attempts)-1, 0)]), failed)
	tries[len(tries)-1].Number = len(tries)
	next := runstate.AfterFailure(t.s, tries, final)
	k := slices.Index(t.names, latest.name)
	switch {
	case !next.Again:
		u.phase, u.message = backends.PhaseFailed, next.Message
		return u
	case k+1 >= len(t.names):
		u.phase, u.message = backends.PhaseFailed, failed.Message // no Job left to retry with
		return u
	}
	name := t.names[k+1]
	if t.stopping {
		// Waiting out the backoff before the retry, which will not come
		// now; a retry Job created a moment ago goes.
		if o.created[name] && !o.observe {
			if err := o.delete(p.ctx, name); err != nil {
				p.fail(err)
				u.phase = backends.PhaseRunning
				return u
			}
		}
		u.phase, u.message = backends.PhaseCanceled, runstate.CanceledInBackoff(failed)
		return u
	}
	// The backoff runs from when this orchestrator saw the failure, not
	// from the Job's timestamps: the API server's clock is not ours.
	seen, ok := o.seen[latest.name]
	if !ok {
		seen = p.now
		o.seen[latest.name] = seen
	}
	if d := next.Delay - p.now.Sub(seen); d > 0 {
		u.phase = backends.PhaseRunning
		p.wakeIn(d)
		return u
	}
	if o.created[name] {
		u.phase = backends.PhaseRunning // created; not in the lister yet
		return u
	}
	return o.create(p, t.s, t.parts, name, t.input, k+1, appBudgetLeft(t.retry, &appFailures), next.OnDemand, u)
}

// succeeded derives a task whose pod succeeded. A Job of one completion
// whose pod succeeded cannot fail any more: the step is done as soon as
// the pod says so, without waiting for the Job controller's Complete
// condition, which it sets only after batching pod updates (about a
// second).
func (o *orchestrator) succeeded(p *pass, t *unitTask, u unitState, pods []*corev1.Pod) unitState {
	pod := lastPod(pods, corev1.PodSucceeded)
	if pod == nil {
		// The pod informer has not caught up with the Job's.
		u.phase = backends.PhaseRunning
		return u
	}
	out, err := outputOf(t.s, pod)
	if err != nil {
		u.phase, u.message = backends.PhaseFailed, err.Error()
		return u
	}
	u.phase, u.output = backends.PhaseSucceeded, out
	// An output holding promoted values is not cached: they are deleted
	// with the run.
	if u.cacheKey != "" && !o.stored[u.cacheKey] && !o.observe && !artifact.HasValues(out) {
		if err := o.storeCache(p.ctx, t.s, u.cacheKey, out); err != nil {
			p.fail(err)
		}
	}
	return u
}

// cancelRunning cancels a task whose latest Job runs: it records the attempts,
// then deletes the Job, so that the record keeps them, and the task's
// Canceled, once the Job and its pods are gone. An attempt whose pod
// waited says why (runstate.CanceledWaiting).
func (o *orchestrator) cancelRunning(p *pass, u unitState, latest link) unitState {
	msg := runstate.MsgCanceled
	if pods := p.pods[latest.name]; len(pods) > 0 {
		if w := waitingMessage(pods[len(pods)-1]); w != "" {
			msg = runstate.CanceledWaiting(w)
		}
	}
	for i := range u.attempts {
		if !u.attempts[i].Phase.Done() {
			u.attempts[i].Phase, u.attempts[i].Message, u.attempts[i].Finished = backends.PhaseCanceled, msg, p.now
		}
	}
	if len(u.attempts) == 0 {
		u.attempts = append(u.attempts, backends.Attempt{Number: 1, Phase: backends.PhaseCanceled, Message: msg, Finished: p.now})
	}
	if err := o.recordGone(p.ctx, recordStopped, latest.name, &timedOut{Attempts: u.attempts}); err != nil {
		p.fail(err)
		u.phase = backends.PhaseRunning
		return u
	}
	if err := o.delete(p.ctx, latest.name); err != nil {
		p.fail(err)
		u.phase = backends.PhaseRunning
		return u
	}
	u.phase, u.message = backends.PhaseCanceled, msg
	return u
}

// running derives a task whose latest Job runs, and says why its pod
// waits: a container that cannot start, or a pod the scheduler cannot
// place, which Retry.PendingTimeout turns into an infrastructure failure.
func (o *orchestrator) running(p *pass, t *unitTask, u unitState, latest link) unitState {
	u.phase = backends.PhaseRunning
	pods := p.pods[latest.name]
	if len(pods) == 0 || pods[len(pods)-1].Status.Phase != corev1.PodPending {
		return u
	}
	pod := pods[len(pods)-1]
	why, ok := unschedulable(pod)
	if !ok {
		if w := waiting(pod); w != "" {
			u.phase, u.message = backends.PhasePending, runstate.Waiting(w)
		}
		return u
	}
	u.phase, u.message = backends.PhasePending, runstate.Unschedulable(why)
	if t.retry.PendingTimeout <= 0 {
		return u
	}
	since, ok := o.pending[pod.UID]
	if !ok {
		since = p.now
		o.pending[pod.UID] = since
	}
	if d := t.retry.PendingTimeout - p.now.Sub(since); d > 0 {
		p.wakeIn(d)
		return u
	}
	if o.observe {
		return u // the orchestrator that runs the run times it out
	}
	// Timed out: record it, then delete the Job. The record makes the
	// deleted Job an infrastructure failure that outlives it.
	g := &timedOut{}
	for _, q := range pods {
		a := attemptOf(t.s, q, onDemandJob(latest.job))
		if q == pod {
			a.Phase, a.Reason, a.Finished = backends.PhaseFailed, backends.ReasonInfra, p.now
			a.Message = runstate.PendingTimedOut(t.retry.PendingTimeout, why)
		}
		g.Attempts = append(g.Attempts, a)
	}
	if err := o.recordGone(p.ctx, recordTimedOut, latest.name, g); err != nil {
		p.fail(err)
		return u
	}
	delete(o.pending, pod.UID)
	return o.unit(p, t.s, t.parts, t.input, t.inputErr, t.mayStart, t.stopping) // the Job is gone: retry or fail
}

// recordGone writes g, the record of Job name that the orchestrator
// deletes, under key+name into the run's record: recordTimedOut for a
// pending timeout, recordStopped for Cancel.
func (o *orchestrator) recordGone(ctx context.Context, key, name string, g *timedOut) error {
	v, err := json.Marshal(g)
	if err != nil {
		return err
	}
	patch, err := json.Marshal(map[string]any{"data": map[string]string{key + name: string(v)}})
	if err != nil {
		return err
	}
	if _, err := o.client.CoreV1().ConfigMaps(o.ns).Patch(ctx, recordName(o.run), types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("kubejob: record the deletion of Job %s: %w", name, err)
	}
	o.gone[name] = g
	return nil
}

// unschedulable returns the scheduler's message for a pod it cannot place
// (condition PodScheduled=False, reason Unschedulable).
func unschedulable(pod *corev1.Pod) (string, bool) {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			msg := strings.TrimSpace(c.Message)
			if msg == "" {
				msg = c.Reason
			}
			return msg, true
		}
	}
	return "", false
}

// waitingMessage is the message of a task whose pod waits: unschedulable
// or a container that cannot start; "" when the pod does not wait.
func waitingMessage(pod *corev1.Pod) string {
	if pod.Status.Phase != corev1.PodPending {
		return ""
	}
	if why, ok := unschedulable(pod); ok {
		return runstate.Unschedulable(why)
	}
	if w := waiting(pod); w != "" {
		return runstate.Waiting(w)
	}
	return ""
}

// waiting returns why a pending pod's container waits, when that is more
// than starting (an image that cannot be pulled, a missing ConfigMap…).
func waiting(pod *corev1.Pod) string {
	for _, cs := range append(slices.Clone(pod.Status.InitContainerStatuses), pod.Status.ContainerStatuses...) {
		w := cs.State.Waiting
		if w == nil || w.Reason == "" || w.Reason == "ContainerCreating" || w.Reason == "PodInitializing" {
			continue
		}
		return strings.TrimSpace(w.Reason + ": " + w.Message)
	}
	return ""
}

// appBudgetLeft is the backoffLimit of a step's next Job: the App budget
// less the application failures its earlier Jobs had.
func appBudgetLeft(r task.Retry, used *int) int32 {
	n := r.App
	if used != nil {
		n -= *used
	}
	return int32(max(n, 0))
}

// create creates Job name, the k-th of a task; a Job that is already
// there counts as created (a create whose response was lost, or a
// resumed run). A Job that cannot be made fails the task.
func (o *orchestrator) create(p *pass, s *backends.Step, parts []string, name string, input json.RawMessage, k int, backoffLimit int32, onDemand bool, u unitState) unitState {
	if o.observe {
		if k > 0 {
			u.phase = backends.PhaseRunning
		}
		return u
	}
	if why, ok := o.failed[name]; ok {
		u.phase, u.message = backends.PhaseFailed, why
		return u
	}
	j, err := o.newJob(s, parts, name, input, backoffLimit, onDemand)
	if err == nil {
		_, err = o.client.BatchV1().Jobs(o.ns).Create(p.ctx, j, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			err = nil
		}
	}
	switch {
	case err == nil:
		o.created[name] = true
		u.exists, u.phase = true, backends.PhaseRunning
	case kubepod.Transient(err):
		p.fail(fmt.Errorf("kubejob: create Job %s: %w", name, err))
		if k > 0 {
			u.phase = backends.PhaseRunning
		}
	default:
		why := fmt.Sprintf("cannot create Job %s: %v", name, o.rbacHint(err))
		o.failed[name] = why
		u.phase, u.message = backends.PhaseFailed, why
	}
	return u
}

// newJob builds a task's Job from its step's template: the resolved input
// filled in, owned by the run's record, with the App budget left and, for
// the on-demand fall-back, the on-demand placement.
func (o *orchestrator) newJob(s *backends.Step, parts []string, name string, input json.RawMessage, backoffLimit int32, onDemand bool) (*batchv1.Job, error) {
	t := o.tmpl[s.Name]
	if t == nil {
		return nil, fmt.Errorf("no Job template for step %q", s.Name)
	}
	j := t.DeepCopy()
	j.Name, j.Namespace = name, o.ns
	j.Spec.Suspend = nil
	delete(j.Annotations, AnnotationTemplate)
	j.OwnerReferences = []metav1.OwnerReference{o.owner}
	j.Spec.BackoffLimit = ptr.To(backoffLimit)
	if len(parts) > 0 {
		j.Labels[instanceLabel] = parts[0]
		j.Spec.Template.Labels[instanceLabel] = parts[0]
	}
	pod := &j.Spec.Template.Spec
	ctr := &pod.Containers[0]
	if isContainer(s) {
		cmd, args, env, err := backends.RenderCommand(s.Task, input)
		if err != nil {
			return nil, fmt.Errorf("render the command: %w", err)
		}
		ctr.Command, ctr.Args, ctr.Env = cmd, args, nil
		for _, e := range env {
			ctr.Env = append(ctr.Env, corev1.EnvVar{Name: e.Name, Value: e.Value})
		}
		j.Annotations[AnnotationInput] = string(input)
	} else {
		if len(input) > MaxInputArg {
			return nil, fmt.Errorf("the resolved input is %d bytes, over the %d-byte limit of a command-line argument; pass large data by URI: %w", len(input), MaxInputArg, ErrTooLarge)
		}
		i := slices.Index(ctr.Args, "-input")
		if i < 0 || i+1 >= len(ctr.Args) {
			return nil, fmt.Errorf("the Job template of step %q has no -input argument", s.Name)
		}
		ctr.Args[i+1] = string(input)
		ctr.Env = append(ctr.Env, corev1.EnvVar{Name: backends.RunIDEnv, Value: o.run})
		if len(parts) > 0 {
			ctr.Env = append(ctr.Env, corev1.EnvVar{Name: backends.InstanceEnv, Value: parts[0]})
		}
	}
	if o.trace != "" {
		ctr.Env = append(ctr.Env, corev1.EnvVar{Name: backends.TraceParentEnv, Value: o.trace})
	}
	if onDemand {
		od := s.Resolved.OnDemand
		pod.NodeSelector, pod.Tolerations, pod.Affinity = od.NodeSelector, od.Tolerations, od.Affinity
		j.Labels[onDemandMarker] = "true"
		j.Spec.Template.Labels[onDemandMarker] = "true"
	}
	return j, nil
}

func (o *orchestrator) delete(ctx context.Context, name string) error {
	delete(o.created, name)
	err := o.client.BatchV1().Jobs(o.ns).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("kubejob: delete Job %s: %w", name, err)
	}
	return nil
}

// cacheName is the ConfigMap holding the output cached under key.
func cacheName(key string) string { return cachePrefix + key }

// lookup reads the cache entry of key once per run.
func (o *orchestrator) lookup(ctx context.Context, key string) (json.RawMessage, bool, error) {
	if out, ok := o.cached[key]; ok {
		return out, out != nil, nil
	}
	cm, err := o.client.CoreV1().ConfigMaps(o.ns).Get(ctx, cacheName(key), metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		o.cached[key] = nil
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("kubejob: cache lookup %s: %w", cacheName(key), err)
	}
	out := json.RawMessage(cm.Data[cacheOutput])
	if !json.Valid(out) {
		o.cached[key] = nil
		return nil, false, nil
	}
	o.cached[key] = out
	return out, true, nil
}

// store writes the output of a successful cached task; an entry already
// there (another run's) is left as it is.
func (o *orchestrator) storeCache(ctx context.Context, s *backends.Step, key string, out json.RawMessage) error {
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name: cacheName(key), Namespace: o.ns,
			Labels: map[string]string{LabelPipeline: o.plan.Name, "sluice.dev/cache": "true"},
		},
		Data: map[string]string{cacheOutput: string(out), cacheTask: s.Task.Name},
	}
	_, err := o.client.CoreV1().ConfigMaps(o.ns).Create(ctx, cm, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("kubejob: cache store %s: %w", cm.Name, err)
	}
	o.stored[key] = true
	return nil
}

// terminal returns JobComplete or JobFailed when the Job has that
// condition, else "".
func terminal(j *batchv1.Job) batchv1.JobConditionType {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return c.Type
		}
	}
	return ""
}

func conditionMessage(j *batchv1.Job, t batchv1.JobConditionType) string {
	for _, c := range j.Status.Conditions {
		if c.Type == t {
			return strings.TrimSpace(c.Reason + ": " + c.Message)
		}
	}
	return ""
}

// lastPod returns the newest pod in phase ph.
func lastPod(pods []*corev1.Pod, ph corev1.PodPhase) *corev1.Pod {
	for i := len(pods) - 1; i >= 0; i-- {
		if pods[i].Status.Phase == ph {
			return pods[i]
		}
	}
	return nil
}

// countPhase counts the pods in phase ph.
func countPhase(pods []*corev1.Pod, ph corev1.PodPhase) int {
	n := 0
	for _, pod := range pods {
		if pod.Status.Phase == ph {
			n++
		}
	}
	return n
}

// mainState returns the terminated state of the pod's task container.
func mainState(pod *corev1.Pod) *corev1.ContainerStateTerminated {
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name == ContainerName {
			return cs.State.Terminated
		}
	}
	return nil
}

func disrupted(pod *corev1.Pod) (corev1.PodCondition, bool) {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.DisruptionTarget && c.Status == corev1.ConditionTrue {
			return c, true
		}
	}
	return corev1.PodCondition{}, false
}

// sortPods sorts pods oldest first and returns them.
func sortPods(pods []*corev1.Pod) []*corev1.Pod {
	slices.SortFunc(pods, func(a, b *corev1.Pod) int {
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return pods
}

// podNamed returns the pod called name, or nil.
func podNamed(pods []*corev1.Pod, name string) *corev1.Pod {
	for _, pod := range pods {
		if pod.Name == name {
			return pod
		}
	}
	return nil
}

// retryJobs is how many Jobs may follow a task's first: one per
// infrastructure retry, and, when the task has a timeout, one per
// application retry (a pod that runs out of time is stopped by SIGTERM,
// exits 143 and so fails its Job at once; see podFailurePolicy).
func retryJobs(s *backends.Step) int {
	r := s.Task.Retry
	if r == nil {
		return 0
	}
	n := r.Infra
	if s.Task.Timeout > 0 {
		n += r.App
	}
	return n
}

// failKind is what a FailJob rule of a step's podFailurePolicy stands for.
type failKind int

const (
	failOther     failKind = iota // no FailJob rule matched (backoffLimit…), or one of the user's
	failDisrupted                 // DisruptionTarget: preemption, eviction, node drain or loss
	failInfra                     // a Go task's exit status 3
	failInvalid                   // a Go task's exit status 2: never retried
	failStopped                   // exit status 143: stopped by SIGTERM (deleted, or out of time)
)

// failJob is how a Job failed, from its Failed condition alone.
type failJob struct {
	kind failKind
	pod  string // the pod that matched a FailJob rule
	exit int32  // its exit status, for an exit-code rule
	cond batchv1.JobCondition
}

// The messages of a Job's Failed condition, reason PodFailurePolicy, as
// the Kubernetes 1.35 Job controller writes them
// (pkg/controller/job/pod_failure_policy.go, matchPodFailurePolicy).
var (
	failJobExit = regexp.MustCompile(`^Container (\S+) for pod ([^/\s]+)/(\S+) failed with exit code (-?\d+) matching FailJob rule at index (\d+)$`)
	failJobCond = regexp.MustCompile(`^Pod ([^/\s]+)/(\S+) has condition (\S+) matching FailJob rule at index (\d+)$`)
)

// failJobRule reads which rule of its podFailurePolicy failed Job j, and
// which pod matched it, from the Job's Failed condition, so that the
// failure is known even when the pod is gone (the kubelet deletes an
// evicted pod once the Job controller has counted it). Each rule
// podFailurePolicy writes stands for one kind of failure, so the rule's
// index is enough; the exit status in the message is used only when the
// rule is not one of those.
func failJobRule(s *backends.Step, j *batchv1.Job) failJob {
	var f failJob
	for _, c := range j.Status.Conditions {
		if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
			f.cond = c
		}
	}
	if f.cond.Reason != batchv1.JobReasonPodFailurePolicy {
		return f
	}
	index, ok := f.parse(strings.TrimSpace(f.cond.Message))
	if !ok {
		return f
	}
	code := f.exit
	if r := ruleAt(j, index); r != nil {
		switch {
		case slices.ContainsFunc(r.OnPodConditions, func(c batchv1.PodFailurePolicyOnPodConditionsPattern) bool {
			return c.Type == corev1.DisruptionTarget
		}):
			f.kind = failDisrupted
			return f
		case r.OnExitCodes != nil && r.OnExitCodes.Operator == batchv1.PodFailurePolicyOnExitCodesOpIn && len(r.OnExitCodes.Values) == 1:
			code = r.OnExitCodes.Values[0]
		}
	}
	switch {
	case f.kind == failDisrupted:
	case code == backends.ExitTerminated:
		f.kind = failStopped
	case code == backends.ExitInfrastructure && !isContainer(s):
		f.kind = failInfra
	case code == exitInvalid && !isContainer(s):
		f.kind = failInvalid
	}
	return f
}

// parse reads the pod, exit status or DisruptionTarget condition and rule
// index from the message of a Failed condition with reason
// PodFailurePolicy; it reports false for a message it does not know.
func (f *failJob) parse(msg string) (index string, ok bool) {
	if m := failJobExit.FindStringSubmatch(msg); m != nil {
		f.pod, index = m[3], m[5]
		if n, err := strconv.ParseInt(m[4], 10, 32); err == nil {
			f.exit = int32(n)
		}
		return index, true
	}
	if m := failJobCond.FindStringSubmatch(msg); m != nil {
		f.pod, index = m[2], m[4]
		if corev1.PodConditionType(m[3]) == corev1.DisruptionTarget {
			f.kind = failDisrupted
		}
		return index, true
	}
	return "", false
}

// ruleAt returns the pod failure policy rule of j at index, or nil.
func ruleAt(j *batchv1.Job, index string) *batchv1.PodFailurePolicyRule {
	i, err := strconv.Atoi(index)
	if err != nil || j.Spec.PodFailurePolicy == nil || i < 0 || i >= len(j.Spec.PodFailurePolicy.Rules) {
		return nil
	}
	return &j.Spec.PodFailurePolicy.Rules[i]
}

// attempt is the attempt of f's pod, which is gone: what the Job's
// condition says of it.
func (f failJob) attempt(s *backends.Step, j *batchv1.Job, onDemand bool) backends.Attempt {
	a := backends.Attempt{Phase: backends.PhaseFailed, Reason: backends.ReasonApp, OnDemand: onDemand,
		Started: j.CreationTimestamp.Time, Finished: f.cond.LastTransitionTime.Time}
	if j.Status.StartTime != nil {
		a.Started = j.Status.StartTime.Time
	}
	switch f.kind {
	case failDisrupted:
		a.Reason, a.Message = backends.ReasonInfra, "disrupted: pod "+f.pod+" had the condition DisruptionTarget and is gone"
	case failInfra:
		a.Reason, a.Message = backends.ReasonInfra, fmt.Sprintf("infrastructure failure (exit status %d); pod %s is gone", f.exit, f.pod)
	case failStopped:
		a.Reason, a.Message = backends.ReasonInfra, fmt.Sprintf("stopped by SIGTERM (exit status %d); pod %s is gone", f.exit, f.pod)
	case failInvalid:
		a.Message = fmt.Sprintf("invalid task invocation (not retried): exit status %d; pod %s is gone", f.exit, f.pod)
	default:
		a.Message = "the Job failed: " + strings.TrimSpace(f.cond.Reason+": "+f.cond.Message)
	}
	if a.Finished.Before(a.Started) {
		a.Finished = a.Started
	}
	return a
}

// attemptOf maps a pod of a task's Job to an attempt. It classifies a
// failure as the Job's podFailurePolicy does: infra for a disruption, a Go
// task's exit status 3 and any task's 143 (stopped by SIGTERM), unless
// the pod ran out of time (reason DeadlineExceeded, also stopped by
// SIGTERM), which is the task's; app for every other failure.
func attemptOf(s *backends.Step, pod *corev1.Pod, onDemand bool) backends.Attempt {
	a := backends.Attempt{Phase: backends.PhaseRunning, OnDemand: onDemand, Started: pod.CreationTimestamp.Time}
	if pod.Status.StartTime != nil {
		a.Started = pod.Status.StartTime.Time
	}
	t := mainState(pod)
	if t != nil {
		a.Finished = t.FinishedAt.Time
	}
	switch pod.Status.Phase {
	case corev1.PodSucceeded:
		a.Phase = backends.PhaseSucceeded
		return a
	case corev1.PodFailed:
	default:
		return a
	}
	a.Phase, a.Reason = backends.PhaseFailed, backends.ReasonApp
	msg := ""
	if t != nil {
		msg = strings.TrimSpace(t.Message)
	}
	exit := func(code int32) bool { return t != nil && t.ExitCode == code }
	switch c, ok := disrupted(pod); {
	case ok:
		a.Reason = backends.ReasonInfra
		a.Message = strings.TrimSpace("disrupted (" + c.Reason + "): " + c.Message)
	case pod.Status.Reason == podReasonExpiry:
		a.Message = "timed out after " + s.Task.Timeout.String()
	case exit(backends.ExitTerminated):
		a.Reason = backends.ReasonInfra
		if msg == "" {
			msg = "stopped by SIGTERM (exit status 143)"
		}
		a.Message = msg
	case exit(backends.ExitInfrastructure) && !isContainer(s):
		// The task mode wrote the task's error to the termination
		// message: the message the local backend reports.
		a.Reason = backends.ReasonInfra
		if msg == "" {
			msg = "infrastructure failure (exit status 3)"
		}
		a.Message = msg
	case exit(exitInvalid) && !isContainer(s):
		a.Message = "invalid task invocation (not retried): " + msg
	case msg != "":
		a.Message = msg
	case t != nil:
		a.Message = fmt.Sprintf("exit status %d (%s)", t.ExitCode, t.Reason)
	default:
		a.Message = strings.TrimSpace(pod.Status.Reason + ": " + pod.Status.Message)
	}
	if a.Finished.IsZero() {
		a.Finished = a.Started
	}
	return a
}

// outputOf reads a finished task's output from its pod's termination
// message.
func outputOf(s *backends.Step, pod *corev1.Pod) (json.RawMessage, error) {
	t := mainState(pod)
	if t == nil {
		return nil, fmt.Errorf("pod %s succeeded without a terminated state for container %s", pod.Name, ContainerName)
	}
	msg := []byte(t.Message)
	if isContainer(s) {
		files := map[string][]byte{}
		if len(s.Task.Outputs) == 1 {
			o := s.Task.Outputs[0]
			if len(bytes.TrimSpace(msg)) == 0 && !isStringField(s, o.Field) {
				return nil, fmt.Errorf("output: the container wrote no output %q: its file %s, the termination message, is empty or missing", o.Field, o.Path)
			}
			files[o.Field] = msg
		}
		out, err := backends.AssembleOutput(s.Task, files)
		if err != nil {
			return nil, fmt.Errorf("output: %w%s", err, sizeHint(msg))
		}
		return out, nil
	}
	if len(bytes.TrimSpace(msg)) == 0 {
		// A Go task's program always writes its output, "{}" at least.
		return nil, fmt.Errorf("output: the container wrote no output: pod %s's termination message (%s) is empty; is the container's command the pipeline program, run as \"prog task … -output-file %s\"?",
			pod.Name, backends.TerminationLog, backends.TerminationLog)
	}
	if !json.Valid(msg) {
		return nil, fmt.Errorf("output: pod %s's termination message is not JSON%s", pod.Name, sizeHint(msg))
	}
	return append(json.RawMessage(nil), msg...), nil
}

// isStringField reports whether output field f of container step s is a
// string (or a pointer to one), whose file is read as text: then an empty
// file is the empty string.
func isStringField(s *backends.Step, f string) bool {
	_, typ, ok := task.FieldByName(s.Task.OutputType, f)
	for ok && typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	return ok && typ.Kind() == reflect.String
}

// sizeHint explains a termination message that does not parse because the
// kubelet cut it: it keeps the last MaxTerminationMessage bytes of the
// file, so a longer output loses its start.
func sizeHint(msg []byte) string {
	if len(msg) >= MaxTerminationMessage {
		return fmt.Sprintf(": it is %d bytes long, the most the kubelet keeps of a termination message, "+
			"which keeps the last %d bytes of a longer one, so the output lost its start; return large outputs as a URI to object storage",
			len(msg), MaxTerminationMessage)
	}
	return ""
}

// resolveOutputs reads back the values the run's tasks stored out of
// band (artifact.Promote) in the outputs of st's steps, fan-out
// instances and collected fan-out outputs, remembering them in
// o.resolved; when final, it puts them into st, so that the status the
// caller gets when the run ends holds the outputs as the local backend
// does. Only that status holds them: the Jobs' inputs are built from the
// outputs as they travelled, and nothing is written back to the cluster.
// An output that cannot be read back (its values were already deleted:
// the run ended before this orchestrator saw its step succeed) keeps its
// references, and the error is logged; before the end, a failed read is
// tried again at the next pass.
func (o *orchestrator) resolveOutputs(ctx context.Context, st *backends.RunStatus, final bool) {
	if o.store == nil {
		return
	}
	resolve := func(out *json.RawMessage, name string) {
		if !artifact.HasValues(*out) {
			return
		}
		v, err := o.resolve(ctx, *out)
		if err != nil {
			if final {
				utilruntime.HandleError(fmt.Errorf("kubejob: run %s: step %s: reading its output's values stored out of band, for the run's final status (it keeps their references): %w", o.run, name, err))
			}
			return
		}
		if final {
			*out = v
		}
	}
	for i := range st.Steps {
		s := &st.Steps[i]
		for j := range s.Instances {
			// Also the instances that succeeded in a fan-out that failed.
			resolve(&s.Instances[j].Output, s.Instances[j].Name)
		}
		resolve(&s.Output, s.Name)
	}
}

// resolve returns doc, JSON from a step's output, with the promoted
// values in it read back from the store, remembering it in o.resolved:
// each pass derives the fan-outs' items again, and an observer must
// still have them once the in-cluster orchestrator deleted the values at
// the run's end. Only the worker calls it.
func (o *orchestrator) resolve(ctx context.Context, doc json.RawMessage) (json.RawMessage, error) {
	if v, ok := o.resolved[string(doc)]; ok {
		return v, nil
	}
	v, err := o.store.Resolve(ctx, doc)
	if err != nil {
		return nil, err
	}
	if artifact.HasValues(doc) {
		o.resolved[string(doc)] = v
	}
	return v, nil
}

// deleteValues deletes the values the run's tasks stored out of band
// (artifact.Promote) once the run is over; the run's artifacts stay. A
// failure is logged: the values are garbage, not the run's outcome.
func (o *orchestrator) deleteValues(ctx context.Context) {
	if o.store == nil {
		return
	}
	if o.observe {
		o.store.Close() // the orchestrator that runs the run deletes them
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if _, err := o.store.DeleteValues(ctx, o.plan.Name, o.run); err != nil {
		utilruntime.HandleError(fmt.Errorf("kubejob: run %s: deleting its promoted values: %w", o.run, err))
	}
	o.store.Close()
}
